"""`serve` warns when clients would reach it directly on a non-loopback address, and bounds them per address."""

from __future__ import annotations

import pytest

from app.cli.commands.serve import DEFAULT_LIMIT_PER_CLIENT, exposure_warning
from app.core.errors import AtlasError
from app.web.server import client_bounded_protocol, uvicorn_options


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "atlas.lab.example.org"])
def test_serving_beyond_loopback_without_a_proxy_is_warned_about(host: str) -> None:
    warning = exposure_warning(host, proxy_headers=False, limit_per_client=DEFAULT_LIMIT_PER_CLIENT)
    assert warning is not None and f"listening on {host} without --proxy-headers" in warning
    assert "reverse proxy" in warning and f"at most {DEFAULT_LIMIT_PER_CLIENT} connections" in warning


@pytest.mark.parametrize(
    ("host", "proxy_headers"),
    [("127.0.0.1", False), ("::1", False), ("[::1]", False), ("localhost", False), ("0.0.0.0", True)],
)
def test_loopback_or_behind_a_proxy_is_not_warned_about(host: str, proxy_headers: bool) -> None:
    assert exposure_warning(host, proxy_headers=proxy_headers, limit_per_client=8) is None


def test_the_trusted_proxies_alone_are_not_bounded_per_client() -> None:
    protocol = client_bounded_protocol(8, "127.0.0.1, 10.0.0.0/8")
    assert protocol.limit_per_client == 8
    assert [str(network) for network in protocol.unbounded] == ["127.0.0.1/32", "10.0.0.0/8"]
    assert len(client_bounded_protocol(8, "*").unbounded) == 2  # every IPv4 and IPv6 address
    direct = uvicorn_options(
        proxy_headers=False, forwarded_allow_ips="127.0.0.1", limit_concurrency=9, limit_per_client=3
    )
    assert direct["http"].unbounded == ()  # without --proxy-headers every address is a client
    with pytest.raises(AtlasError, match=r"--forwarded-allow-ips 'proxy\.lab' holds something that is not an"):
        client_bounded_protocol(8, "proxy.lab")
