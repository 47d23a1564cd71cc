"""The console's templates (Jinja2, autoescaped) and the helpers they use."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from api.console.session import Login
from models.statuses import MessageStatus as S

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
#: the colours of a progress bar, in its order (final outcomes first, then what is still open)
BAR = tuple(s.value for s in (S.DELIVERED, S.FAILED, S.EXPIRED, S.REJECTED, S.UNKNOWN, S.SUBMITTED))


def _num(value: Any) -> str:
    """12,345."""
    return f"{int(value or 0):,}"


def _pct(part: Any, whole: Any) -> str:
    """Part of whole as a CSS width."""
    return f"{100 * (part or 0) / whole:.2f}%" if whole else "0%"


templates.env.filters["num"] = _num
templates.env.globals.update(pct=_pct, BAR=BAR)


def page(request: Request, name: str, login: Login | None, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a page with who is logged in and what they may do."""
    response = templates.TemplateResponse(request, name, {"login": login, **context}, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                                                   "script-src 'self'; frame-ancestors 'none'; form-action 'self'")
    return response
