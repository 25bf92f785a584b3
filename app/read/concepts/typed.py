"""The concepts typed on a run's pages, newest first."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.persistence.models import (
    TypedConcept,
)
from app.read.schemas.concepts import TypedConceptView


def list_typed_concepts(session: Session, run_id: int) -> list[TypedConceptView]:
    """Return the concepts typed and kept on a run's pages, oldest first."""
    rows = session.scalars(
        select(TypedConcept).where(TypedConcept.run_id == run_id).order_by(TypedConcept.created_at, TypedConcept.id)
    ).all()
    return [TypedConceptView(id=row.id, text=row.text, created_at=row.created_at) for row in rows]
