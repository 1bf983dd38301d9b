"""FastAPI dependencies as Annotated aliases; routes import these, never app.state directly."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException
from fastapi.requests import HTTPConnection

from .identity import client_key
from .service import RunService
from .settings import Settings
from .store import RunStore


def get_settings(conn: HTTPConnection) -> Settings:
    return conn.app.state.settings


def get_service(conn: HTTPConnection) -> RunService:
    return conn.app.state.service


def get_store(conn: HTTPConnection) -> RunStore:
    return conn.app.state.service.store


def client_id(conn: HTTPConnection) -> str:
    """Quota and ownership key: the signed cookie's id, else X-Client-Id, else the IP."""
    return client_key(conn)


def is_instructor(settings: Settings, token: str | None) -> bool:
    """A token is configured and ``token`` matches it (compared in constant time)."""
    expected = settings.instructor_token
    return expected is not None and token is not None and \
        hmac.compare_digest(token.encode(), expected.encode())


def require_instructor(settings: Annotated[Settings, Depends(get_settings)],
                       x_instructor_token: Annotated[str | None, Header()] = None) -> None:
    """When a token is configured, commands need it in X-Instructor-Token."""
    expected = settings.instructor_token
    if expected is None:
        return
    if x_instructor_token is None:
        raise HTTPException(401, "X-Instructor-Token header required: this server restricts "
                                 "creating, cancelling and deleting runs to instructors")
    if not is_instructor(settings, x_instructor_token):
        raise HTTPException(403, "X-Instructor-Token does not match")


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServiceDep = Annotated[RunService, Depends(get_service)]
StoreDep = Annotated[RunStore, Depends(get_store)]
ClientDep = Annotated[str, Depends(client_id)]
InstructorDep = Annotated[None, Depends(require_instructor)]
