"""The one run configuration shared by the CLI, the HTTP API, the worker and the store."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .groups import MAX_ORDER, GroupError, group_from_table, parse_group

# hidden activations are n×K floats, several times over (forward, backward, Adam state);
# this cap keeps the largest run near 2 GiB on a 24 GiB, 2-core machine.
MAX_TABLE_TIMES_WIDTH = 2**26
MAX_DEPTH = 4  # hidden layers (li2-theory §6: the paper observes 2–4)

Activation = Literal["square", "relu", "silu", "relu_square"]
Loss = Literal["mse", "cross_entropy"]
Optimizer = Literal["adam", "adamw", "sgd", "muon"]
TopLayer = Literal["trained", "ridge"]
Device = Literal["auto", "cpu", "cuda"]
Engine = Literal["fused", "autograd"]
Precision = Literal["fp32", "bf16"]


def cuda_has_bf16() -> bool:
    """True where no CUDA device is present (device=cuda then fails on its own) or it has bf16."""
    import torch

    return not torch.cuda.is_available() or torch.cuda.is_bf16_supported()


def _meta(label: str, symbol: str, section: str, unit: str = "") -> dict:
    """Words every page shows for a field (label, symbol, unit, section of the controls);
    the schema route hands them out with the bounds, so no page spells them itself."""
    return {"label": label, "symbol": symbol, "section": section, "unit": unit}


# a Cayley table row: bounded before numpy sees it (an int >= 2**63 would not fit int64)
TableRow = Annotated[list[Annotated[int, Field(ge=0, lt=MAX_ORDER)]],
                     Field(max_length=MAX_ORDER)]


class FieldError(ValueError):
    """A cross-field check that failed: ``field`` is the one to change (clients read it, not
    the message, to know which control is at fault)."""

    def __init__(self, field: str, msg: str) -> None:
        super().__init__(msg)
        self.field = field


def error_field(error: dict) -> str | None:
    """The field named by a FieldError raised inside a validator, else None."""
    cause = (error.get("ctx") or {}).get("error")
    return getattr(cause, "field", None)


class RunConfig(BaseModel):
    """Everything that determines a run; stored with it, so the stored config reproduces it."""

    # strict: JSON types as given ("64" is not 64, true is not 1); finite floats only
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    group: str = Field("Z23", description="Group spec: Z<M>, products like Z4xZ7, D<n>, S<n>, "
                       "or 'custom' with group_table", max_length=64,
                       json_schema_extra=_meta("group", "G", "task"))
    group_table: list[TableRow] | None = Field(
        None, max_length=MAX_ORDER,
        description="Cayley table for group='custom' (row a, column b holds a·b)",
        json_schema_extra=_meta("Cayley table", "", "task"))
    train_fraction: float = Field(0.5, gt=0.0, lt=1.0, description="p: fraction of the M² table "
                                  "used for training",
                                  json_schema_extra=_meta("train fraction", "p", "task"))
    hidden: int = Field(256, ge=1, le=4096, description="K: hidden width",
                        json_schema_extra=_meta("hidden width", "K", "network", "nodes"))
    depth: int = Field(1, ge=1, le=MAX_DEPTH, description="L: hidden layers; 1 is the paper's "
                       "2-layer network, each added K×K layer is x ← σ(x + x W_l)",
                       json_schema_extra=_meta("hidden layers", "L", "network", "layers"))
    activation: Activation = Field("square", description="σ applied to the hidden layer",
                                   json_schema_extra=_meta("activation", "σ", "network"))
    loss: Loss = Field("mse", description="training loss (the theory assumes mse)",
                       json_schema_extra=_meta("loss", "ℓ", "training"))
    optimizer: Optimizer = Field("adam", description="full-batch optimizer",
                                 json_schema_extra=_meta("optimizer", "", "training"))
    lr: float = Field(5e-3, gt=0.0, le=1.0, description="learning rate",
                      json_schema_extra=_meta("learning rate", "lr", "training"))
    weight_decay: float = Field(5e-5, ge=0.0, le=1.0, description="η (coupled L2 for adam/sgd, "
                                "decoupled for adamw/muon)",
                                json_schema_extra=_meta("weight decay", "η", "training"))
    top_layer: TopLayer = Field("trained", description="V trained by the optimizer, or solved "
                                "in closed form (ridge) at every step",
                                json_schema_extra=_meta("top layer", "V", "network"))
    top_init_scale: float = Field(1.0, ge=0.0, le=10.0, description="multiplier on V(0); "
                                  "0 = zero-init",
                                  json_schema_extra=_meta("top init scale", "V(0)", "network"))
    seed: int = Field(0, ge=0, le=2**31 - 1, description="seeds the split and W(0), V(0)",
                      json_schema_extra=_meta("seed", "", "training"))
    steps: int = Field(1000, ge=1, le=100_000, description="full-batch optimizer steps",
                       json_schema_extra=_meta("steps", "T", "training", "steps"))
    eval_every: int = Field(1, ge=1, le=10_000, description="steps between metric rows",
                            json_schema_extra=_meta("metrics every", "", "measuring", "steps"))
    snapshot_every: int = Field(25, ge=1, le=100_000, description="steps between weight snapshots",
                                json_schema_extra=_meta("snapshot every", "", "measuring",
                                                        "steps"))
    device: Device = Field("auto", description="where torch trains (auto: CUDA if present)",
                           json_schema_extra=_meta("device", "", "measuring"))
    engine: Engine = Field("fused", description="training step: fused (chunked, hand-written "
                           "backward) or autograd (the reference)",
                           json_schema_extra=_meta("engine", "", "measuring"))
    precision: Precision = Field("fp32", description="bf16 runs the large matrix products in "
                                 "bfloat16 (weights, optimizer state, loss and metrics stay fp32)",
                                 json_schema_extra=_meta("precision", "", "measuring"))

    @field_validator("group")
    @classmethod
    def _group_parses(cls, v: str) -> str:
        v = v.strip()
        if v != "custom":
            try:
                parse_group(v)
            except GroupError as exc:
                raise ValueError(str(exc)) from None
        return v

    @field_validator("precision")
    @classmethod
    def _precision_runs_here(cls, v: str, info: ValidationInfo) -> str:
        # a field validator (not the model's), so the error's loc names the field
        if v == "bf16":
            if info.data.get("engine") == "autograd":
                raise ValueError("bf16 needs engine 'fused' (the autograd reference runs in fp32)")
            if info.data.get("device") == "cuda" and not cuda_has_bf16():
                raise ValueError("bf16 requested on a CUDA device without bfloat16 support; "
                                 "use precision fp32")
        return v

    @model_validator(mode="after")
    def _fits_machine(self) -> RunConfig:
        if self.group == "custom":
            if self.group_table is None:
                raise FieldError("group_table", "group_table is required when group='custom'")
            try:
                group_from_table(self.group_table)
            except GroupError as exc:
                raise FieldError("group_table", f"group_table: {exc}") from None
        elif self.group_table is not None:
            raise FieldError("group_table", "group_table is only allowed with group='custom'")
        if self.depth > 1 and self.top_layer == "ridge":
            raise FieldError("top_layer", "top_layer: ridge solves V on the first layer's "
                             f"features only; depth {self.depth} needs top_layer 'trained'")
        if self.depth > 1 and self.precision == "bf16":
            raise FieldError("precision", f"precision: bf16 runs in the fused engine, which "
                             f"trains depth 1 only; depth {self.depth} needs precision fp32")
        m = self.group_order
        # autograd keeps every layer's n×K activations: the bound counts them all
        if m * m * self.hidden * self.depth > MAX_TABLE_TIMES_WIDTH:
            layers = f" in each of {self.depth} layers" if self.depth > 1 else ""
            raise FieldError(
                "hidden", f"hidden: {self.hidden} nodes{layers} on a table of {m}² rows exceeds "
                "the memory bound "
                f"(order² × hidden × depth ≤ {MAX_TABLE_TIMES_WIDTH}); use hidden ≤ "
                f"{MAX_TABLE_TIMES_WIDTH // (m * m * self.depth)}"
            )
        n_train = round(self.train_fraction * m * m)
        if n_train < 1 or n_train >= m * m:
            raise FieldError(
                "train_fraction", f"train_fraction: {self.train_fraction} leaves {n_train} of "
                f"{m * m} rows for "
                "training; both train and test sets must be non-empty"
            )
        return self

    @property
    def group_order(self) -> int:
        return len(self.group_table) if self.group == "custom" else self.build_group().order

    def build_group(self):
        if self.group == "custom":
            return group_from_table(self.group_table)
        return parse_group(self.group)

    def with_(self, **changes) -> RunConfig:
        """A validated copy with some fields changed."""
        return RunConfig(**{**self.model_dump(), **changes})


def field_bounds() -> dict:
    """Bounds, choices and words (label, symbol, unit, help) per field, for UIs that must not
    duplicate them (a JSON schema subset)."""
    schema = RunConfig.model_json_schema()
    out = {}
    for name, prop in schema["properties"].items():
        keep = {k: prop[k] for k in ("type", "minimum", "maximum", "exclusiveMinimum",
                                     "exclusiveMaximum", "enum", "default", "description",
                                     "label", "symbol", "section", "unit")
                if k in prop}
        if "anyOf" in prop:
            keep["nullable"] = True
        out[name] = keep
    return out
