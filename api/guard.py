"""The API's front door, a pure ASGI middleware: the bearer token of `/v1/*` is checked from the headers before
a single body byte is read, and no body may be larger than `MSGRELAY_MAX_BODY_BYTES` (an upload:
`MSGRELAY_MAX_UPLOAD_BYTES`), 413 naming the limit.

It sits outside FastAPI's routing, so a request without the token never reaches the JSON parser or a body model.
The routes' own `require_token` dependency checks again (and documents the scheme in OpenAPI).
"""
from __future__ import annotations

import json
import secrets

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from msgrelay.settings import get_settings

#: routes under this prefix need the bearer token when MSGRELAY_API_TOKEN is set
PROTECTED_PREFIX = "/v1"
#: paths whose bodies are streamed to the database in constant memory: capped by the upload limit
STREAMED_PATHS: frozenset[str] = frozenset({"/v1/jobs/upload"})
UNAUTHORIZED = "missing or wrong bearer token"


def token_matches(authorization: bytes | str | None) -> bool:
    """True when MSGRELAY_API_TOKEN is unset, or `authorization` is `Bearer <token>` (compared as bytes, in
    constant time, so any header, ASCII or not, is just a wrong token)."""
    token = get_settings().api_token
    if token is None:
        return True
    if authorization is None:
        return False
    raw = authorization.encode("utf-8", "surrogateescape") if isinstance(authorization, str) else authorization
    scheme, _, given = raw.strip().partition(b" ")
    expected = token.get_secret_value().encode("utf-8", "surrogateescape")
    return scheme.lower() == b"bearer" and secrets.compare_digest(given.strip(), expected)


def is_protected(path: str) -> bool:
    """True for `/v1` and everything under it."""
    return path == PROTECTED_PREFIX or path.startswith(PROTECTED_PREFIX + "/")


class BodyTooLarge(HTTPException):
    """413: the body is larger than the configured cap (raised from `receive`, so any reader gets it)."""

    def __init__(self, limit: int, variable: str = "MSGRELAY_MAX_BODY_BYTES") -> None:
        super().__init__(status_code=413, detail=f"request body larger than {limit} bytes, the limit set by "
                                                 f"{variable}")


def header_bytes(scope: Scope, name: bytes) -> bytes | None:
    """The first value of a request header (names are lower-case in ASGI)."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return value
    return None


async def _answer(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    """A JSON error answer in FastAPI's `{"detail": ...}` shape."""
    body = json.dumps({"detail": detail}, separators=(",", ":")).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Authenticate `/v1/*` before the body, then cap every body at `max_body_bytes`."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse (401, 413) or pass the request on with a `receive` that counts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if is_protected(scope["path"]) and not token_matches(header_bytes(scope, b"authorization")):
            await _answer(send, 401, UNAUTHORIZED, {"WWW-Authenticate": "Bearer"})
            return
        upload = scope["path"] in STREAMED_PATHS
        limit = self.max_upload_bytes if upload else self.max_body_bytes
        too_large = BodyTooLarge(limit, "MSGRELAY_MAX_UPLOAD_BYTES" if upload else "MSGRELAY_MAX_BODY_BYTES")
        declared = header_bytes(scope, b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            await _answer(send, 413, too_large.detail)  # refused unread
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge as exc:
            if started:
                raise
            await _answer(send, 413, str(exc.detail))

