"""`neuron-atlas migrate`: move the database schema up (default: latest) or down."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    """Upgrade, downgrade or report the database's migration revision."""
    from app.core.config import Settings
    from app.core.errors import AtlasError
    from app.persistence.db import current_revision, downgrade_database, head_revision, upgrade_database

    settings = Settings.from_env()
    if args.action == "current":
        print(f"current: {current_revision(settings)}  latest: {head_revision()}")
        return 0
    if args.action == "upgrade":
        revision = upgrade_database(settings, args.to or "head")
    else:
        if not args.to:
            raise AtlasError(
                "downgrade needs --to REVISION: '-1' for one step, or 'base' to drop every table (data is lost)"
            )
        revision = downgrade_database(settings, args.to)
    print(f"database at revision {revision or 'base (empty)'}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register `neuron-atlas migrate`."""
    parser = subparsers.add_parser("migrate", help="migrate the database schema (default: to the latest)")
    parser.add_argument("action", nargs="?", default="upgrade", choices=["upgrade", "downgrade", "current"])
    parser.add_argument("--to", metavar="REVISION", help="target revision: head, base, -1, or an id")
    parser.set_defaults(func=run)
