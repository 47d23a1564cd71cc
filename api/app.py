"""FastAPI app: producer API under /v1, provider push receivers under /callbacks, /healthz and /metrics."""
from __future__ import annotations

import logging
import re
import secrets
import time

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.accounts import router as accounts_router
from api.callbacks import router as callbacks_router
from api.jobs import router as jobs_router
from msgrelay.settings import get_settings
from providers.errors import InvalidInput, NotFound

log = logging.getLogger("msgrelay.api")
_bearer = HTTPBearer(auto_error=False)
# /callbacks/<provider>/<account>/<token>[/...]: the token is a secret and never logged
_TOKEN_IN_PATH = re.compile(r"^(/callbacks/[^/]+/[^/]+/)[^/]+")


def redact_path(path: str) -> str:
    """The path with a callback token replaced by ***."""
    return _TOKEN_IN_PATH.sub(r"\1***", path)


def require_token(creds: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
    """Bearer auth on /v1 when MSGRELAY_API_TOKEN is set (otherwise the API binds to loopback only)."""
    token = get_settings().api_token
    if token is None:
        return
    if creds is None or not secrets.compare_digest(creds.credentials, token.get_secret_value()):
        raise HTTPException(status_code=401, detail="missing or wrong bearer token",
                            headers={"WWW-Authenticate": "Bearer"})


def invalid_input_response(exc: InvalidInput) -> JSONResponse:
    """422 naming the field and the rule, in FastAPI's own error shape."""
    loc = ["body", *[int(p) if p.isdigit() else p for p in re.split(r"[.\[\]]+", exc.field) if p]]
    return JSONResponse(status_code=422, content={
        "detail": [{"loc": loc, "field": exc.field, "msg": exc.rule, "type": "value_error"}]})


def create_app() -> FastAPI:
    """The API app."""
    app = FastAPI(title="msgrelay", version="0.1.0",
                  description="Bulk voice, voice-SMS, international SMS, MMS and SMS through Chinese providers.")

    @app.exception_handler(InvalidInput)
    async def _invalid(_request: Request, exc: InvalidInput) -> JSONResponse:
        if isinstance(exc, NotFound):
            return JSONResponse(status_code=404, content={"detail": exc.rule})
        return invalid_input_response(exc)

    @app.middleware("http")
    async def _access_log(request: Request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        log.info("%s %s %s %.1fms", request.method, redact_path(request.url.path), response.status_code,
                 (time.perf_counter() - started) * 1000)
        return response

    for router in (jobs_router, accounts_router):
        app.include_router(router, prefix="/v1", dependencies=[Depends(require_token)])
    app.include_router(callbacks_router, prefix="/callbacks")

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        """Database and Redis reachable."""
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
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse(status_code=200 if ok else 503, content={"status": "ok" if ok else "degraded", **checks})

    @app.get("/metrics")
    def metrics() -> Response:
        """Prometheus text: messages and jobs per status."""
        from api.metrics import render
        return PlainTextResponse(render(), media_type="text/plain; version=0.0.4")

    return app


app = create_app()
