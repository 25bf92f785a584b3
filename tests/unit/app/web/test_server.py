"""How `serve` runs uvicorn: a deadline on each request head (slowloris), bounded heads, proxy trust on request."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from app.web.server import MAX_REQUEST_HEAD_BYTES, HeadDeadlineProtocol, uvicorn_options

HEAD_TIMEOUT_S = 0.5


class QuickDeadline(HeadDeadlineProtocol):
    head_timeout_s = HEAD_TIMEOUT_S


async def hello(scope: Scope, _receive: Receive, send: Send) -> None:
    """Answer every HTTP request with 200 "hello" and the client address uvicorn saw."""
    if scope["type"] != "http":
        return
    body = b"hello " + scope["client"][0].encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def port() -> Iterator[int]:
    """A uvicorn on a free loopback port with serve's options and a half-second head deadline."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    options = {**uvicorn_options(proxy_headers=True, forwarded_allow_ips="127.0.0.1", limit_concurrency=50)}
    options["http"] = QuickDeadline  # serve's protocol, with a deadline short enough to wait for
    server = uvicorn.Server(uvicorn.Config(hello, host="127.0.0.1", port=free, log_level="warning", **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield free
    server.should_exit = True
    thread.join(10)


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def read_answer(connection: socket.socket) -> tuple[bytes, bytes]:
    """Return the status line and body of the next answer on the connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(
        next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    )
    while len(body) < length:
        body += connection.recv(65536)
    return head.split(b"\r\n")[0], body


def closed_within(connection: socket.socket, seconds: float) -> bool:
    """Return whether the server closes the connection within `seconds` (reading whatever it sends first)."""
    connection.settimeout(seconds)
    try:
        while connection.recv(65536):
            pass
    except TimeoutError:
        return False
    return True


def test_a_request_head_sent_too_slowly_is_cut_off(port: int) -> None:
    with connect(port) as slow:
        slow.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        started = time.monotonic()
        time.sleep(HEAD_TIMEOUT_S / 2)
        slow.sendall(b"X-Dribble: 1\r\n")  # a byte now and then does not extend the deadline
        assert closed_within(slow, 5) and time.monotonic() - started < HEAD_TIMEOUT_S + 2


@pytest.mark.slow
def test_a_prompt_request_is_answered_and_the_next_head_gets_its_own_deadline(port: int) -> None:
    with connect(port) as client:
        time.sleep(HEAD_TIMEOUT_S * 0.6)
        client.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert read_answer(client) == (b"HTTP/1.1 200 OK", b"hello 127.0.0.1")
        time.sleep(HEAD_TIMEOUT_S * 0.6)  # the whole wait is past the first deadline; this one is fresh
        client.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n")
        assert read_answer(client) == (b"HTTP/1.1 200 OK", b"hello 203.0.113.9")  # a trusted proxy's
        client.sendall(b"GET / HTTP/1.1\r\n")
        assert closed_within(client, 5)


def test_an_oversized_request_head_is_refused_before_it_ends(port: int) -> None:
    with connect(port) as client:
        client.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"x" * 2 * MAX_REQUEST_HEAD_BYTES)
        assert client.recv(65536).startswith(b"HTTP/1.1 400")
