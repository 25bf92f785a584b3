"""`neuron-atlas serve`: migrate the database, then serve the dashboard and the JSON API with uvicorn.

On a first start (no account yet) it makes a passwordless admin and prints a one-time login link for it."""

from __future__ import annotations

import argparse
import ipaddress
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.core.config import Settings

#: Connections and requests in flight before uvicorn answers 503.
DEFAULT_LIMIT_CONCURRENCY = 512
#: Connections one client address may hold open at once before the next is answered 429 (a browser opens 6).
DEFAULT_LIMIT_PER_CLIENT = 64


def run(args: argparse.Namespace) -> int:
    """Serve the dashboard (after migrating the database to the latest schema)."""
    import uvicorn

    from app.core.errors import AtlasError
    from app.web.main import create_app
    from app.web.server import uvicorn_options

    if not 0 < args.port < 65536:
        raise AtlasError(f"--port {args.port} is not a TCP port; pick one from 1 to 65535, e.g. --port 8000")
    if args.limit_concurrency < 1:
        raise AtlasError(f"--limit-concurrency {args.limit_concurrency} would refuse every request; pass 1 or more")
    if args.limit_per_client < 1:
        raise AtlasError(f"--limit-per-client {args.limit_per_client} would refuse every client; pass 1 or more")
    from app.core.config import Settings
    from app.persistence.cleanup import remove_interrupted_uploads
    from app.persistence.writable import read_only_consequence, start_problem

    problem = start_problem(Settings.from_env())
    settings, link = serving_settings(args.host, args.port) if problem is None else (serving(args.host), None)
    print(f"neuron-atlas: serving {settings.data_dir} at http://{args.host}:{args.port}/", flush=True)
    if problem is not None:
        print(f"  read-only: {problem} {read_only_consequence(settings)}")
    else:
        for path in remove_interrupted_uploads(settings):
            print(f"  removed {path}: an upload interrupted while it was unpacked")
    print_access(settings, link)
    warning = exposure_warning(args.host, args.proxy_headers, args.limit_per_client)
    if warning is not None:
        print(f"  warning: {warning}", flush=True)
    options = uvicorn_options(
        proxy_headers=args.proxy_headers,
        forwarded_allow_ips=args.forwarded_allow_ips,
        limit_concurrency=args.limit_concurrency,
        limit_per_client=args.limit_per_client,
    )
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level, **options)
    return 0


def serving_settings(host: str, port: int, next_path: str = "/") -> tuple[Settings, str | None]:
    """Return the environment's settings for a server bound to host (migrated), and a first-start login link."""
    from app.cli.accounts import base_url, first_start_link

    settings = serving(host)
    return settings, first_start_link(settings, base_url(host, port), next_path)


def serving(host: str) -> Settings:
    """Return the environment's settings for a server bound to host."""
    from app.core.config import Settings

    return replace(Settings.from_env(), bind_host=host)


def exposure_warning(host: str, proxy_headers: bool, limit_per_client: int) -> str | None:
    """Return a warning when clients would reach the server directly on a non-loopback address (no proxy in front,
    so no TLS and no proxy's limits), else None."""
    if proxy_headers or _is_loopback(host):
        return None
    return (
        f"listening on {host} without --proxy-headers: clients reach the server directly, with no TLS and no "
        "proxy bounding request bodies and timeouts. Put a reverse proxy with TLS in front and serve on "
        "127.0.0.1 with --proxy-headers (README, Deploying for a lab); meanwhile each client address may hold at "
        f"most {limit_per_client} connections (--limit-per-client)."
    )


def _is_loopback(host: str) -> bool:
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def print_access(settings: Settings, link: str | None) -> None:
    """Print the host names the server answers to, who may read, and the login link when there is one."""
    hosts = ", ".join(settings.trusted_hosts)
    print(f"  answers to the host names {hosts} (add others to NEURON_ATLAS_ALLOWED_HOSTS)")
    readers = "logged-in users only" if settings.read_access == "users" else "anyone with a link"
    print(f"  reading: {readers} (NEURON_ATLAS_READ_ACCESS); uploads and changes: editors and admins")
    if link is not None:
        print(f"  log in as the admin with this one-time link (valid 24 hours): {link}", flush=True)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register `neuron-atlas serve`."""
    parser = subparsers.add_parser("serve", help="serve the dashboard and the JSON API (migrates the database first)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug"),
        help="uvicorn log level",
    )
    parser.add_argument(
        "--proxy-headers",
        action="store_true",
        help="behind a reverse proxy: trust its X-Forwarded-For/-Proto (the client's address, https) from the "
        "addresses in --forwarded-allow-ips; never set it when clients reach the server directly",
    )
    parser.add_argument(
        "--forwarded-allow-ips",
        default="127.0.0.1",
        help="comma-separated addresses of the reverse proxies trusted with --proxy-headers (default: 127.0.0.1)",
    )
    parser.add_argument(
        "--limit-concurrency",
        type=int,
        default=DEFAULT_LIMIT_CONCURRENCY,
        help=f"connections and requests in flight before answering 503 (default: {DEFAULT_LIMIT_CONCURRENCY})",
    )
    parser.add_argument(
        "--limit-per-client",
        type=int,
        default=DEFAULT_LIMIT_PER_CLIENT,
        help="connections one client address may hold open before answering 429; the proxies trusted with "
        f"--proxy-headers are not limited (default: {DEFAULT_LIMIT_PER_CLIENT})",
    )
    parser.set_defaults(func=run)
