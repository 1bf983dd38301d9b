"""GET /api/vocabulary: the words every page renders (li2core.vocabulary), never re-spelled."""

from __future__ import annotations

from fastapi import APIRouter

from li2core.vocabulary import as_dict

router = APIRouter(tags=["vocabulary"])


@router.get("/api/vocabulary")
async def vocabulary() -> dict:
    """Stage names, outcome words, theory verdicts and the sentences that compare them."""
    return as_dict()
