"""What deleting a run takes with it, for the confirmation page: what goes, and what stays but loses its link."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.persistence.models import Job, Layer, Neuron, Run, TypedConcept
from app.read.runs.lineage import run_title
from app.read.runs.queries import get_run


@dataclass(frozen=True)
class RunDeletion:
    """A run about to be deleted: its title, the rows that go with it, and the rows that stay unlinked."""

    run_id: int
    title: str
    layer_names: list[str]
    n_neurons: int
    typed_concepts: list[str]
    #: Jobs that made or relabelled the run: they stay in the job list, without their link to it.
    n_jobs: int
    #: Runs relabelled from this one: they stay, without their parent.
    relabels: list[int]


def run_deletion(session: Session, run_id: int) -> RunDeletion:
    """Return what deleting the run removes (layers, neurons, typed concepts) and unlinks (jobs, relabels); NotFound
    for an unknown run."""
    run = get_run(session, run_id)
    layers = session.scalars(select(Layer.name).where(Layer.run_id == run_id).order_by(Layer.position)).all()
    n_neurons = session.scalar(
        select(func.count()).select_from(Neuron).join(Layer, Neuron.layer_id == Layer.id).where(Layer.run_id == run_id)
    )
    typed = session.scalars(
        select(TypedConcept.text).where(TypedConcept.run_id == run_id).order_by(TypedConcept.text)
    ).all()
    n_jobs = session.scalar(
        select(func.count()).select_from(Job).where((Job.run_id == run_id) | (Job.parent_run_id == run_id))
    )
    relabels = session.scalars(select(Run.id).where(Run.parent_run_id == run_id).order_by(Run.id)).all()
    title = run_title(run.id, run.name, run.model.name)
    return RunDeletion(run_id, title, list(layers), n_neurons or 0, list(typed), n_jobs or 0, list(relabels))
