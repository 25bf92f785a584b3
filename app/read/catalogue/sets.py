"""The catalogue as web users see it: probe and concept sets by name, and the names that stand for server paths."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.urls import media_url
from app.persistence.models import CatalogConceptSet, CatalogKind, CatalogProbeSet, User
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
    """Return the probe sets to choose from: the built-ins, then the catalogued ones by name, with their owners."""
    rows = session.execute(
        select(CatalogProbeSet, User.name)
        .outerjoin(User, User.id == CatalogProbeSet.owner_id)
        .order_by(CatalogProbeSet.name)
    ).tuples()
    return [*BUILT_IN_PROBE_SET_VIEWS, *(probe_set_view(row, owner) for row, owner in rows)]


def probe_set_view(row: CatalogProbeSet, owner: str | None) -> ProbeSetView:
    """Return what web users see of a catalogued probe set owned by `owner`: no folder, thumbnails as media URLs."""
    thumbnails = [url for url in (media_url(name) for name in row.thumbnails or []) if url]
    return ProbeSetView(
        name=row.name,
        kind=row.kind,
        n_images=row.n_images,
        thumbnails=thumbnails,
        created_at=row.created_at,
        owner=owner,
    )


def list_concept_sets(session: Session) -> list[ConceptSetView]:
    """Return the concept sets to choose from: the library's built-ins, then the uploaded ones by name, with their
    owners."""
    rows = session.execute(
        select(CatalogConceptSet, User.name)
        .outerjoin(User, User.id == CatalogConceptSet.owner_id)
        .order_by(CatalogConceptSet.name)
    ).tuples()
    built_in = [
        ConceptSetView(name=name, kind=CatalogKind.BUILTIN, n_concepts=None, created_at=None)
        for name in BUILT_IN_CONCEPT_SETS
    ]
    return [*built_in, *(concept_set_view(row, owner) for row, owner in rows)]


def concept_set_view(row: CatalogConceptSet, owner: str | None) -> ConceptSetView:
    """Return what web users see of an uploaded concept set owned by `owner` (not its file)."""
    return ConceptSetView(
        name=row.name, kind=row.kind, n_concepts=row.n_concepts, created_at=row.created_at, owner=owner
    )


def public_names(session: Session) -> dict[str, str]:
    """Return the server paths web users know by a catalogue name: probe folders and concept files."""
    folders = session.execute(select(CatalogProbeSet.folder, CatalogProbeSet.name)).tuples()
    files = session.execute(select(CatalogConceptSet.file, CatalogConceptSet.name)).tuples()
    return {path: name for path, name in [*folders, *files]}
