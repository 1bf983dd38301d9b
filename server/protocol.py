"""Wire encoding shared by the websocket, the REST snapshot route and the benchmarks.

Text messages are compact JSON; snapshots are binary frames (layout in docs/protocol.md).
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import numpy as np

SNAPSHOT_MAGIC = b"LI2S"
SNAPSHOT_VERSION = 1
# magic, uint16 version, uint16 flags (0), uint32 header length; little-endian
_PREFIX = struct.Struct("<4sHHI")
_ALIGN = 8  # every array starts on an 8-byte boundary so the browser can view it in place
DTYPES = {"float32": np.float32, "int32": np.int32, "uint8": np.uint8}
# the bound of every seq / step / index a client sends: exact in a browser's JSON numbers, and
# far inside SQLite's 64-bit integers (a larger one would fail there, not here)
MAX_WIRE_INT = 2**53 - 1


def _plain(obj: Any) -> Any:
    """Fallback for json.dumps: numpy scalars and arrays become Python values."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def finite(obj: Any) -> Any:
    """Replace NaN/±inf by None (JSON.parse rejects them), recursively."""
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return finite(obj.tolist())
    return obj


def to_json(obj: Any) -> str:
    """Compact strict JSON; non-finite floats become null (only walked when present)."""
    try:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False, default=_plain)
    except ValueError:
        return json.dumps(finite(obj), separators=(",", ":"), allow_nan=False, default=_plain)


def encode_snapshot(run_id: str, seq: int, step: int, arrays: dict[str, np.ndarray]) -> bytes:
    """One binary snapshot frame: prefix, JSON header (padded), 8-byte aligned array payload."""
    specs, chunks, offset = [], [], 0
    for name, arr in arrays.items():
        a = np.ascontiguousarray(arr)
        if a.dtype.name not in DTYPES:
            a = a.astype(np.float32)
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        pad = -offset % _ALIGN
        if pad:
            chunks.append(b"\0" * pad)
            offset += pad
        specs.append({"name": name, "dtype": a.dtype.name, "shape": list(a.shape),
                      "offset": offset, "nbytes": a.nbytes})
        chunks.append(a.tobytes())
        offset += a.nbytes
    header = to_json({"type": "snapshot", "kind": "snapshot", "run_id": run_id, "seq": seq,
                      "step": step, "arrays": specs}).encode()
    header += b" " * (-(_PREFIX.size + len(header)) % _ALIGN)
    return b"".join([_PREFIX.pack(SNAPSHOT_MAGIC, SNAPSHOT_VERSION, 0, len(header)), header,
                     *chunks])


def decode_snapshot(frame: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """Inverse of encode_snapshot: (header, {name: array}); raises ValueError on a bad frame."""
    if len(frame) < _PREFIX.size:
        raise ValueError("snapshot frame shorter than its prefix")
    magic, version, _flags, header_len = _PREFIX.unpack_from(frame)
    if magic != SNAPSHOT_MAGIC or version != SNAPSHOT_VERSION:
        raise ValueError(f"not a version-{SNAPSHOT_VERSION} snapshot frame: {magic!r} v{version}")
    start = _PREFIX.size + header_len
    header = json.loads(frame[_PREFIX.size:start])
    arrays = {}
    for spec in header["arrays"]:
        lo = start + spec["offset"]
        raw = frame[lo:lo + spec["nbytes"]]
        arrays[spec["name"]] = np.frombuffer(raw, dtype=DTYPES[spec["dtype"]]).reshape(
            spec["shape"])
    return header, arrays
