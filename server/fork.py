"""Forks: a new run that continues a stored snapshot of another run with some settings changed.

The fork trains from the snapshot's W and V (li2core.train's ``initial``); optimizer state
(Adam moments) is not stored, so it restarts from zero, as after a checkpoint load without one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from li2core.config import RunConfig, error_field

from .protocol import MAX_WIRE_INT

# these fix the shapes of W (2M×K) and V (K×M): a fork keeps the parent's weights, so not these
SHAPE_FIELDS = ("group", "group_table", "hidden", "depth")


class ForkRequest(BaseModel):
    """Body of POST /api/runs/{id}/fork."""

    model_config = ConfigDict(extra="forbid", strict=True)

    step: int = Field(ge=0, le=MAX_WIRE_INT,
                      description="fork from the stored snapshot at or before this step")
    changes: dict[str, Any] = Field(
        default_factory=dict, description="RunConfig fields to change, e.g. {\"lr\": 0.01}; "
        "steps = how many further steps (default: the parent's remaining ones)")


class ForkError(ValueError):
    """Bad changes; ``errors`` are FastAPI-style {loc, msg, type} entries."""

    def __init__(self, errors: list[dict]) -> None:
        super().__init__("; ".join(e["msg"] for e in errors))
        self.errors = errors


@dataclass
class ForkPlan:
    config: RunConfig
    lineage: dict  # {"parent": {"run_id", "step", "changes": {field: {"from", "to"}}}}
    initial: dict  # {"W", "V", "step", "stages", "fork"} for li2core.train


def _error(field: str, msg: str, kind: str = "value_error") -> dict:
    return {"loc": ["body", "changes", field], "msg": msg, "type": kind}


def _config_errors(exc: ValidationError, fields: set[str]) -> list[dict]:
    """RunConfig's errors located under body.changes; cross-field ones named by their field."""
    out = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = [str(p) for p in err["loc"]] or [f for f in [error_field(err)] if f in fields]
        msg = err["msg"].removeprefix("Value error, ")
        out.append({"loc": ["body", "changes", *loc], "msg": msg, "type": err["type"]})
    return out


def run_end(config: dict, lineage: dict | None) -> int:
    """The last step a run trains to: a fork counts on from its fork step."""
    parent = (lineage or {}).get("parent") or {}
    return int(parent.get("step", 0)) + int(config["steps"])


def inherited_stages(parent_stages: list[dict], fork_step: int) -> list[dict]:
    """The parent's stage events whose onset is at or before the fork step; evidence that only
    became conclusive after the fork is not the fork's to inherit."""
    return [{"step": s["step"], "stage": s["stage"], "evidence": s.get("evidence") or {},
             "layer": int(s.get("layer", 1))}
            for s in parent_stages
            if s["step"] <= fork_step
            and (s.get("evidence") or {}).get("conclusive_step", s["step"]) <= fork_step]


def plan_fork(parent_id: str, parent_config: dict, parent_lineage: dict | None,
              snapshot_step: int, arrays: dict, changes: dict[str, Any],
              parent_stages: list[dict] | None = None) -> ForkPlan:
    """The fork's validated config, the lineage it records, its starting weights and the
    parent's stage history up to the fork step."""
    base = RunConfig(**parent_config)
    errors = [_error(name, f"{name}: a fork continues the parent's weights, so it cannot "
                     f"change their shape ({', '.join(SHAPE_FIELDS)} stay as they are)")
              for name in SHAPE_FIELDS
              if name in changes and changes[name] != parent_config.get(name)]
    if errors:
        raise ForkError(errors)
    remaining = run_end(parent_config, parent_lineage) - snapshot_step
    fields = {**parent_config, "steps": remaining if remaining >= 1 else base.steps, **changes}
    try:
        config = RunConfig(**fields)
    except ValidationError as exc:
        raise ForkError(_config_errors(exc, set(RunConfig.model_fields))) from None
    if "W" not in arrays or "V" not in arrays:
        raise ForkError([{"loc": ["body", "step"], "type": "value_error",
                          "msg": f"step: the snapshot at step {snapshot_step} has no weights"}])
    dumped = config.model_dump()
    recorded = {name: {"from": parent_config.get(name), "to": dumped[name]}
                for name in changes if dumped[name] != parent_config.get(name)}
    lineage = {"parent": {"run_id": parent_id, "step": snapshot_step, "changes": recorded}}
    layers = {f"W{i}": arrays.get(f"W{i}") for i in range(2, config.depth + 1)}
    if any(x is None for x in layers.values()):
        raise ForkError([{"loc": ["body", "step"], "type": "value_error",
                          "msg": f"step: the snapshot at step {snapshot_step} lacks the added "
                          f"layers' weights (W2..W{config.depth})"}])
    return ForkPlan(config, lineage, {
        "W": arrays["W"], "V": arrays["V"], **layers, "step": snapshot_step,
        "stages": inherited_stages(parent_stages or [], snapshot_step),
        "fork": {"run_id": parent_id, "step": snapshot_step}})
