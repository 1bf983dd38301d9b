"""GET /api/runs/{id}/predict and /table: the network's answers, from a stored snapshot's W, V
(and W2..W_L of a deeper network).

Every snapshot a run yields carries W and V and is stored as it arrives, so both routes work
for a live run (its newest snapshot) and a stored one (any snapshot step) alike.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import threading
from collections import OrderedDict
from typing import Annotated

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.exceptions import RequestValidationError

from li2core.config import RunConfig
from li2core.element_names import element_names
from li2core.predict import (
    TableOutcome,
    WeightsMismatch,
    ask,
    is_training_pair,
    snapshot_layers,
    table_outcome,
)

from ..deps import StoreDep
from ..protocol import MAX_WIRE_INT, to_json
from ..store import RunRecord, RunStore, StoredSnapshot
from .lookup import stored_run

router = APIRouter(prefix="/api/runs", tags=["predict"])

StepQuery = Annotated[int | None, Query(
    ge=0, le=MAX_WIRE_INT, description="the stored snapshot at or before this step; omitted → "
    "the newest")]
# tables of recent snapshots: a replay slider revisits steps. The key holds a digest of V, so
# a run id reused by another store (tests, a re-imported bundle) never gets a stale table.
_CACHE_SIZE = 16
_cache: OrderedDict[tuple, TableOutcome] = OrderedDict()
_cache_lock = threading.Lock()


def _not_found(field: str, msg: str) -> HTTPException:
    return HTTPException(404, [{"loc": ["query", field], "type": "not_found", "msg": msg}])


def _last_step(record: RunRecord) -> int:
    parent = (record.lineage or {}).get("parent") or {}
    return int(parent.get("step", 0)) + int(record.config.get("steps", 0))


def _snapshot(store: RunStore, record: RunRecord, step: int | None) -> StoredSnapshot:
    if step is not None and step > _last_step(record):
        raise _not_found("step", f"step: run {record.id} ends at step {_last_step(record)}")
    snap = store.snapshot(record.id, step)
    if snap is None or "W" not in snap.arrays or "V" not in snap.arrays:
        where = "yet" if step is None else f"at or before step {step}"
        raise _not_found("step", f"step: run {record.id} has no stored weights {where}")
    return snap


def _config(record: RunRecord) -> RunConfig:
    return RunConfig(**record.config)


def _outcome(record: RunRecord, snap: StoredSnapshot) -> TableOutcome:
    v = np.ascontiguousarray(snap.arrays["V"])
    key = (record.id, snap.step, to_json(record.config), hashlib.sha1(v.tobytes()).hexdigest())
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    config = _config(record)
    outcome = table_outcome(config, snap.arrays["W"], snap.arrays["V"],
                            snapshot_layers(config, snap.arrays))
    with _cache_lock:
        _cache[key] = outcome
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return outcome


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"))
                            .tobytes()).decode("ascii")


def table_body(record: RunRecord, snap: StoredSnapshot) -> dict:
    """The /table resource (docs/protocol.md): flags, labels, predictions, margins per cell."""
    out = _outcome(record, snap)
    flags = out.train.astype(np.uint8) | (out.correct.astype(np.uint8) << 1)
    pred_dtype = np.uint8 if out.order <= 256 else np.uint16
    return {"run_id": record.id, "step": snap.step, "order": out.order,
            "group": record.config.get("group"),
            "names": element_names(_config(record).build_group()),
            "encoding": "base64", "cells": _b64(flags),
            "label": _b64(out.label.astype(pred_dtype)),
            "prediction": _b64(out.prediction.astype(pred_dtype)),
            "prediction_dtype": np.dtype(pred_dtype).name,
            "margin": _b64(out.margin.astype(np.float32)),
            "counts": out.counts(), **out.accuracies()}


def predict_body(record: RunRecord, snap: StoredSnapshot, a: int, b: int) -> dict:
    config = _config(record)
    names = element_names(config.build_group())
    answer = ask(config, snap.arrays["W"], snap.arrays["V"], a, b,
                 layers=snapshot_layers(config, snap.arrays))
    for s in answer["scores"]:
        s["name"] = names[s["element"]]
    return {"run_id": record.id, "a": a, "b": b, "step": snap.step, **answer,
            "correct": answer["prediction"] == answer["label"],
            "train": is_training_pair(config, a, b),
            "names": {"a": names[a], "b": names[b], "label": names[answer["label"]],
                      "prediction": names[answer["prediction"]]}}


def _check_element(field: str, value: int, order: int) -> None:
    if value >= order:
        raise RequestValidationError([{
            "loc": ["query", field], "type": "less_than", "input": value,
            "msg": f"{field}: element indices of this run's group are 0..{order - 1}"}])


def _mismatch(exc: WeightsMismatch) -> HTTPException:
    return HTTPException(409, f"the stored snapshot cannot be evaluated: {exc}")


@router.get("/{run_id}/table")
async def run_table(run_id: str, store: StoreDep, step: StepQuery = None) -> Response:
    """Per cell of the M×M table: train flag, right/wrong, prediction and margin, base64."""
    record = await stored_run(store, run_id)
    snap = await asyncio.to_thread(_snapshot, store, record, step)
    try:
        body = await asyncio.to_thread(table_body, record, snap)
    except WeightsMismatch as exc:
        raise _mismatch(exc) from None
    return Response(to_json(body), media_type="application/json")


@router.get("/{run_id}/predict")
async def run_predict(
    run_id: str, store: StoreDep,
    a: Annotated[int, Query(ge=0, le=MAX_WIRE_INT, description="first operand, an element index")],
    b: Annotated[int, Query(ge=0, le=MAX_WIRE_INT, description="second operand, an element index")],
    step: StepQuery = None,
) -> Response:
    """The network's answer for a∘b: prediction, true label, top classes with their scores."""
    record = await stored_run(store, run_id)
    order = _config(record).group_order
    _check_element("a", a, order)
    _check_element("b", b, order)
    snap = await asyncio.to_thread(_snapshot, store, record, step)
    try:
        body = await asyncio.to_thread(predict_body, record, snap, a, b)
    except WeightsMismatch as exc:
        raise _mismatch(exc) from None
    return Response(to_json(body), media_type="application/json")
