"""A run's layers: their summaries, facts, score statistics and the latest run that has one."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from app.core.errors import NotFound
from app.persistence.models import (
    Job,
    JobState,
    Layer,
    Neuron,
    Run,
    TargetModel,
)
from app.read.runs.queries import get_run
from app.read.schemas.layers import (
    LayerScoreStats,
    LayerSummary,
    summarise_layer,
)


def list_layers(session: Session, run_id: int) -> list[LayerSummary]:
    """Return a run's layers in forward order."""
    get_run(session, run_id)
    layers = session.scalars(select(Layer).where(Layer.run_id == run_id).order_by(Layer.position)).all()
    return [summarise_layer(layer) for layer in layers]


def get_layer(session: Session, run_id: int, layer_name: str) -> Layer:
    """Return the run's layer of that name, or raise NotFound listing the layers it has."""
    layer = session.scalars(select(Layer).where(Layer.run_id == run_id, Layer.name == layer_name)).first()
    if layer is None:
        get_run(session, run_id)
        names = session.scalars(select(Layer.name).where(Layer.run_id == run_id).order_by(Layer.position)).all()
        listed = ", ".join(names[:20]) + (" …" if len(names) > 20 else "")
        raise NotFound(f"Run {run_id} has no layer '{layer_name}'; its layers are: {listed or 'none'}.")
    return layer


@dataclass(frozen=True)
class LayerFacts:
    """What every grid and neuron query needs to know about a stored layer (it never changes once stored)."""

    run_id: int
    id: int
    summary: LayerSummary
    stats: LayerScoreStats
    n_neurons: int

    @property
    def name(self) -> str:
        """The layer's dotted module name."""
        return self.summary.name


def layer_facts(session: Session, run_id: int, layer_name: str) -> LayerFacts:
    """Return a run's layer with its score statistics, or raise NotFound listing the layers it has."""
    layer = get_layer(session, run_id, layer_name)
    n_neurons = session.scalar(select(func.count()).select_from(Neuron).where(Neuron.layer_id == layer.id)) or 0
    return LayerFacts(
        run_id=run_id,
        id=layer.id,
        summary=summarise_layer(layer),
        stats=layer_score_stats(session, layer.id),
        n_neurons=n_neurons,
    )


def layer_summary(session: Session, run_id: int, layer_name: str) -> LayerSummary:
    """Return one layer of a run, or raise NotFound listing the layers it has."""
    return summarise_layer(get_layer(session, run_id, layer_name))


def layer_score_stats(session: Session, layer_id: int) -> LayerScoreStats:
    """Return the layer's score range and bottom-quartile cut (labels below it are low confidence)."""
    n, score_min, score_max = session.execute(
        select(func.count(), func.min(Neuron.score), func.max(Neuron.score)).where(Neuron.layer_id == layer_id)
    ).one()
    if not n:
        return LayerScoreStats(score_min=0.0, score_max=0.0, low_confidence_below=0.0)
    quartile = session.scalar(
        select(Neuron.score).where(Neuron.layer_id == layer_id).order_by(Neuron.score.asc()).offset(n // 4).limit(1)
    )
    assert quartile is not None  # n > 0 neurons, so offset n // 4 names one
    return LayerScoreStats(score_min=score_min, score_max=score_max, low_confidence_below=float(quartile))


def latest_run_with_layer(session: Session, model_name: str, layer_name: str) -> int:
    """Return the id of the newest succeeded run of the named model that dissected that layer, or raise NotFound.

    An uploaded model's name is unique and only its own runs answer to it; any other name means the models the
    command line stored under it (an architecture's reference runs). A run counts unless a job that did not
    succeed stored it.
    """
    uploaded = session.scalar(select(TargetModel.id).where(TargetModel.uploaded_name == model_name))
    named = (
        TargetModel.id == uploaded
        if uploaded is not None
        else and_(TargetModel.name == model_name, TargetModel.uploaded_name.is_(None))
    )
    unsucceeded_job = select(Job.id).where(Job.run_id == Run.id, Job.status != JobState.SUCCEEDED).exists()
    run_id = session.scalar(
        select(Run.id)
        .join(TargetModel, Run.model_id == TargetModel.id)
        .join(Layer, Layer.run_id == Run.id)
        .where(named, Layer.name == layer_name, ~unsucceeded_job)
        .order_by(Run.created_at.desc(), Run.id.desc())
        .limit(1)
    )
    if run_id is not None:
        return run_id
    known = session.scalars(select(TargetModel.name).join(Run).distinct().order_by(TargetModel.name)).all()
    if model_name not in known:
        listed = ", ".join(known) or "none yet"
        raise NotFound(f"No run of a model named '{model_name}'; the models with runs are: {listed}.")
    raise NotFound(
        f"No run of model '{model_name}' dissected layer '{layer_name}'; "
        "open the model's runs from / to see which layers they have."
    )
