"""How `providers.http` turns every `requests` exception into one of ours (a table, complete over the classes
`requests.exceptions` defines), and the same over real sockets on loopback: refused, silent, 5xx, 429."""
from __future__ import annotations

import inspect
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests.exceptions as rex

from providers.base import Request
from providers.errors import AmbiguousError, ProviderError, RateLimited, TransientError
from providers.http import http_send, translate

REQUEST = Request(path="/send", form={"a": "1"})

#: every RequestException subclass → (our family, our code); a new class in `requests` fails the completeness test
TABLE: dict[type[Exception], tuple[type[ProviderError], str]] = {
    rex.ConnectTimeout: (TransientError, "CONNECT_TIMEOUT"),  # no connection: nothing reached the provider
    rex.ConnectionError: (TransientError, "CONNECT_ERROR"),  # refused or reset (issue 8: a reset after sending)
    rex.ProxyError: (TransientError, "CONNECT_ERROR"),
    rex.SSLError: (TransientError, "CONNECT_ERROR"),
    rex.ReadTimeout: (AmbiguousError, "READ_TIMEOUT"),  # the request went out, no answer came
    rex.Timeout: (AmbiguousError, "READ_TIMEOUT"),
    rex.ChunkedEncodingError: (TransientError, "HTTP_ERROR"),  # a truncated answer (issue 8 makes sends ambiguous)
    rex.ContentDecodingError: (TransientError, "HTTP_ERROR"),
    rex.HTTPError: (TransientError, "HTTP_ERROR"),
    rex.InvalidHeader: (TransientError, "HTTP_ERROR"),
    rex.InvalidJSONError: (TransientError, "HTTP_ERROR"),
    rex.JSONDecodeError: (TransientError, "HTTP_ERROR"),
    rex.InvalidProxyURL: (TransientError, "HTTP_ERROR"),
    rex.InvalidSchema: (TransientError, "HTTP_ERROR"),
    rex.InvalidURL: (TransientError, "HTTP_ERROR"),
    rex.MissingSchema: (TransientError, "HTTP_ERROR"),
    rex.RequestException: (TransientError, "HTTP_ERROR"),
    rex.RetryError: (TransientError, "HTTP_ERROR"),
    rex.StreamConsumedError: (TransientError, "HTTP_ERROR"),
    rex.TooManyRedirects: (TransientError, "HTTP_ERROR"),
    rex.URLRequired: (TransientError, "HTTP_ERROR"),
    rex.UnrewindableBodyError: (TransientError, "HTTP_ERROR"),
}


def make(cls: type[Exception]) -> Exception:
    """An instance of a requests exception (JSONDecodeError wants json's arguments)."""
    return cls("x", "doc", 0) if cls is rex.JSONDecodeError else cls("boom")


def test_the_table_covers_every_requests_exception():
    defined = {c for _, c in inspect.getmembers(rex, inspect.isclass) if issubclass(c, rex.RequestException)}
    assert defined == set(TABLE), sorted(c.__name__ for c in defined ^ set(TABLE))


@pytest.mark.parametrize(("cls", "expected"), TABLE.items(), ids=lambda v: getattr(v, "__name__", ""))
def test_translate(cls, expected):
    family, code = expected
    error = translate(make(cls), REQUEST, 2.0)
    assert type(error) is family and error.code == code
    assert "/send" in error.message and "boom" not in error.message  # the path, never the exception's text


def test_a_read_timeout_wrapped_in_a_connection_error_is_still_ambiguous():
    # urllib3 sometimes surfaces a read timeout as ConnectionError("… Read timed out.")
    assert type(translate(rex.ConnectionError("HTTPConnectionPool: Read timed out."), REQUEST, 2.0)) is AmbiguousError


@contextmanager
def server(answer: bytes | None) -> Iterator[str]:
    """A one-connection-at-a-time HTTP server on loopback: reads a request, then answers `answer` raw (None:
    says nothing until the client gives up)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.recv(65536)
                if answer is None:
                    stop.wait(3)
                else:
                    conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_refused_connection_is_transient():
    with pytest.raises(TransientError) as caught:
        http_send(f"http://127.0.0.1:{free_port()}", REQUEST, read_timeout_s=1)
    assert caught.value.code == "CONNECT_ERROR"


def test_silence_after_the_request_is_ambiguous():
    with server(None) as url, pytest.raises(AmbiguousError) as caught:
        http_send(url, REQUEST, read_timeout_s=0.5)
    assert caught.value.code == "READ_TIMEOUT"


@pytest.mark.parametrize(("status", "family"), [(503, TransientError), (500, TransientError), (429, RateLimited)])
def test_5xx_and_429_are_transient(status, family):
    answer = f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
    with server(answer) as url, pytest.raises(family) as caught:
        http_send(url, REQUEST, read_timeout_s=2)
    assert caught.value.code == f"HTTP_{status}"


def test_an_answer_comes_back_as_text():
    body = "成功".encode()
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n" \
             b"Connection: close\r\n\r\n%s" % (len(body), body)
    with server(answer) as url:
        response = http_send(url, REQUEST, read_timeout_s=2)
    assert (response.status, response.text) == (200, "成功")
