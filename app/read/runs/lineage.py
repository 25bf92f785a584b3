"""A run's name as pages show it, and its lineage: the run it relabels and the relabels of it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.urls import run_url
from app.persistence.models import Run, TargetModel
from app.read.schemas.runs import RunLink


def run_title(run_id: int, name: str | None, model_name: str) -> str:
    """Return how pages show a run: its name, else "run #N · model"."""
    return name if name else f"run #{run_id} · {model_name}"


def run_links(session: Session, *conditions: object) -> list[RunLink]:
    """Return links to the runs matching the conditions (SQL expressions on Run), oldest first."""
    rows = session.execute(
        select(Run.id, Run.name, TargetModel.name)
        .join(TargetModel, Run.model_id == TargetModel.id)
        .where(*conditions)  # type: ignore[arg-type]
        .order_by(Run.id)
    ).all()
    return [
        RunLink(id=run_id, title=run_title(run_id, name, model), url=run_url(run_id)) for run_id, name, model in rows
    ]


def parent_link(session: Session, run: Run) -> RunLink | None:
    """Return a link to the run this one relabels, or None (a fresh dissection, or its parent was deleted)."""
    if run.parent_run_id is None:
        return None
    found = run_links(session, Run.id == run.parent_run_id)
    return found[0] if found else None


def child_links(session: Session, run_id: int) -> list[RunLink]:
    """Return links to the relabels of a run, oldest first."""
    return run_links(session, Run.parent_run_id == run_id)


def same_architecture_links(session: Session, run_id: int, architecture: str) -> list[RunLink]:
    """Return links to the other runs of an architecture (what a run compares with), oldest first."""
    return run_links(session, TargetModel.architecture == architecture, Run.id != run_id)
