"""GET /api/config/schema: RunConfig bounds and choices, so UIs do not duplicate them."""

from __future__ import annotations

from fastapi import APIRouter

from li2core.config import field_bounds

router = APIRouter(tags=["config"])


@router.get("/api/config/schema")
async def config_schema() -> dict:
    return field_bounds()
