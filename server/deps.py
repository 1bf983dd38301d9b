"""FastAPI dependencies as Annotated aliases; routes import these, never app.state directly."""

from __future__ import annotations

import hmac
import re
from typing import Annotated

from fastapi import Depends, Header, HTTPException
from fastapi.requests import HTTPConnection

from .service import RunService
from .settings import Settings
from .store import RunStore

_CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def get_settings(conn: HTTPConnection) -> Settings:
    return conn.app.state.settings


def get_service(conn: HTTPConnection) -> RunService:
    return conn.app.state.service


def get_store(conn: HTTPConnection) -> RunStore:
    return conn.app.state.service.store


def client_id(conn: HTTPConnection) -> str:
    """Quota key: the X-Client-Id header if well-formed, else the peer's IP address."""
    header = conn.headers.get("x-client-id")
    if header is not None:
        if not _CLIENT_ID.match(header):
            raise HTTPException(422, "X-Client-Id: 1-64 characters of letters, digits, _ . : -")
        return f"id:{header}"
    return f"ip:{conn.client.host if conn.client else 'unknown'}"


def require_instructor(settings: Annotated[Settings, Depends(get_settings)],
                       x_instructor_token: Annotated[str | None, Header()] = None) -> None:
    """When a token is configured, commands need it in X-Instructor-Token."""
    expected = settings.instructor_token
    if expected is None:
        return
    if x_instructor_token is None:
        raise HTTPException(401, "X-Instructor-Token header required: this server restricts "
                                 "creating, cancelling and deleting runs to instructors")
    if not hmac.compare_digest(x_instructor_token.encode(), expected.encode()):
        raise HTTPException(403, "X-Instructor-Token does not match")


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServiceDep = Annotated[RunService, Depends(get_service)]
StoreDep = Annotated[RunStore, Depends(get_store)]
ClientDep = Annotated[str, Depends(client_id)]
InstructorDep = Annotated[None, Depends(require_instructor)]
