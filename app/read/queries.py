"""The read queries behind both the HTML pages and the JSON API; each returns a schema from `app.read.schemas`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session, joinedload

from app.core.errors import NotFound
from app.core.redact import redact_paths, redact_settings, redact_value
from app.core.urls import media_url
from app.persistence.models import (
    FINISHED_STATES,
    Job,
    JobState,
    Layer,
    Neuron,
    ProbeImage,
    Run,
    TargetModel,
    TypedConcept,
)
from app.read.catalogue import public_names
from app.read.label_query import LabelQuery
from app.read.run_lineage import child_links, parent_link, run_title
from app.read.schemas import (
    JobView,
    LayerEvaluationView,
    LayerScoreStats,
    LayerSummary,
    RunDetail,
    RunSummary,
    SearchHit,
    SearchResult,
    TypedConceptView,
)


def _settings_summary(run: Run, encoder: str) -> str:
    params = ", ".join(f"{key}={value}" for key, value in sorted(run.similarity_params.items()))
    similarity = f"{run.similarity}({params})" if params else run.similarity
    return f"{similarity} · {run.pooling} pooling · {encoder}"


def _public_name(recorded: object, stored: str, names: Mapping[str, str]) -> str:
    """Return the catalogue name of what a run recorded (a folder, a file), else its row's name without paths."""
    return names[recorded] if isinstance(recorded, str) and recorded in names else redact_paths(stored, names)


def _run_summary(run: Run, n_layers: int, n_neurons: int, names: Mapping[str, str]) -> RunSummary:
    """Return a run as web users see it: what it used by catalogue name, never a server path."""
    settings = run.settings or {}
    encoder = redact_paths(run.encoder, names)
    return RunSummary(
        id=run.id,
        model_name=run.model.name,
        architecture=run.model.architecture,
        encoder=encoder,
        similarity=run.similarity,
        pooling=run.pooling,
        probe_set=_public_name(settings.get("probe"), run.probe_set.name, names),
        n_images=run.probe_set.n_images,
        concept_set=_public_name(settings.get("concepts"), run.concept_set.name, names),
        n_concepts=run.concept_set.n_concepts,
        n_layers=n_layers,
        n_neurons=n_neurons,
        code_version=run.code_version,
        created_at=run.created_at,
        settings_summary=_settings_summary(run, encoder),
        owner=run.owner.name if run.owner is not None else None,
        name=run.name,
        title=run_title(run.id, run.name, run.model.name),
    )


def _runs_query() -> Select[Run]:
    return select(Run).options(
        joinedload(Run.model), joinedload(Run.probe_set), joinedload(Run.concept_set), joinedload(Run.owner)
    )


def list_runs(session: Session) -> list[RunSummary]:
    """Return every run, newest first, with its layer and neuron counts."""
    counts = dict(
        (run_id, (n_layers, n_neurons or 0))
        for run_id, n_layers, n_neurons in session.execute(
            select(Layer.run_id, func.count(Layer.id), func.sum(Layer.n_units)).group_by(Layer.run_id)
        )
    )
    runs = session.scalars(_runs_query().order_by(Run.created_at.desc(), Run.id.desc())).all()
    names = public_names(session)
    return [_run_summary(run, *counts.get(run.id, (0, 0)), names) for run in runs]


def view_urls(session: Session, run_id: int, indices: list[int] | None = None) -> dict[int, str | None]:
    """Return the view URL of each probe image of a run (one query): those at `indices`, or all of them."""
    query = select(ProbeImage.index, ProbeImage.view_file).where(ProbeImage.run_id == run_id)
    if indices is not None:
        query = query.where(ProbeImage.index.in_(indices))
    return {index: media_url(view_file) for index, view_file in session.execute(query).tuples()}


def get_run(session: Session, run_id: int) -> Run:
    """Return the run, or raise NotFound naming the newest run."""
    run = session.scalars(_runs_query().where(Run.id == run_id)).first()
    if run is None:
        newest = session.scalar(select(func.max(Run.id)))
        hint = f"the newest is run {newest}" if newest is not None else "there are no runs yet: upload a model"
        raise NotFound(f"There is no run {run_id}. The runs are listed at /; {hint}.")
    return run


def run_detail(session: Session, run_id: int) -> RunDetail:
    """Return one run with its settings and layers."""
    run = get_run(session, run_id)
    layers = [_layer_summary(layer) for layer in run.layers]
    names = public_names(session)
    summary = _run_summary(run, len(layers), sum(layer.n_units for layer in layers), names)
    return RunDetail(
        **summary.model_dump(),
        settings=redact_settings(run.settings or {}, names),
        similarity_params=run.similarity_params,
        layers=layers,
        notes=run.notes,
        parent=parent_link(session, run),
        children=child_links(session, run.id),
    )


def _layer_summary(layer: Layer) -> LayerSummary:
    return LayerSummary(
        name=layer.name,
        position=layer.position,
        kind=layer.kind,
        n_units=layer.n_units,
        evaluation=LayerEvaluationView.model_validate(layer.evaluation) if layer.evaluation else None,
    )


def list_layers(session: Session, run_id: int) -> list[LayerSummary]:
    """Return a run's layers in forward order."""
    get_run(session, run_id)
    layers = session.scalars(select(Layer).where(Layer.run_id == run_id).order_by(Layer.position)).all()
    return [_layer_summary(layer) for layer in layers]


def get_layer(session: Session, run_id: int, layer_name: str) -> Layer:
    """Return the run's layer of that name, or raise NotFound listing the layers it has."""
    layer = session.scalars(select(Layer).where(Layer.run_id == run_id, Layer.name == layer_name)).first()
    if layer is None:
        get_run(session, run_id)
        names = session.scalars(select(Layer.name).where(Layer.run_id == run_id).order_by(Layer.position)).all()
        listed = ", ".join(names[:20]) + (" …" if len(names) > 20 else "")
        raise NotFound(f"Run {run_id} has no layer '{layer_name}'. Its layers are: {listed or 'none'}.")
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
        summary=_layer_summary(layer),
        stats=layer_score_stats(session, layer.id),
        n_neurons=n_neurons,
    )


def layer_summary(session: Session, run_id: int, layer_name: str) -> LayerSummary:
    """Return one layer of a run, or raise NotFound listing the layers it has."""
    return _layer_summary(get_layer(session, run_id, layer_name))


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
        raise NotFound(f"No run of a model named '{model_name}'. Models with runs: {listed}.")
    raise NotFound(
        f"No run of model '{model_name}' dissected layer '{layer_name}'. "
        f"Open the model's runs from / to see which layers they have."
    )


def search_labels(session: Session, run_id: int, q: str, *, limit: int = 200) -> SearchResult:
    """Return the neurons of every layer of a run whose label contains q (best score first within a layer)."""
    get_run(session, run_id)
    query = LabelQuery.parse(q)
    if query.is_empty:
        return SearchResult(run_id=run_id, q=q, total=0, hits=[])
    rows = session.execute(
        select(Layer.name, Neuron.unit, Neuron.label, Neuron.score)
        .join(Layer, Neuron.layer_id == Layer.id)
        .where(Layer.run_id == run_id)
        .order_by(Layer.position, Neuron.score.desc(), Neuron.unit)
    ).all()
    matching = [row for row in rows if query.matches(row.label.casefold(), row.unit)]
    hits = [SearchHit(layer=row.name, unit=row.unit, label=row.label, score=row.score) for row in matching[:limit]]
    return SearchResult(run_id=run_id, q=q, total=len(matching), hits=hits)


def job_view(job: Job, names: Mapping[str, str]) -> JobView:
    """Return the view of a job row: its model by name and its error without server paths (`names`' by name)."""
    params = job.params or {}
    layers = params.get("layers") or []
    return JobView(
        id=job.id,
        kind=job.kind,
        status=job.status,
        stage=job.stage,
        done=job.done,
        total=job.total,
        fraction=min(1.0, job.done / job.total) if job.total else None,
        error=redact_paths(job.error, names) if job.error else None,
        cancel_requested=job.cancel_requested,
        run_id=job.run_id,
        model=redact_value(params.get("model_name") or params.get("model"), names),
        layers=[str(layer) for layer in layers] if isinstance(layers, list) else [str(layers)],
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        finished=job.status in FINISHED_STATES,
        owner=job.owner.name if job.owner is not None else None,
        history=[
            {
                **{key: value for key, value in entry.items() if key != "worker"},  # worker ids name server hosts
                "note": redact_paths(entry["note"], names) if entry.get("note") else None,
            }
            for entry in job.history or []
            if isinstance(entry, dict)
        ],
    )


def list_jobs(session: Session, *, limit: int = 50) -> list[JobView]:
    """Return the newest jobs first."""
    query = select(Job).options(joinedload(Job.owner)).order_by(Job.created_at.desc(), Job.id.desc())
    jobs = session.scalars(query.limit(limit)).all()
    names = public_names(session) if any(job.error for job in jobs) else {}
    return [job_view(job, names) for job in jobs]


def get_job(session: Session, job_id: int) -> JobView:
    """Return one job, or raise NotFound."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"There is no job {job_id}. The jobs are listed on the home page, /.")
    return job_view(job, public_names(session) if job.error else {})  # a job page polls: no lookup without need


def list_typed_concepts(session: Session, run_id: int) -> list[TypedConceptView]:
    """Return the concepts typed and kept on a run's pages, oldest first."""
    rows = session.scalars(
        select(TypedConcept).where(TypedConcept.run_id == run_id).order_by(TypedConcept.created_at, TypedConcept.id)
    ).all()
    return [TypedConceptView(id=row.id, text=row.text, created_at=row.created_at) for row in rows]
