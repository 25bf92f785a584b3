"""`neuron-atlas gc`: remove the files no job or run needs any more (see app.persistence.cleanup)."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    """Print what is removed (or would be, with --dry-run) and the bytes freed."""
    from app.core.config import Settings
    from app.persistence.cleanup import find_removable, remove
    from app.persistence.db import create_db_engine, upgrade_database

    settings = Settings.from_env()
    upgrade_database(settings)
    engine = create_db_engine(settings.database_url)
    try:
        removal = find_removable(engine, settings)
    finally:
        engine.dispose()
    verb = "would remove" if args.dry_run else "removed"
    if not args.dry_run:
        remove(removal)
    for path in removal.paths:
        print(f"{verb} {path}")
    print(f"{verb} {len(removal.paths)} file(s) or folder(s), {removal.bytes_freed:,} bytes")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register `neuron-atlas gc`."""
    parser = subparsers.add_parser(
        "gc",
        help="remove checkpoints, artifacts and media of failed or cancelled jobs and deleted runs, and the folders "
        "of interrupted uploads",
    )
    parser.add_argument("--dry-run", action="store_true", help="only print what would be removed")
    parser.set_defaults(func=run)
