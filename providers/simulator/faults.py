"""What every simulated provider route does before it answers: the injected latency, then a drawn 5xx.

Shared by every vendor's provider routes (see ``registry``); what a provider answers, its refusals included,
stays in its own module.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from starlette.requests import ClientDisconnect

from providers.simulator.state import SimState

Respond = Callable[[Request], Awaitable[Response]]


def add_route(router: APIRouter, state: SimState, path: str, respond: Respond) -> None:
    """POST `path`, answered by `respond` unless a fault comes first: the configured latency, then a 503
    drawn at `error_5xx_rate` and counted in the stats."""
    async def endpoint(request: Request) -> Response:
        faults = state.faults
        if faults.latency_s:
            await asyncio.sleep(faults.latency_s)
        if state.draw(faults.error_5xx_rate):
            state.count_5xx()
            return PlainTextResponse("Service Unavailable", status_code=503)
        try:
            return await respond(request)
        except ClientDisconnect:  # the client died before its whole request arrived: nothing was accepted
            return Response(status_code=400)

    router.add_api_route(path, endpoint, methods=["POST"], include_in_schema=False)
