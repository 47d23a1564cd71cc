"""The API's front door, a pure ASGI middleware: the bearer token of `/v1/*` is checked from the headers before
a single body byte is read (401; a viewer key's write is 403 there too), and no body may be larger than
`MSGRELAY_MAX_BODY_BYTES` (an upload: `MSGRELAY_MAX_UPLOAD_BYTES`), 413 naming the limit.

It sits outside FastAPI's routing, so a request without the token never reaches the JSON parser or a body model.
The principal it finds (`api.access`) is left in the request's state for the routes' own dependency, which checks
again when it is missing (and documents the scheme in OpenAPI).
"""
from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.access import UNAUTHORIZED, principal_of, refused_method
from api.inputs import safe_text
from providers.errors import ConfigError

#: routes under this prefix need a bearer token when MSGRELAY_API_TOKEN is set or API keys are configured
PROTECTED_PREFIX = "/v1"
#: paths whose bodies are streamed to the database in constant memory: capped by the upload limit
STREAMED_PATHS: frozenset[str] = frozenset({"/v1/jobs/upload"})
__all__ = ["UNAUTHORIZED", "Guard", "header_bytes", "is_protected", "token_matches"]


def token_matches(authorization: bytes | str | None) -> bool:
    """True when no token and no API key is configured, or `authorization` is `Bearer <token>` of
    MSGRELAY_API_TOKEN or of a configured key (compared as bytes, in constant time, so any header, ASCII or not, is
    just a wrong token)."""
    return principal_of(authorization) is not None


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
        if is_protected(scope["path"]):
            try:
                principal = principal_of(header_bytes(scope, b"authorization"))
            except ConfigError as exc:  # the keys are in the accounts file: without it nobody is known
                await _answer(send, 503, f"configuration error: {safe_text(str(exc))}")
                return
            if principal is None:
                await _answer(send, 401, UNAUTHORIZED, {"WWW-Authenticate": "Bearer"})
                return
            if (why := refused_method(principal, scope["method"])) is not None:
                await _answer(send, 403, why)
                return
            scope.setdefault("state", {})["principal"] = principal
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

