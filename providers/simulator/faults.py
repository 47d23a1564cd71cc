"""Injected faults: the ``Faults`` set through POST /_sim/faults, and ``add_route``, which wraps every simulated
provider route of every vendor so that a fault means the same thing whichever vendor it hits.

What one request meets, in order:
  before its body is read   `latency_s` (a client killed meanwhile leaves nothing accepted), then a 503 drawn
                            at `error_5xx_rate`;
  the vendor's own answer   over-speed refusals (`over_speed_rate`, `max_requests_per_s`), `bad_mobiles`, and on
                            sends `stall_after_accept_rate`: the answer held `stall_s` (``stall_after_accept``);
  once a send is accepted   (recorded, or a repeated ihuyi request_id answered with its first answer):
                            `reset_after_accept_rate`: no answer at all, the TCP connection is reset (RST), so
                            the client sees a connection error at once, never a timeout; otherwise
                            `answer_delay_s`: the answer is held that long (a client killed meanwhile leaves a
                            request the provider has; under the client's read timeout, the client gets it late).
Draws come from one generator per endpoint, seeded by `seed`: an endpoint's faults follow from the requests
it got, whatever else was polled meanwhile. A held answer (stall or delay) is released early when the faults
are replaced or the simulator is reset. Every fault met is counted in /_sim/stats (`faults`, by endpoint),
answers held right now are listed there (`answers_held`), and an accepted request lists the faults it met in
/_sim/requests (`faults`).
"""
from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import ClientDisconnect

if TYPE_CHECKING:
    from providers.simulator.state import SimState

Respond = Callable[[Request], Awaitable[Response]]
DISCONNECT_WAIT_S = 1.0  # how long a reset waits for the server to notice its own connection is gone


class Faults(BaseModel):
    """Injected faults; every field optional. Rates are probabilities in [0, 1], durations seconds."""

    model_config = ConfigDict(extra="forbid")

    latency_s: float = Field(0.0, ge=0)  # every request, before its body is read
    error_5xx_rate: float = Field(0.0, ge=0, le=1)
    over_speed_rate: float = Field(0.0, ge=0, le=1)
    stall_after_accept_rate: float = Field(0.0, ge=0, le=1)
    stall_s: float = Field(5.0, ge=0)
    answer_delay_s: float = Field(0.0, ge=0)  # every accepted send: recorded first, answered this much later
    reset_after_accept_rate: float = Field(0.0, ge=0, le=1)  # accepted sends: recorded, then the connection reset
    max_requests_per_s: int | None = Field(None, ge=1)
    bad_mobiles: list[str] = Field(default_factory=list)
    seed: int = 0


@dataclass
class Acceptance:
    """What the request being answered has accepted so far: the endpoint, the ids of the requests it recorded,
    whether it was answered with an earlier acceptance (a repeated ihuyi request_id), and when it arrived."""

    endpoint: str
    record_ids: list[int] = field(default_factory=list)
    repeated: bool = False
    arrived_at: float = field(default_factory=time.time)  # Unix seconds: when the request reached the app

    @property
    def accepted(self) -> bool:
        """Whether the provider took this send: a new record, or a repeat answered as the first was."""
        return bool(self.record_ids) or self.repeated


#: the request being answered, for SimState (which endpoint's generator draws, which records a fault hit)
CURRENT: ContextVar[Acceptance | None] = ContextVar("sim_acceptance", default=None)


def current_endpoint() -> str:
    """The endpoint of the request being answered ("" outside one)."""
    note = CURRENT.get()
    return note.endpoint if note is not None else ""


async def stall_after_accept(state: SimState) -> None:
    """A send handler's last step once it has accepted: hold the answer `stall_s` at `stall_after_accept_rate`."""
    faults = state.faults
    if state.draw_fault("stall_after_accept", faults.stall_after_accept_rate):
        await state.hold_answer(faults.stall_s)  # accepted and recorded; the client may time out first


async def reset_connection(request: Request) -> None:
    """Drop the request's TCP connection with a reset (RST) before any byte of the answer is written.

    The ASGI interface has no way to drop a connection (an exception becomes a 500, or a truncated answer once
    it has started), so this reaches the transport through uvicorn's request cycle (h11 or httptools alike),
    whose bound `receive` the request carries."""
    cycle = getattr(request.receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("reset_after_accept needs the simulator served by uvicorn: no transport to reset")
    try:
        sock = transport.get_extra_info("socket")
    except (OSError, ValueError):  # the client has gone already: nothing left to reset
        sock = None
    if sock is not None:  # linger 0: closing sends RST instead of FIN, and drops anything unsent
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    deadline = time.monotonic() + DISCONNECT_WAIT_S
    # uvicorn marks the cycle disconnected on its next turn; from then on it drops whatever the app answers
    while not getattr(cycle, "disconnected", True) and time.monotonic() < deadline:
        await asyncio.sleep(0.001)


def add_route(router: APIRouter, state: SimState, path: str, respond: Respond) -> None:
    """POST `path`, answered by `respond` under the faults in force (see the module's docstring)."""
    async def answer(request: Request, note: Acceptance) -> Response:
        faults = state.faults
        if faults.latency_s:
            await asyncio.sleep(faults.latency_s)
        if state.draw_fault("error_5xx", faults.error_5xx_rate):
            state.count_5xx()
            return PlainTextResponse("Service Unavailable", status_code=503)
        try:
            response = await respond(request)
        except ClientDisconnect:  # the client died before its whole request arrived: nothing was accepted
            return Response(status_code=400)
        if note.accepted:
            if state.draw_fault("reset_after_accept", faults.reset_after_accept_rate):
                await reset_connection(request)
            elif faults.answer_delay_s:
                state.count_fault("answer_delay")
                await state.hold_answer(faults.answer_delay_s)
        return response

    async def endpoint(request: Request) -> Response:
        token = CURRENT.set(note := Acceptance(path))
        try:
            return await answer(request, note)
        finally:
            CURRENT.reset(token)

    router.add_api_route(path, endpoint, methods=["POST"], include_in_schema=False)
