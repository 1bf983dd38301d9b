"""The 4xx (and 503) answers of every API route, added to the OpenAPI document in one table so
clients and the schemathesis test see what each route really returns (docs/security.md)."""

from __future__ import annotations

from fastapi import FastAPI

WHY = {
    401: "the server has an instructor token and the request carries none",
    403: "a cross-site request, a wrong instructor token, or another client's run or sweep",
    404: "no such run, sweep or broadcast",
    409: "the run's or sweep's state does not allow this",
    413: "the body is larger than this route's limit",
    415: "the body is not JSON (a bundle: not application/zip or octet-stream)",
    422: "a parameter or body field is invalid; detail[].loc names it",
    429: "this client already has its quota of active runs or sweeps",
    503: "the queue is full, or the data disk is too full to store anything new",
}
_WRITE = (403, 413, 415, 422)  # every POST / DELETE passes the request guard
_COMMAND = (*_WRITE, 401)  # ... and the instructor-token check
_RUN = "/api/runs/{run_id}"
# "METHOD path" → the codes it answers besides its 2xx
ROUTE_ERRORS: dict[str, tuple[int, ...]] = {
    "POST /api/runs": (*_COMMAND, 429, 503),
    f"POST {_RUN}/fork": (*_COMMAND, 404, 429, 503),
    f"POST {_RUN}/cancel": (*_COMMAND, 404, 409),
    f"DELETE {_RUN}": (*_COMMAND, 404, 409),
    "POST /api/bundles": (*_COMMAND, 503),
    f"POST {_RUN}/broadcast": (*_COMMAND, 404, 409),
    "DELETE /api/broadcasts/{code}": (*_COMMAND, 404),
    "POST /api/sweeps": (*_COMMAND, 429, 503),
    "POST /api/sweeps/{sweep_id}/cancel": (*_COMMAND, 404, 409),
    f"GET {_RUN}/bundle": (404, 409, 422),
    "GET /api/groups/{spec}": (422,),
    "GET /api/broadcasts/{code}": (404, 422),
    "GET /api/sweeps/{sweep_id}": (404, 422),
    "GET /api/sweeps/{sweep_id}/outcomes.csv": (404, 422),
    "GET /api/runs": (422,),
    "GET /api/sweeps": (422,),
}
# a stored snapshot the run's config cannot evaluate: 409 (server/routes/predict.py)
ROUTE_ERRORS.update({f"GET {_RUN}{tail}": (404, 409, 422) for tail in ("/table", "/predict")})
ROUTE_ERRORS.update({f"GET {_RUN}{tail}": (404, 422) for tail in (
    "", "/metrics", "/stages", "/snapshots", "/snapshot", "/series", "/metrics.csv",
    "/metrics.json", "/broadcast")})

ERROR_SCHEMA = {"title": "Error", "type": "object", "required": ["detail"], "properties": {
    "detail": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]}}}


def document_errors(app: FastAPI) -> None:
    """Wrap app.openapi so each operation lists its error answers (a route missing from the
    table gets 422 when it takes input; tests/server/test_schemathesis.py finds the rest)."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        for path, operations in schema["paths"].items():
            for method, operation in operations.items():
                has_input = bool(operation.get("parameters")) or "requestBody" in operation
                codes = ROUTE_ERRORS.get(f"{method.upper()} {path}", (422,) if has_input else ())
                for code in codes:
                    operation["responses"].setdefault(str(code), {
                        "description": WHY[code],
                        "content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/Error"}}}})
        app.openapi_schema = schema
        return schema
    app.openapi = openapi
