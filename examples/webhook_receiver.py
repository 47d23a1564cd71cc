"""A small msgrelay webhook receiver: verifies the signature, deduplicates events by id, answers 2xx quickly.

Run it:  python examples/webhook_receiver.py --port 8000 --secret "$MSGRELAY_WEBHOOK_SECRET"
then submit jobs with "callback_url": "http://127.0.0.1:8000/events" (or set MSGRELAY_WEBHOOK_URL).

The tests run the same class in-process (`Receiver`), switching it to answer 500, to hang, or to be down.
Only the standard library: copy it anywhere.
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HEADER = "X-Msgrelay-Signature"
TOLERANCE_S = 300  # refuse signatures older than this: a captured request cannot be replayed later


def verify(header: str | None, body: bytes, secrets: list[str], *, tolerance_s: float = TOLERANCE_S) -> bool:
    """True when one `v1=` of the header is HMAC-SHA256(secret, "<t>." + body) for one of `secrets`, and `t` is
    recent. Accept any v1: during a rotation msgrelay sends one per secret it holds."""
    if not header:
        return False
    parts = [p.strip().partition("=") for p in header.split(",")]
    ts = [v for k, _, v in parts if k == "t"]
    given = [v for k, _, v in parts if k == "v1"]
    if len(ts) != 1 or not ts[0].isdigit() or abs(time.time() - int(ts[0])) > tolerance_s:
        return False
    signed = ts[0].encode() + b"." + body
    expected = [hmac.new(s.encode(), signed, hashlib.sha256).hexdigest() for s in secrets]
    return any(hmac.compare_digest(e, g) for e in expected for g in given)


@dataclass
class Received:
    """One request as it arrived."""

    body: bytes
    headers: dict[str, str]
    verified: bool
    answered: int
    at: float = field(default_factory=time.time)

    @property
    def events(self) -> list[dict]:
        return json.loads(self.body)["events"] if self.body else []


class Receiver:
    """A threaded HTTP receiver that records every request. `mode`: "ok" (204), "error" (500), "hang" (answer
    200 after `hang_s`, longer than msgrelay waits); `stop()` takes it down, `start()` brings it back."""

    def __init__(self, secrets: list[str], *, host: str = "127.0.0.1", port: int = 0, quiet: bool = True) -> None:
        self.secrets, self.host, self.port, self.quiet = list(secrets), host, port, quiet
        self.mode, self.hang_s = "ok", 5.0
        self.received: list[Received] = []
        self.seen: dict[str, dict] = {}  # event id → event: what a real receiver keeps to drop duplicates
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/events"

    def start(self) -> Receiver:
        """Listen (on the same port as before, after a `stop`)."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.handle(self, body)

            def log_message(self, *args: object) -> None:
                if not receiver.quiet:
                    super().log_message(*args)

        self.server = ThreadingHTTPServer((self.host, self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening (connections are refused until `start`)."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def handle(self, request: BaseHTTPRequestHandler, body: bytes) -> None:
        """Verify, record, deduplicate, answer."""
        verified = verify(request.headers.get(HEADER), body, self.secrets)
        mode = self.mode
        status = 401 if not verified else 500 if mode == "error" else 200 if mode == "hang" else 204
        with self.lock:
            self.received.append(Received(body, dict(request.headers), verified, status))
            if verified and mode == "ok":
                for event in json.loads(body)["events"]:
                    if event["id"] not in self.seen:  # at least once: a redelivery repeats ids
                        self.seen[event["id"]] = event
                        if not self.quiet:
                            print(f"{event['type']:<20} job {event['job_id']} {event.get('mobile', '')} "
                                  f"{event['status']} {event.get('provider_state') or event.get('reason') or ''}",
                                  flush=True)
        if mode == "hang":
            time.sleep(self.hang_s)
        answer = b"" if status == 204 else json.dumps({"verified": verified}).encode()
        try:
            request.send_response(status)
            request.send_header("Content-Length", str(len(answer)))
            request.end_headers()
            request.wfile.write(answer)
        except OSError:  # msgrelay gave up waiting (hang): nothing to answer to
            pass

    def events(self) -> list[dict]:
        """Every distinct event acknowledged so far, in the order first received."""
        with self.lock:
            return list(self.seen.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--secret", required=True, help="the secrets, comma-separated (MSGRELAY_WEBHOOK_SECRET)")
    args = parser.parse_args()
    receiver = Receiver([s for s in args.secret.split(",") if s], host=args.host, port=args.port, quiet=False)
    receiver.start()
    print(f"listening on {receiver.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        receiver.stop()


if __name__ == "__main__":
    main()
