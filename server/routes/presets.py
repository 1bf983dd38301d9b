"""GET /api/presets: the named starting configurations of li2core.presets."""

from __future__ import annotations

from fastapi import APIRouter

from li2core.presets import PRESETS

router = APIRouter(tags=["presets"])


@router.get("/api/presets")
async def list_presets() -> list[dict]:
    return [{"name": name, "description": description, "config": config.model_dump()}
            for name, (description, config) in PRESETS.items()]
