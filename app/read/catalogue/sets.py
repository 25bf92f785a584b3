"""The catalogue as web users see it: probe and concept sets by name, and the names that stand for server paths."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.urls import media_url
from app.persistence.models import CatalogConceptSet, CatalogKind, CatalogProbeSet
from app.read.schemas.catalogue import ConceptSetView, ProbeSetView
from dissect_core.data.concepts import BUILT_IN_CONCEPT_SETS
from dissect_core.names import CIFAR100_PROBE

#: The images `cifar100` stands for: CIFAR-100's test split, which the library downloads on first use.
CIFAR100_IMAGES = 10_000
BUILT_IN_PROBE_SET_VIEWS = (
    ProbeSetView(
        name=CIFAR100_PROBE, kind=CatalogKind.BUILTIN, n_images=CIFAR100_IMAGES, thumbnails=[], created_at=None
    ),
)


def list_probe_sets(session: Session) -> list[ProbeSetView]:
    """Return the probe sets to choose from: the built-ins, then the catalogued ones by name."""
    rows = session.scalars(select(CatalogProbeSet).order_by(CatalogProbeSet.name)).all()
    return [*BUILT_IN_PROBE_SET_VIEWS, *(probe_set_view(row) for row in rows)]


def probe_set_view(row: CatalogProbeSet) -> ProbeSetView:
    """Return what web users see of a catalogued probe set: no folder, thumbnails as media URLs."""
    thumbnails = [url for url in (media_url(name) for name in row.thumbnails or []) if url]
    return ProbeSetView(
        name=row.name, kind=row.kind, n_images=row.n_images, thumbnails=thumbnails, created_at=row.created_at
    )


def list_concept_sets(session: Session) -> list[ConceptSetView]:
    """Return the concept sets to choose from: the library's built-ins, then the uploaded ones by name."""
    rows = session.scalars(select(CatalogConceptSet).order_by(CatalogConceptSet.name)).all()
    built_in = [
        ConceptSetView(name=name, kind=CatalogKind.BUILTIN, n_concepts=None, created_at=None)
        for name in BUILT_IN_CONCEPT_SETS
    ]
    return [*built_in, *(concept_set_view(row) for row in rows)]


def concept_set_view(row: CatalogConceptSet) -> ConceptSetView:
    """Return what web users see of an uploaded concept set (not its file)."""
    return ConceptSetView(name=row.name, kind=row.kind, n_concepts=row.n_concepts, created_at=row.created_at)


def public_names(session: Session) -> dict[str, str]:
    """Return the server paths web users know by a catalogue name: probe folders and concept files."""
    folders = session.execute(select(CatalogProbeSet.folder, CatalogProbeSet.name)).tuples()
    files = session.execute(select(CatalogConceptSet.file, CatalogConceptSet.name)).tuples()
    return {path: name for path, name in [*folders, *files]}
