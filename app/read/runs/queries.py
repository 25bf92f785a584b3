"""Runs as pages and the API show them: the list, one run's details, and the run row itself."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, joinedload

from app.core.errors import NotFound
from app.core.redact import redact_paths, redact_settings
from app.persistence.models import (
    Layer,
    Run,
)
from app.read.catalogue.sets import public_names
from app.read.runs.lineage import child_links, parent_link, run_title
from app.read.runs.provenance import weights_label, weights_view
from app.read.schemas.layers import summarise_layer
from app.read.schemas.runs import RunDetail, RunSummary
from dissect_core.names import probe_display_name
from dissect_core.run_record import RunRecord


def _settings_summary(record: RunRecord, encoder: str) -> str:
    params = ", ".join(f"{key}={value}" for key, value in sorted(record.resolved.similarity_params.items()))
    similarity = f"{record.config.similarity}({params})" if params else record.config.similarity
    return f"{similarity} · {record.config.pool} pooling · {encoder}"


def _public_name(recorded: object, stored: str, names: Mapping[str, str]) -> str:
    """Return the catalogue name of what a run recorded (a folder, a file), else its row's name without paths."""
    return names[recorded] if isinstance(recorded, str) and recorded in names else redact_paths(stored, names)


def _run_summary(run: Run, record: RunRecord, n_layers: int, n_neurons: int, names: Mapping[str, str]) -> RunSummary:
    """Return a run (and its record) as web users see it: what it used by catalogue name, never a server path."""
    encoder = redact_paths(record.config.encoder, names)
    probe_set = _public_name(record.config.probe, run.probe_set.name, names)
    weights = weights_view(record, run.model.name)
    return RunSummary(
        id=run.id,
        model_name=run.model.name,
        architecture=run.model.architecture,
        encoder=encoder,
        similarity=record.config.similarity,
        pooling=record.config.pool,
        probe_set=probe_set,
        n_images=run.probe_set.n_images,
        probe_set_display_name=probe_display_name(probe_set, run.probe_set.n_images, record.identities.sampled_from),
        concept_set=_public_name(record.config.concepts, run.concept_set.name, names),
        n_concepts=run.concept_set.n_concepts,
        n_layers=n_layers,
        n_neurons=n_neurons,
        code_version=record.identities.code_version or "unknown",
        created_at=run.created_at,
        settings_summary=_settings_summary(record, encoder),
        owner=run.owner.name if run.owner is not None else None,
        name=run.name,
        title=run_title(run.id, run.name, run.model.name),
        weights=weights,
        weights_label=weights_label(weights),
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
    return [_run_summary(run, RunRecord.from_json(run.settings), *counts.get(run.id, (0, 0)), names) for run in runs]


def get_run(session: Session, run_id: int) -> Run:
    """Return the run, or raise NotFound naming the newest run."""
    run = session.scalars(_runs_query().where(Run.id == run_id)).first()
    if run is None:
        newest = session.scalar(select(func.max(Run.id)))
        hint = f"the newest is run {newest}" if newest is not None else "there are no runs yet: upload a model"
        raise NotFound(f"There is no run {run_id}; pick one from the list at / ({hint}).")
    return run


def run_detail(session: Session, run_id: int) -> RunDetail:
    """Return one run with its settings and layers."""
    run = get_run(session, run_id)
    layers = [summarise_layer(layer) for layer in run.layers]
    names = public_names(session)
    record = RunRecord.from_json(run.settings)
    summary = _run_summary(run, record, len(layers), sum(layer.n_units for layer in layers), names)
    return RunDetail(
        **summary.model_dump(),
        settings=redact_settings(record.to_json(), names),
        similarity_params=record.resolved.similarity_params,
        layers=layers,
        notes=run.notes,
        parent=parent_link(session, run),
        children=child_links(session, run.id),
    )
