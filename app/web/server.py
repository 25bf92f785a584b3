"""How `neuron-atlas serve` runs uvicorn so that slow or oversized requests cannot pile up.

uvicorn bounds idle keep-alive connections (`timeout_keep_alive`) and, with h11, the size of a request head
(`h11_max_incomplete_event_size`), but has no deadline for receiving a request head: a client sending a header
byte every few seconds (slowloris) holds its connection forever. `HeadDeadlineProtocol` adds that deadline;
`limit_concurrency` answers 503 beyond a number of connections, and `ClientBoundedProtocol` 429 beyond a number
from one client address, so one client's idle connections cannot make the server refuse everyone. Behind a
reverse proxy the proxy's own limits come first (README, Deploying for a lab). The access log never shows a
login link's token (`RedactLoginTokens`).
"""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import logging
from typing import Any

from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.core.errors import AtlasError
from app.core.redact import redact_login_tokens

#: The largest request line and headers accepted (uvicorn answers 400 beyond); cookies and long URLs fit.
MAX_REQUEST_HEAD_BYTES = 64 * 1024
#: Seconds an idle keep-alive connection stays open.
KEEP_ALIVE_S = 5


class HeadDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose next request head has not arrived `head_timeout_s`
    after it opened or after its last answer."""

    head_timeout_s = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._waiting_after: object = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Accept the connection and start waiting for its first request head."""
        super().connection_made(transport)
        self._arm_head_deadline()

    def data_received(self, data: bytes) -> None:
        """Feed the bytes to h11; once they complete a request head, its deadline is met."""
        super().data_received(data)
        if self._head_deadline is not None and self.cycle is not self._waiting_after:
            self._disarm_head_deadline()

    def on_response_complete(self) -> None:
        """Finish the answer, then wait for the next request head unless a pipelined one already arrived."""
        super().on_response_complete()
        if self.cycle is None or self.cycle.response_complete:
            self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the deadline of a closed connection."""
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        self._disarm_head_deadline()
        self._waiting_after = self.cycle  # a new cycle starts when h11 has read a whole request head
        self._head_deadline = self.loop.call_later(self.head_timeout_s, self._head_too_slow)

    def _disarm_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            self.transport.close()


class ClientBoundedProtocol(HeadDeadlineProtocol):
    """HeadDeadlineProtocol that answers 429 and closes a client's connection beyond `limit_per_client` open at
    once from its address, so one client cannot hold every connection `limit_concurrency` allows; addresses in
    `unbounded` (the trusted proxies, whose connections carry everyone's requests) are not limited."""

    limit_per_client: int
    unbounded: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Accept the connection, or answer 429 and close it when its address already holds its share."""
        super().connection_made(transport)
        host = self.client[0] if self.client else None
        if host is None or self._is_unbounded(host):
            return
        held = sum(1 for other in self.connections if (getattr(other, "client", None) or ("",))[0] == host)
        if held > self.limit_per_client:
            body = (
                f"{held - 1} connections from {host} are open, the limit per client; close some (or wait a few "
                "seconds for idle ones to close), then try again.\n"
            ).encode()
            head = (
                "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\n"
                f"Retry-After: {KEEP_ALIVE_S}\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            transport.write(head.encode() + body)
            transport.close()

    def _is_unbounded(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:  # not an IP address (a Unix socket): one local client
            return True
        return any(address in network for network in self.unbounded)


def client_bounded_protocol(limit_per_client: int, trusted_proxies: str) -> type[ClientBoundedProtocol]:
    """Return the protocol class limiting each client address to `limit_per_client` connections, the addresses of
    `trusted_proxies` (comma-separated addresses or networks, as --forwarded-allow-ips; `*`: all) excepted."""
    names = [name.strip() for name in trusted_proxies.split(",") if name.strip()]
    if "*" in names:
        names = ["0.0.0.0/0", "::/0"]
    try:
        unbounded = tuple(ipaddress.ip_network(name, strict=False) for name in names)
    except ValueError as error:
        raise AtlasError(
            f"--forwarded-allow-ips {trusted_proxies!r} holds something that is not an address or network ({error}); "
            "name the proxies' addresses, e.g. 127.0.0.1,10.0.0.0/8"
        ) from None
    attributes = {"limit_per_client": limit_per_client, "unbounded": unbounded}
    return type("ClientBoundedProtocol", (ClientBoundedProtocol,), attributes)


class RedactLoginTokens(logging.Filter):
    """Redact login tokens (the values of `token=` query parameters) from the request lines of the access log."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's string arguments (uvicorn passes the request's path and query as one); keep it."""
        if isinstance(record.args, tuple):
            record.args = tuple(redact_login_tokens(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


def log_config() -> dict[str, Any]:
    """Return uvicorn's logging configuration with login tokens redacted from the access log."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"login_tokens": {"()": RedactLoginTokens}}
    config["loggers"]["uvicorn.access"]["filters"] = ["login_tokens"]
    return config


def uvicorn_options(
    *, proxy_headers: bool, forwarded_allow_ips: str, limit_concurrency: int, limit_per_client: int | None = None
) -> dict[str, Any]:
    """Return the uvicorn.run settings of `serve`: bounded request heads with a deadline, short keep-alive, a
    connection limit (and, unless None, one per client address but the trusted proxies'), X-Forwarded-* headers
    trusted only from the named proxies when asked to, and an access log without login tokens."""
    trusted = forwarded_allow_ips if proxy_headers else ""
    protocol = HeadDeadlineProtocol if limit_per_client is None else client_bounded_protocol(limit_per_client, trusted)
    return {
        "http": protocol,
        "h11_max_incomplete_event_size": MAX_REQUEST_HEAD_BYTES,
        "timeout_keep_alive": KEEP_ALIVE_S,
        "limit_concurrency": limit_concurrency,
        "proxy_headers": proxy_headers,
        "forwarded_allow_ips": forwarded_allow_ips,
        "server_header": False,
        "log_config": log_config(),
    }
