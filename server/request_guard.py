"""ASGI middleware that refuses bad requests before any route reads them: cross-site writes
(403), bodies that are not JSON (415), bodies over the route's limit (413, counted while they
arrive, before parsing) and JSON that is nested too deep or holds NaN / ±Infinity (422)."""

from __future__ import annotations

import json
import math

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import unprocessable
from .routes.live import origin_allowed

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_DEPTH = 32  # the deepest real body (a sweep spec) nests 4 levels
# routes whose body is a file, not JSON: their media types (the route caps their size itself)
RAW_BODIES = {"/api/bundles": ("application/zip", "application/octet-stream",
                               "application/x-zip-compressed")}


class BodyError(ValueError):
    """A JSON body refused before parsing reaches a route."""


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BodyError(f"number {text[:32]} is out of range (numbers must be finite)")
    return value


def _no_constant(name: str):
    raise BodyError(f"{name} is not valid JSON (numbers must be finite)")


def check_json(body: bytes, max_depth: int = MAX_DEPTH) -> None:
    """Raise BodyError for JSON deeper than ``max_depth`` or with non-finite numbers; text
    that is not JSON at all is left for the route's own parser to report."""
    try:
        value = json.loads(body, parse_float=_finite, parse_constant=_no_constant)
    except RecursionError:
        raise BodyError(f"JSON nested deeper than {max_depth} levels") from None
    except BodyError:
        raise
    except ValueError:
        return
    stack = [(value, 1)]
    while stack:  # iterative: the check itself must not recurse
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > max_depth:
                raise BodyError(f"JSON nested deeper than {max_depth} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


def _refuse(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def media_type(conn: HTTPConnection) -> str:
    return conn.headers.get("content-type", "").split(";")[0].strip().lower()


class RequestGuard:
    """Wraps the app; ``json_max_bytes`` bounds every JSON body, ``raw_max_bytes`` the files
    of RAW_BODIES (checked here from Content-Length, and by the route while it reads)."""

    def __init__(self, app: ASGIApp, *, allowed_origins: tuple[str, ...], json_max_bytes: int,
                 raw_max_bytes: int) -> None:
        self.app, self.allowed_origins = app, allowed_origins
        self.json_max_bytes, self.raw_max_bytes = json_max_bytes, raw_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        refusal = self._check_headers(conn)
        if refusal is None and scope["path"] not in RAW_BODIES and _has_body(conn):
            body, refusal = await self._read_json(receive)
            if refusal is None:
                receive = _replay(body, receive)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _check_headers(self, conn: HTTPConnection) -> JSONResponse | None:
        if conn.headers.get("sec-fetch-site") == "cross-site" or \
                not origin_allowed(conn, self.allowed_origins):
            return _refuse(403, "cross-site request refused: commands are accepted only from "
                                "this server's own pages or LI2_ALLOWED_ORIGINS")
        path = conn.scope["path"]
        raw = RAW_BODIES.get(path)
        if _has_body(conn):
            kind = media_type(conn)
            wanted = raw or ("application/json",)
            # a file with no type is taken as bytes (curl --data-binary -H '': scripts); a
            # browser's cross-site request carries an Origin, refused above
            if kind not in wanted and not (raw and kind == ""):
                return _refuse(415, f"Content-Type {kind or 'missing'}: this route takes "
                                    f"{' or '.join(wanted)}")
        cap = self.raw_max_bytes if raw else self.json_max_bytes
        length = conn.headers.get("content-length", "")
        if length.isdecimal() and int(length) > cap:
            return _too_large(cap, raw is not None)
        return None

    async def _read_json(self, receive: Receive) -> tuple[bytes, JSONResponse | None]:
        """The body, stopping as soon as it passes the cap; then the JSON checks."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.json_max_bytes:
                return b"", _too_large(self.json_max_bytes, False)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            check_json(body)
        except BodyError as exc:
            return body, unprocessable(["body"], str(exc))
        return body, None


def _has_body(conn: HTTPConnection) -> bool:
    length = conn.headers.get("content-length")
    return "transfer-encoding" in conn.headers or (length is not None and length != "0")


def _too_large(cap: int, raw: bool) -> JSONResponse:
    setting = "LI2_BUNDLE_MAX_BYTES" if raw else "LI2_JSON_MAX_BYTES"
    return _refuse(413, f"request body larger than this route's limit of {cap} bytes ({setting})")


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive() that hands the already-read body to the app once, then the real one (which
    reports the client leaving)."""
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return replay
