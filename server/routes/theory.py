"""POST /api/theory/predict: the Li₂ prediction for a config before any run (the theory card).

GET /api/theory/indicators: the stage detector's indicators in a student's words, and what
each stage needs to give way to the next (li2core.stage_words).
"""

from __future__ import annotations

from fastapi import APIRouter

from li2core import stage_words, theory
from li2core.config import RunConfig

from .groups import describe

router = APIRouter(tags=["theory"])


@router.post("/api/theory/predict")
async def predict(config: RunConfig) -> dict:
    """{group, n_train, p_crit, prediction}: the same facts a run's `started` message carries."""
    if config.group == "custom":
        group = config.build_group()
        info = {**group.describe(), "p_crit": theory.p_crit(group),
                "min_width": theory.min_width(group)}
    else:
        info = describe(config.group)
    m = info["order"]
    return {"group": info, "n_train": round(config.train_fraction * m * m), "n_rows": m * m,
            "p_crit": info["p_crit"], "prediction": theory.predict_verdict(config)}


@router.get("/api/theory/indicators")
async def indicators() -> dict:
    return stage_words.vocabulary()
