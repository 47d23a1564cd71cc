"""A local receiver of msgrelay's webhooks (the demo's, the benchmark's): verifies each request's signature and
hands its events to a callback; answers 204, or 401 when the signature does not verify."""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson

from msgrelay.webhooks import signing


class LocalReceiver:
    """Listens on 127.0.0.1 (a free port) at `url`; `on_request(ok, events)` runs for every POST (events empty
    when the signature did not verify), from the server's threads."""

    def __init__(self, secrets: Sequence[str], on_request: Callable[[bool, list[dict]], None]) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ok = signing.verify(self.headers.get(signing.HEADER), body, list(secrets))
                on_request(ok, orjson.loads(body)["events"] if ok else [])
                self.send_response(204 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Stop listening."""
        self.server.shutdown()
        self.server.server_close()
