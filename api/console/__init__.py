"""The operator console at /ui (DESIGN §9): server-rendered pages over the same data and rules as the API, a
session cookie after login with a key, CSRF-checked forms, and a small script for live progress."""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.console import actions, pages


def mount(app: FastAPI) -> None:
    """Add the console's pages, forms and static files to the API app."""
    app.include_router(pages.router)
    app.include_router(actions.router)
    app.add_exception_handler(pages.LoginNeeded, pages.to_login)
    app.mount("/ui/static", StaticFiles(directory=Path(__file__).parent / "static"), name="console-static")
