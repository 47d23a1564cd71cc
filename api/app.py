"""FastAPI app: producer API under /v1, provider push receivers under /callbacks, /healthz and /metrics."""
from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.accounts import router as accounts_router
from api import console
from api.callbacks import router as callbacks_router
from api.access import Principal, current
from api.audit import router as audit_router
from api.guard import Guard
from api.inputs import V1_ANSWERS, SafeJSONResponse, answers, safe_json, safe_text, validation_errors
from api.jobs import router as jobs_router
from api.routes import router as routes_router
from api.suppressions import router as suppressions_router
from api.webhooks import router as webhooks_router
from msgrelay import heap
from msgrelay.accounts import get_accounts, reload_accounts
from msgrelay.settings import get_settings
from providers.errors import ConfigError, InvalidInput, NotFound

log = logging.getLogger("msgrelay.api")
# /callbacks/<provider>/<account>/<token>[/...]: the token is a secret and never logged
_TOKEN_IN_PATH = re.compile(r"^(/callbacks/[^/]+/[^/]+/)[^/]+")
#: FastAPI's whole answer (a 400) to a JSON body it could not read; the cause says why, and the answer says it
FASTAPI_UNPARSED = "There was an error parsing the body"


def redact_path(path: str) -> str:
    """The path with a callback token replaced by ***."""
    return _TOKEN_IN_PATH.sub(r"\1***", path)


class AccessLog:
    """One line per request (method, path without its secrets, status, milliseconds to the answer's start), as
    plain ASGI: Starlette's `BaseHTTPMiddleware` runs every request through a task group and memory streams,
    which cost a verification call more than the rest of its way through the API."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                log.info("%s %s %s %.1fms", scope["method"], redact_path(scope["path"]), message["status"],
                         (time.perf_counter() - started) * 1000)
            await send(message)

        await self.app(scope, receive, logged)


def require_token(_principal: Principal = Depends(current)) -> None:
    """Bearer auth on /v1 when MSGRELAY_API_TOKEN is set or API keys are configured (otherwise the API binds to
    loopback only), and a viewer key only reads: the Guard middleware has checked it already, before the body, and
    this repeats it for routers mounted without it (`api.access` holds every rule)."""


def invalid_input_response(exc: InvalidInput) -> JSONResponse:
    """422 naming the field and the rule, in FastAPI's own error shape."""
    field, rule = safe_text(exc.field), safe_text(exc.rule)
    loc = ["body", *[int(p) if p.isascii() and p.isdigit() else p for p in re.split(r"[.\[\]]+", field) if p]]
    return JSONResponse(status_code=422, content={
        "detail": [{"loc": loc, "field": field, "msg": rule, "type": "value_error"}]})


def unparsable_body(cause: BaseException | None) -> str | None:
    """Why FastAPI could not parse a JSON body (it answers a bare 400 "error parsing the body"), or None."""
    if isinstance(cause, UnicodeDecodeError):
        return f"must be UTF-8 JSON: byte 0x{cause.object[cause.start]:02x} at position {cause.start} is not UTF-8"
    if isinstance(cause, RecursionError):
        return "must be JSON nested less deeply (arrays or objects inside each other)"
    if isinstance(cause, ValueError):
        digits = "digits" in str(cause)  # Python refuses to read an integer of more than 4,300 digits
        return "must be valid JSON: an integer has more than 4,300 digits" if digits else "must be valid JSON"
    return None


def config_problem() -> str | None:
    """Why the accounts this process uses are broken (the ConfigError's text: file, account, field; never a
    value), or None when they load."""
    try:
        get_accounts()
    except ConfigError as exc:
        return str(exc)
    return None


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    """Read the accounts before answering anything: a bad file stops the server with file, account and field."""
    try:
        accounts = reload_accounts()  # the file as it is now, not as an earlier import cached it
    except ConfigError as exc:
        log.error("msgrelay api cannot start: %s", exc)
        raise
    log.info("accounts loaded: %d from %s", len(accounts), get_settings().accounts_file)
    import tasks  # noqa: F401  the Celery app a submit publishes with: loaded now, before the freeze
    heap.freeze_after_start()  # full collections skip what start-up built (a verification call waited for them)
    yield


def create_app() -> FastAPI:
    """The API app."""
    app = FastAPI(title="msgrelay", version="0.1.0", lifespan=lifespan, default_response_class=SafeJSONResponse,
                  description="Bulk voice, voice-SMS, international SMS, MMS and SMS through Chinese providers.")

    @app.exception_handler(InvalidInput)
    async def _invalid(_request: Request, exc: InvalidInput) -> JSONResponse:
        if isinstance(exc, NotFound):
            return JSONResponse(status_code=404, content={"detail": safe_text(exc.rule)})
        return invalid_input_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _unparsed(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": validation_errors(exc.errors())})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.detail == FASTAPI_UNPARSED and (why := unparsable_body(exc.__cause__)) is not None:
            return JSONResponse(status_code=422, content={"detail": [
                {"type": "json_invalid", "loc": ["body"], "field": "body", "msg": why}]})
        exc.detail = safe_json(exc.detail)  # a provider's text quoted in a 502 may hold anything
        return await http_exception_handler(request, exc)

    @app.exception_handler(ConfigError)
    async def _config(_request: Request, exc: ConfigError) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": f"configuration error: {safe_text(str(exc))}"})

    settings = get_settings()
    app.add_middleware(Guard, max_body_bytes=settings.max_body_bytes, max_upload_bytes=settings.max_upload_bytes)  # inside the access log: it logs 401/413

    app.add_middleware(AccessLog)

    for router in (jobs_router, accounts_router, webhooks_router, suppressions_router, routes_router, audit_router):
        app.include_router(router, prefix="/v1", dependencies=[Depends(require_token)], responses=V1_ANSWERS)
    app.include_router(callbacks_router, prefix="/callbacks")
    console.mount(app)

    @app.get("/healthz", responses=answers(s503="the database or Redis is unreachable, or the accounts file is broken"))
    def healthz() -> JSONResponse:
        """Database and Redis reachable; a broken accounts file adds `config` with its error and makes it 503."""
        from sqlalchemy import text

        from models import get_engine
        from msgrelay.limits import get_redis
        checks = {}
        try:
            with get_engine().connect() as conn:
                conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # report, don't crash: this is the health check
            checks["database"] = type(exc).__name__
        try:
            get_redis().ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = type(exc).__name__
        if (problem := config_problem()) is not None:
            checks["config"] = problem  # listed only when broken: the healthy answer stays {status, database, redis}
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(status_code=200 if ok else 503, content={"status": "ok" if ok else "degraded", **checks})

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> Response:
        """Prometheus text: messages and jobs per status."""
        from api.metrics import render
        return PlainTextResponse(render(), media_type="text/plain; version=0.0.4")

    app.openapi = lambda: openapi_with_bodies(app)
    return app


def openapi_with_bodies(app: FastAPI) -> dict:
    """The app's OpenAPI, with the schemas of the bodies that routes read themselves (`JobIn` of POST /v1/jobs,
    read as a stream when big) in its components, where their `openapi_extra` points."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        from api.jobs import JobIn
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        own = JobIn.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(own.pop("$defs", {}))
        components["JobIn"] = own
        app.openapi_schema = schema
    return app.openapi_schema


app = create_app()
