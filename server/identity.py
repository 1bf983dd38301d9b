"""Who is asking: the server gives each browser a signed cookie, and its id keys quotas and owns
runs. A request without a valid cookie (curl, scripts) is keyed by its X-Client-Id header, else
by its IP address; those keys can never equal a cookie's (docs/security.md)."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from http.cookies import SimpleCookie

from fastapi import HTTPException
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "li2_client"
MAX_AGE = 400 * 24 * 3600  # the longest a browser keeps a cookie
SCOPE_KEY = "li2.client"  # the verified cookie id, put into the ASGI scope for client_id()
_HEADER_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_COOKIE_VALUE = re.compile(r"^([A-Za-z0-9_-]{16})\.([0-9a-f]{32})$")


def load_secret(settings) -> bytes:
    """LI2_CLIENT_SECRET, else a random secret kept in <data_dir>/client-secret (so cookies
    survive a restart), else, for the memory store, one per process."""
    if settings.client_secret:
        return settings.client_secret.encode()
    if settings.store == "memory":
        return secrets.token_bytes(32)
    path = settings.data_dir / "client-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


class ClientIdentity:
    """Issues and checks cookie values ``<id>.<hmac>``; a forged or edited one is ignored."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _sign(self, client: str) -> str:
        return hmac.new(self._secret, client.encode(), hashlib.sha256).hexdigest()[:32]

    def issue(self, client: str | None = None) -> str:
        """A cookie value for ``client`` (16 URL-safe characters; default: a new random id)."""
        client = client or secrets.token_urlsafe(12)
        return f"{client}.{self._sign(client)}"

    def verify(self, value: str | None) -> str | None:
        match = _COOKIE_VALUE.match(value or "")
        if match and hmac.compare_digest(match.group(2), self._sign(match.group(1))):
            return match.group(1)
        return None


def _cookie(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            jar = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # noqa: BLE001 - a malformed Cookie header is no identity
                return None
            if COOKIE in jar:
                return jar[COOKIE].value
    return None


class IdentityCookie:
    """ASGI middleware: verifies the cookie into ``scope[SCOPE_KEY]``; a browser without a valid
    one gets a new cookie with the response (its requests carry it from then on)."""

    def __init__(self, app: ASGIApp, identity: ClientIdentity) -> None:
        self.app, self.identity = app, identity

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = self.identity.verify(_cookie(scope))
        if client is not None:
            scope[SCOPE_KEY] = client
            await self.app(scope, receive, send)
            return
        # Lax, not Strict: a student arriving by a link from another site must still send
        # it, or the lab would hand out a new identity and the old runs would stop being theirs
        header = (f"{COOKIE}={self.identity.issue()}; Path=/; Max-Age={MAX_AGE}; HttpOnly; "
                  "SameSite=Lax").encode()

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()),
                                                  (b"set-cookie", header)]}
            await send(message)
        await self.app(scope, receive, send_with_cookie)


def client_keys(conn: HTTPConnection) -> list[str]:
    """Every key this request holds, the one that names it first: ``c:<cookie id>``,
    ``id:<X-Client-Id>``, ``ip:<address>``. The prefixes keep a header or an address from
    claiming a browser's identity; a run created without a cookie is owned by its fallback key."""
    keys = []
    if client := conn.scope.get(SCOPE_KEY):
        keys.append(f"c:{client}")
    header = conn.headers.get("x-client-id")
    if header is not None:
        if not _HEADER_ID.match(header):
            raise HTTPException(422, [{"loc": ["header", "x-client-id"], "type": "value_error",
                                       "msg": "X-Client-Id: 1-64 characters of letters, "
                                              "digits, _ . : -"}])
        keys.append(f"id:{header}")
    keys.append(f"ip:{conn.client.host if conn.client else 'unknown'}")
    return keys


def client_key(conn: HTTPConnection) -> str:
    """The quota and ownership key of a request: its cookie's, else its header's, else its IP."""
    return client_keys(conn)[0]
