"""Error bodies: every 4xx is {"detail": ...}; a 422 lists {loc, msg, type} entries whose loc
names the field, and never echoes the input (it may be huge, or NaN that JSON cannot carry)."""

from __future__ import annotations

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from li2core.config import error_field

MAX_MESSAGE = 500  # characters of one message; pydantic quotes inputs into some of them


def error_entries(errors) -> list[dict]:
    """pydantic / FastAPI error dicts as plain {loc, msg, type}; a cross-field check's
    FieldError adds its field to loc, so clients never read the field out of the text."""
    out = []
    for err in errors:
        loc = [p if isinstance(p, str | int) else str(p) for p in err.get("loc", ())]
        field = error_field(err)
        if field and (not loc or loc[-1] != field):
            loc.append(field)
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        if len(msg) > MAX_MESSAGE:
            msg = msg[:MAX_MESSAGE] + "…"
        out.append({"loc": loc, "msg": msg, "type": str(err.get("type", "value_error"))})
    return out


def unprocessable(loc: list, msg: str, kind: str = "value_error") -> JSONResponse:
    return JSONResponse({"detail": [{"loc": loc, "msg": msg, "type": kind}]}, status_code=422)


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse({"detail": error_entries(exc.errors())}, status_code=422)
