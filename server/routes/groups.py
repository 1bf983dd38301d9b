"""GET /api/groups and /api/groups/{spec}: groups with the theory's facts about them."""

from __future__ import annotations

from functools import lru_cache

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError

from li2core import theory
from li2core.groups import GroupError, parse_group

router = APIRouter(tags=["groups"])

# a spread of kinds and sizes for pickers; any valid spec works in /api/groups/{spec}
CATALOGUE = ("Z7", "Z13", "Z23", "Z31", "Z47", "Z71", "Z97", "Z127", "Z4xZ7", "Z2xZ2xZ9",
             "Z3xZ3xZ3", "D5", "D7", "D13", "S3", "S4", "S5")


@lru_cache(maxsize=256)
def describe(spec: str) -> dict:
    """Group facts plus p_crit and min_width (cached: non-abelian irreps are not free)."""
    group = parse_group(spec)
    info = group.describe()
    return {"spec": spec, "name": info["name"], "order": info["order"], "kind": info["kind"],
            "abelian": info["abelian"], "classes": info["classes"],
            "p_crit": theory.p_crit(group),
            "min_width": theory.min_width(group)}


@router.get("/api/groups")
async def list_groups() -> list[dict]:
    return [describe(spec) for spec in CATALOGUE]


@router.get("/api/groups/{spec}")
async def get_group(spec: str) -> dict:
    try:
        return describe(spec.strip())
    except GroupError as exc:
        raise RequestValidationError([{"type": "value_error", "loc": ("path", "spec"),
                                       "msg": str(exc), "input": spec}]) from None
