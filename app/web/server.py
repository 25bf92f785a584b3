"""How `neuron-atlas serve` runs uvicorn so that slow or oversized requests cannot pile up.

uvicorn bounds idle keep-alive connections (`timeout_keep_alive`) and, with h11, the size of a request head
(`h11_max_incomplete_event_size`), but has no deadline for receiving a request head: a client sending a header
byte every few seconds (slowloris) holds its connection forever. `HeadDeadlineProtocol` adds that deadline;
`limit_concurrency` answers 503 beyond a number of connections. Behind a reverse proxy the proxy's own limits
come first (README, Deploying for a lab).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

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


def uvicorn_options(*, proxy_headers: bool, forwarded_allow_ips: str, limit_concurrency: int) -> dict[str, Any]:
    """Return the uvicorn.run settings of `serve`: bounded request heads with a deadline, short keep-alive, a
    connection limit, and X-Forwarded-* headers trusted only from the named proxies when asked to."""
    return {
        "http": HeadDeadlineProtocol,
        "h11_max_incomplete_event_size": MAX_REQUEST_HEAD_BYTES,
        "timeout_keep_alive": KEEP_ALIVE_S,
        "limit_concurrency": limit_concurrency,
        "proxy_headers": proxy_headers,
        "forwarded_allow_ips": forwarded_allow_ips,
        "server_header": False,
    }
