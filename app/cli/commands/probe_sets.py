"""`neuron-atlas probe-sets`: add a server folder of images to the catalogue web users choose from, list, remove.

Web users choose probe sets by name only; this command (run on the server) is how a folder gets one.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from app.core.paths import resolved_path

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from app.core.config import Settings


@contextmanager
def catalogue_engine() -> Iterator[tuple[Settings, Engine]]:
    """Yield the environment's settings and an engine on their database, migrated to the latest schema."""
    from app.core.config import Settings
    from app.persistence.db import create_db_engine, upgrade_database

    settings = Settings.from_env()
    settings.ensure_dirs()
    upgrade_database(settings)
    engine = create_db_engine(settings.database_url)
    try:
        yield settings, engine
    finally:
        engine.dispose()


def run_add(args: argparse.Namespace) -> int:
    """Catalogue a folder of images under a name."""
    from app.jobs.catalogue.sets import register_probe_folder
    from app.persistence.db import write_session

    with catalogue_engine() as (settings, engine), write_session(engine) as session:
        row = register_probe_folder(session, settings, args.name, args.folder)
        print(f"added probe set {row.name}: {row.n_images:,} images in {resolved_path(row.folder, settings.data_dir)}")
    return 0


def run_list(_args: argparse.Namespace) -> int:
    """Print every probe set: name, kind, images and (here, on the server) its folder."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from app.persistence.models import CatalogProbeSet
    from app.read.catalogue.sets import BUILT_IN_PROBE_SET_VIEWS

    with catalogue_engine() as (settings, engine), Session(engine) as session:
        for view in BUILT_IN_PROBE_SET_VIEWS:
            print(f"{view.name:<32} {view.kind:<9} {view.n_images:>8,} images  (downloaded by the library)")
        for row in session.scalars(select(CatalogProbeSet).order_by(CatalogProbeSet.name)):
            folder = resolved_path(row.folder, settings.data_dir)
            print(f"{row.name:<32} {row.kind:<9} {row.n_images:>8,} images  {folder}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    """Take a probe set out of the catalogue (an uploaded one's images are deleted; a folder stays on disk)."""
    from app.jobs.catalogue.sets import remove_probe_set
    from app.persistence.models import CatalogKind

    with catalogue_engine() as (settings, engine):
        row = remove_probe_set(engine, settings, args.name)
    folder = resolved_path(row.folder, settings.data_dir)
    kept = "its images were deleted" if row.kind == CatalogKind.UPLOADED else f"{folder} stays on disk"
    print(f"removed probe set {row.name}; {kept}; runs made with it keep their images and labels")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register `neuron-atlas probe-sets` and its actions."""
    parser = subparsers.add_parser(
        "probe-sets",
        help="the probe sets web users may choose by name: add a server folder, list, remove",
        description="Web users choose probe sets by name, never by path: add a folder here to offer it.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="offer a server folder of images (recursive) under a name")
    add.add_argument("name", help="lower-case letters, digits, '.', '_' or '-', e.g. street-photos")
    add.add_argument("folder", help="the folder of images, on this machine")
    add.set_defaults(func=run_add)
    listing = actions.add_parser("list", help="list the probe sets with their folders")
    listing.set_defaults(func=run_list)
    remove = actions.add_parser("remove", help="stop offering a probe set (an uploaded one's images are deleted)")
    remove.add_argument("name")
    remove.set_defaults(func=run_remove)
