"""`neuron-atlas serve`: migrate the database, then serve the dashboard and the JSON API with uvicorn."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    """Serve the dashboard (after migrating the database to the latest schema)."""
    import uvicorn

    from app.core.config import Settings
    from app.core.errors import AtlasError
    from app.persistence.db import upgrade_database
    from app.web.main import create_app

    if not 0 < args.port < 65536:
        raise AtlasError(f"--port {args.port} is not a TCP port; pick one from 1 to 65535, e.g. --port 8000")
    settings = Settings.from_env()
    settings.ensure_dirs()
    upgrade_database(settings)
    print(f"neuron-atlas: serving {settings.data_dir} at http://{args.host}:{args.port}/", flush=True)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level)
    return 0


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
    parser.set_defaults(func=run)
