"""How `providers.http` turns every `requests` exception into one of ours (a table, complete over the classes
`requests.exceptions` defines), and the same over real sockets on loopback: refused, silent, 5xx, 429."""
from __future__ import annotations

import inspect
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import requests.exceptions as rex

from providers.base import Request
from providers.errors import AmbiguousError, ProviderError, RateLimited, TransientError
from providers import http
from providers.http import SendConnection, http_send, translate
from urllib3.exceptions import MaxRetryError, NewConnectionError

REQUEST = Request(path="/send", form={"a": "1"})

#: every RequestException subclass raised after a connection was made → (on a send, on a query) as
#: (family, code); a new class in `requests` fails the completeness test
T, A = TransientError, AmbiguousError
TABLE: dict[type[Exception], tuple[tuple[type[ProviderError], str], tuple[type[ProviderError], str]]] = {
    rex.ConnectTimeout: ((T, "CONNECT_TIMEOUT"), (T, "CONNECT_TIMEOUT")),  # no connection: nothing was sent
    rex.ProxyError: ((T, "CONNECT_ERROR"), (T, "CONNECT_ERROR")),
    rex.SSLError: ((T, "CONNECT_ERROR"), (T, "CONNECT_ERROR")),  # the handshake comes before the request
    rex.ConnectionError: ((A, "CONNECTION_LOST"), (T, "CONNECTION_LOST")),  # reset or closed after connecting
    rex.ReadTimeout: ((A, "READ_TIMEOUT"), (T, "READ_TIMEOUT")),  # the request went out, no answer came
    rex.Timeout: ((A, "READ_TIMEOUT"), (T, "READ_TIMEOUT")),
    rex.ChunkedEncodingError: ((A, "ANSWER_LOST"), (T, "ANSWER_LOST")),  # a truncated answer
    rex.ContentDecodingError: ((A, "ANSWER_LOST"), (T, "ANSWER_LOST")),
    **{cls: ((T, "HTTP_ERROR"), (T, "HTTP_ERROR")) for cls in (  # refused by requests before anything is sent
        rex.HTTPError, rex.InvalidHeader, rex.InvalidJSONError, rex.JSONDecodeError, rex.InvalidProxyURL,
        rex.InvalidSchema, rex.InvalidURL, rex.MissingSchema, rex.RequestException, rex.RetryError,
        rex.StreamConsumedError, rex.TooManyRedirects, rex.URLRequired, rex.UnrewindableBodyError)},
}


def make(cls: type[Exception]) -> Exception:
    """An instance of a requests exception (JSONDecodeError wants json's arguments)."""
    return cls("x", "doc", 0) if cls is rex.JSONDecodeError else cls("boom")


def test_the_table_covers_every_requests_exception():
    defined = {c for _, c in inspect.getmembers(rex, inspect.isclass) if issubclass(c, rex.RequestException)}
    assert defined == set(TABLE), sorted(c.__name__ for c in defined ^ set(TABLE))


@pytest.mark.parametrize(("cls", "expected"), TABLE.items(), ids=lambda v: getattr(v, "__name__", ""))
def test_translate(cls, expected):
    for sending, (family, code) in zip((True, False), expected):
        error = translate(make(cls), REQUEST, 2.0, sending=sending)
        assert (type(error), error.code) == (family, code), sending
        assert "/send" in error.message and "boom" not in error.message  # the path, never the exception's text


def test_a_refused_connection_inside_a_connection_error_is_not_sent():
    refused = rex.ConnectionError(MaxRetryError(None, "/send", NewConnectionError(None, "refused")))
    assert (type(translate(refused, REQUEST, 2.0, sending=True)), translate(refused, REQUEST, 2.0, sending=True).code) \
        == (TransientError, "CONNECT_ERROR")


def test_a_read_timeout_wrapped_in_a_connection_error_is_still_a_timeout():
    # urllib3 sometimes surfaces a read timeout as ConnectionError("… Read timed out.")
    wrapped = rex.ConnectionError("HTTPConnectionPool: Read timed out.")
    assert type(translate(wrapped, REQUEST, 2.0, sending=True)) is AmbiguousError
    assert type(translate(wrapped, REQUEST, 2.0, sending=False)) is TransientError


@contextmanager
def server(answer: bytes | None) -> Iterator[str]:
    """A one-connection-at-a-time HTTP server on loopback: reads a request, then answers `answer` raw (None:
    says nothing until the client gives up; b"": closes the connection without a word)."""
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
                elif answer:
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


@pytest.mark.parametrize("sending", [True, False])
def test_a_refused_connection_is_transient(sending):
    with pytest.raises(TransientError) as caught:
        http_send(f"http://127.0.0.1:{free_port()}", REQUEST, sending=sending, read_timeout_s=1)
    assert caught.value.code == "CONNECT_ERROR"


@pytest.mark.parametrize(("sending", "family"), [(True, AmbiguousError), (False, TransientError)])
def test_silence_after_the_request(sending, family):
    with server(None) as url, pytest.raises(family) as caught:
        http_send(url, REQUEST, sending=sending, read_timeout_s=0.5)
    assert caught.value.code == "READ_TIMEOUT"


@pytest.mark.parametrize(("sending", "family"), [(True, AmbiguousError), (False, TransientError)])
def test_a_connection_closed_after_reading_the_request(sending, family):
    with server(b"") as url, pytest.raises(family) as caught:
        http_send(url, REQUEST, sending=sending, read_timeout_s=2)
    assert caught.value.code == "CONNECTION_LOST"


@contextmanager
def keep_alive_server() -> Iterator[tuple[str, list[int]]]:
    """An HTTP server on loopback that keeps every connection open and answers each request on it; yields its
    URL and a list that grows by one per accepted connection."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    accepted: list[int] = []
    stop = threading.Event()

    def talk(conn: socket.socket) -> None:
        """Answer each whole request once (its head and body may come in separate reads: http.client sends a
        text body apart from the head, and answering each read made two answers to one request)."""
        pending = b""
        with conn:
            conn.settimeout(0.2)
            while not stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    return
                pending += data
                while (end := pending.find(b"\r\n\r\n")) >= 0:
                    length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", pending[:end + 2])
                    size = end + 4 + (int(length[1]) if length else 0)
                    if len(pending) < size:
                        break
                    pending = pending[size:]
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            accepted.append(1)
            threading.Thread(target=talk, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


@pytest.mark.parametrize(("sending", "connections"), [(True, 3), (False, 1)])
def test_every_send_opens_its_own_connection_and_queries_keep_theirs(sending, connections):
    with keep_alive_server() as (url, accepted):
        for _ in range(3):
            assert http_send(url, REQUEST, sending=sending, read_timeout_s=2).text == "ok"
    assert len(accepted) == connections


@pytest.mark.parametrize(("status", "family"), [(503, TransientError), (500, TransientError), (429, RateLimited)])
def test_5xx_and_429_are_transient(status, family):
    answer = f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
    with server(answer) as url, pytest.raises(family) as caught:
        http_send(url, REQUEST, sending=True, read_timeout_s=2)
    assert caught.value.code == f"HTTP_{status}"


def test_an_answer_comes_back_as_text():
    body = "成功".encode()
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n" \
             b"Connection: close\r\n\r\n%s" % (len(body), body)
    with server(answer) as url:
        response = http_send(url, REQUEST, sending=False, read_timeout_s=2)
    assert (response.status, response.text) == (200, "成功")


@contextmanager
def silent_listener() -> Iterator[tuple[str, list[int]]]:
    """A TCP listener that accepts and never says a word (a TLS handshake to it never ends); yields its port and a
    list growing by one per accepted connection."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield str(listener.getsockname()[1]), accepted
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        listener.close()


def test_a_send_connection_is_made_first_and_its_send_uses_it():
    with keep_alive_server() as (url, accepted):
        connection = SendConnection(url).open()
        assert connection.error is None
        wait = threading.Event()
        for _ in range(50):  # the accept runs on the server's thread
            if accepted:
                break
            wait.wait(0.02)
        assert len(accepted) == 1  # connected before any request
        assert connection.send(REQUEST, read_timeout_s=2).text == "ok"
        assert len(accepted) == 1  # the request went on that connection, not a new one


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_failure_to_connect_is_kept_and_raised_by_the_send_as_transient(scheme):
    connection = SendConnection(f"{scheme}://user:s3cret-pass@127.0.0.1:{free_port()}").open()
    assert isinstance(connection.error, TransientError) and connection.error.code == "CONNECT_ERROR"
    assert "s3cret" not in str(connection.error)  # a URL may hold a password: the error never repeats it
    with pytest.raises(TransientError):
        connection.send(REQUEST, read_timeout_s=1)


def test_a_tls_handshake_that_never_ends_is_a_connect_timeout_not_a_send_in_doubt(monkeypatch):
    # the handshake is part of the connection, made before the chunk is claimed: no request can have gone out
    monkeypatch.setattr(http, "CONNECT_TIMEOUT_S", 0.5)
    with silent_listener() as (port, accepted):
        connection = SendConnection(f"https://127.0.0.1:{port}").open()
        assert len(accepted) == 1
    assert isinstance(connection.error, TransientError) and connection.error.code == "CONNECT_TIMEOUT"


def test_silence_after_a_request_on_a_connection_made_first_is_a_read_timeout():
    with server(None) as url:
        connection = SendConnection(url).open()
        started = time.monotonic()
        with pytest.raises(AmbiguousError) as caught:
            connection.send(REQUEST, read_timeout_s=0.5)
    assert caught.value.code == "READ_TIMEOUT" and time.monotonic() - started < 2  # the read's timeout, not 5 s
