"""Run bundles: one ended run (config, metrics, stages, snapshots) as a zip file, and back.

Layout, version 1:
  manifest.json         {"format": "li2lab-run-bundle", "version": 1, "exported_at",
                         "run": {id, status, config, created_at, ..., last_seq, lineage},
                         "stages": [{seq, step, stage, evidence, layer}],
                         "snapshots": [{seq, step, file}]}
  metrics.json          [{seq, rows}]  (the stored metric batches, rows as the worker sent them)
  snapshots/<step>.npz  one snapshot's arrays (numpy archive, no pickles)
``read_bundle`` checks everything (sizes, JSON, the config, every array's name, dtype and shape)
before anything is stored, so a bad bundle is refused whole.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Literal

import numpy as np
from pydantic import (
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictInt,
    ValidationError,
    field_validator,
)

from li2core.config import MAX_DEPTH, RunConfig
from li2core.instruments.layers import layer_array_shapes
from li2core.irreps import isotypic_components

from .protocol import MAX_WIRE_INT, to_json
from .store import TERMINAL, MetricBatch, RunRecord, StageRecord, StoredSnapshot

FORMAT = "li2lab-run-bundle"
VERSION = 1
MANIFEST, METRICS = "manifest.json", "metrics.json"
MAX_MEMBERS = 100_000
UNPACK_RATIO = 2  # a bundle may unpack to at most this many times the upload cap (zip bombs)
NPY_HEADER = 1024  # bytes a .npy header and the npz's zip records may add per array
WEIGHT_DTYPES = ("float32",)
ARRAY_DTYPES = ("float32", "int32", "uint8")  # the snapshot frame's dtypes (server/protocol.py)
FiniteFloat = Annotated[float, Strict(), AllowInfNan(False)]


class BundleError(ValueError):
    """A refused bundle: HTTP ``status_code`` with FastAPI-style ``detail`` entries."""

    def __init__(self, where: list, msg: str, status_code: int = 422) -> None:
        super().__init__(msg)
        self.status_code = status_code
        self.detail = [{"loc": ["body", *where], "msg": msg, "type": "value_error"}]

    @classmethod
    def from_validation(cls, part: str, exc: ValidationError) -> BundleError:
        err = cls([part], "")
        err.detail = [{"loc": ["body", part, *e["loc"]], "msg": e["msg"], "type": e["type"]}
                      for e in exc.errors(include_url=False, include_input=False,
                                          include_context=False)]
        err.args = ("; ".join(f"{'.'.join(map(str, d['loc'][1:]))}: {d['msg']}"
                              for d in err.detail),)
        return err


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ParentPart(_Part):
    run_id: str = Field(max_length=64)
    step: int = Field(ge=0, le=MAX_WIRE_INT)
    changes: dict = {}


class LineagePart(_Part):
    parent: ParentPart | None = None
    imported_from: dict | None = None
    sweep: dict | None = None  # a sweep's cell: {id, index, point}


class RunPart(_Part):
    id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    status: Literal[TERMINAL]  # only ended runs are bundled
    config: RunConfig
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    max_steps_per_s: float | None = Field(None, gt=0)
    started: dict | None = None
    summary: dict | None = None
    error: str | None = Field(None, max_length=100_000)
    last_seq: int = Field(ge=0, le=MAX_WIRE_INT)
    lineage: LineagePart | None = None


class StagePart(_Part):
    seq: int = Field(ge=1, le=MAX_WIRE_INT)
    step: int = Field(ge=0, le=MAX_WIRE_INT)
    stage: str = Field(pattern=r"^[a-z_]{1,32}$")
    evidence: dict = {}
    layer: int = Field(1, ge=1, le=MAX_DEPTH)  # absent in bundles from before depth


class SnapshotPart(_Part):
    seq: int = Field(ge=1, le=MAX_WIRE_INT)
    step: int = Field(ge=0, le=MAX_WIRE_INT)
    file: str = Field(pattern=r"^snapshots/[0-9]{1,12}\.npz$")


class Manifest(_Part):
    format: Literal[FORMAT]
    version: Literal[VERSION]
    exported_at: str | None = None
    run: RunPart
    stages: list[StagePart]
    snapshots: list[SnapshotPart]


class BatchPart(_Part):
    seq: int = Field(ge=1, le=MAX_WIRE_INT)
    rows: list[dict[str, StrictInt | FiniteFloat | None]]

    @field_validator("rows")
    @classmethod
    def _rows_have_steps(cls, rows: list[dict]) -> list[dict]:
        for row in rows:
            step = row.get("step")
            if not isinstance(step, int) or step < 0:
                raise ValueError("every row needs an integer step >= 0")
        return rows


class Batches(BaseModel):
    batches: list[BatchPart]


@dataclass
class Bundle:
    """A checked bundle; ``run`` still carries the exporting server's id and times."""

    run: RunPart
    exported_at: str | None
    batches: list[MetricBatch]
    stages: list[StageRecord]
    snapshots: list[StoredSnapshot]


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def write_bundle(record: RunRecord, batches: list[MetricBatch], stages: list[StageRecord],
                 snapshots: list[StoredSnapshot]) -> bytes:
    """The zip of one ended run (the client that started it is left out)."""
    run = {k: v for k, v in vars(record).items() if k != "client"}
    manifest = {
        "format": FORMAT, "version": VERSION,
        "exported_at": datetime.now(timezone.utc).isoformat(), "run": run,
        "stages": [s.as_dict() for s in stages],
        "snapshots": [{"seq": s.seq, "step": s.step, "file": f"snapshots/{s.step:09d}.npz"}
                      for s in snapshots],
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        zf.writestr(MANIFEST, to_json(manifest))
        zf.writestr(METRICS, to_json([{"seq": b.seq, "rows": b.rows} for b in batches]))
        for s, entry in zip(snapshots, manifest["snapshots"]):
            # float arrays barely deflate: store them
            zf.writestr(entry["file"], _npz(s.arrays), compress_type=zipfile.ZIP_STORED)
    return buf.getvalue()


def _no_constants(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _read(zf: zipfile.ZipFile, name: str) -> bytes:
    try:
        return zf.read(name)
    except Exception as exc:  # noqa: BLE001 - bad CRC, broken deflate stream, encryption, ...
        raise BundleError([name], f"{name}: cannot be unpacked ({exc})") from None


def _json(zf: zipfile.ZipFile, name: str):
    raw = _read(zf, name)
    try:
        return json.loads(raw, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BundleError([name], f"{name}: not valid JSON ({exc})") from None
    except RecursionError:
        raise BundleError([name], f"{name}: JSON nested too deeply") from None


def expected_shapes(config: RunConfig) -> dict[str, tuple[int, ...]]:
    """Shapes of the snapshot arrays of a run (docs/contracts.md, "Arrays")."""
    m, k = config.group_order, config.hidden
    c = isotypic_components(config.build_group()).count
    return {"W": (2 * m, k), "V": (k, m), "spec_u": (k, c), "spec_v": (k, c), "spec_V": (k, c),
            "concentration": (k,), "dominant": (k,), "active": (k,), "locked": (k,),
            "memorising": (k,), "energy_train": (k,), "energy_full": (k,), "gf_spectrum": (c,),
            **layer_array_shapes(k, c, config.depth)}


def _arrays(raw: bytes, file: str, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """One snapshot's arrays; sizes are checked from the archive's directory before reading."""
    try:
        inner = zipfile.ZipFile(io.BytesIO(raw))
        infos = inner.infolist()
    except (zipfile.BadZipFile, ValueError) as exc:
        raise BundleError([file], f"{file}: not a numpy .npz archive ({exc})") from None
    names = []
    for info in infos:
        name = info.filename.removesuffix(".npy")
        if name not in shapes or name in names:
            raise BundleError([file], f"{file}: unexpected array {info.filename!r}; snapshots "
                              f"hold {', '.join(shapes)}")
        if info.file_size > 4 * int(np.prod(shapes[name])) + NPY_HEADER:
            raise BundleError([file], f"{file}: {name} is larger than shape {shapes[name]}")
        names.append(name)
    for need in ("W", "V"):
        if need not in names:
            raise BundleError([file], f"{file}: the weights {need} are missing")
    out = {}
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        for name in names:
            try:
                a = npz[name]
            except Exception as exc:  # noqa: BLE001 - whatever numpy says of a broken array
                raise BundleError([file, name], f"{file}: {name} is unreadable "
                                  f"({type(exc).__name__}: {exc})") from None
            allowed = WEIGHT_DTYPES if name[0] in "WV" else ARRAY_DTYPES
            if a.dtype.name not in allowed or a.shape != shapes[name]:
                raise BundleError([file, name], f"{file}: {name} is {a.dtype.name} "
                                  f"{a.shape}; expected {allowed[0]} {shapes[name]}")
            out[name] = a
    return out


def _check_order(batches: list[BatchPart], manifest: Manifest) -> None:
    last_step, last_seq = -1, 0
    for i, batch in enumerate(batches):
        if batch.seq <= last_seq:
            raise BundleError([METRICS, i, "seq"], f"{METRICS}: batch seqs must increase")
        last_seq = batch.seq
        for row in batch.rows:
            if row["step"] <= last_step:
                raise BundleError([METRICS, i, "rows"], f"{METRICS}: row steps must increase "
                                  f"(step {row['step']} after {last_step})")
            last_step = row["step"]
    seqs = [s.seq for s in manifest.stages] + [s.seq for s in manifest.snapshots]
    for kind, values in (("stage seq", [s.seq for s in manifest.stages]),
                         ("snapshot step", [s.step for s in manifest.snapshots]),
                         ("snapshot file", [s.file for s in manifest.snapshots])):
        if len(set(values)) != len(values):
            raise BundleError([MANIFEST], f"{MANIFEST}: a {kind} appears twice")
    if max([last_seq, *seqs]) > manifest.run.last_seq:
        raise BundleError([MANIFEST, "run", "last_seq"],
                          f"{MANIFEST}: run.last_seq is smaller than a message's seq")


def read_bundle(data: bytes, max_bytes: int) -> Bundle:
    """Parse and check a bundle; raises BundleError (413 when it unpacks too large)."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, ValueError) as exc:
        raise BundleError(["bundle"], f"bundle: not a zip archive ({exc})") from None
    names = [i.filename for i in infos]
    if len(infos) > MAX_MEMBERS or len(set(names)) != len(names):
        raise BundleError(["bundle"], "bundle: too many or repeated files")
    if sum(i.file_size for i in infos) > UNPACK_RATIO * max_bytes:
        raise BundleError(["bundle"], f"bundle: unpacks to more than {UNPACK_RATIO} × "
                          f"{max_bytes} bytes", status_code=413)
    for need in (MANIFEST, METRICS):
        if need not in names:
            raise BundleError(["bundle"], f"bundle: {need} is missing")
    try:
        manifest = Manifest.model_validate(_json(zf, MANIFEST))
    except ValidationError as exc:
        raise BundleError.from_validation(MANIFEST, exc) from None
    try:
        batches = Batches(batches=_json(zf, METRICS)).batches
    except ValidationError as exc:
        err = BundleError.from_validation(METRICS, exc)
        for d in err.detail:  # drop the wrapper's own field from the location
            d["loc"] = [p for p in d["loc"] if p != "batches"]
        raise err from None
    _check_order(batches, manifest)
    files = {s.file for s in manifest.snapshots}
    extra = set(names) - files - {MANIFEST, METRICS}
    if extra:
        raise BundleError(["bundle"], f"bundle: unexpected file {sorted(extra)[0]!r}")
    shapes = expected_shapes(manifest.run.config)
    snapshots = []
    for s in manifest.snapshots:
        if s.file not in names:
            raise BundleError([MANIFEST, "snapshots"], f"bundle: {s.file} is missing")
        snapshots.append(StoredSnapshot(s.seq, s.step, _arrays(_read(zf, s.file), s.file, shapes)))
    return Bundle(
        run=manifest.run, exported_at=manifest.exported_at,
        batches=[MetricBatch(b.seq, b.rows) for b in batches],
        stages=[StageRecord(s.seq, s.step, s.stage, s.evidence, s.layer)
                for s in manifest.stages],
        snapshots=snapshots)
