"""Interventions as the pages and the API show them: one with its effect, and a unit's latest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from app.core.errors import NotFound
from app.core.redact import redact_paths
from app.core.urls import intervention_url, job_url, neuron_url
from app.persistence.models import Intervention, JobState
from app.read.runs.queries import get_run
from app.read.schemas.interventions import (
    ClassEffectView,
    DownstreamEffectView,
    InterventionSummary,
    InterventionView,
    LabelEffectAgreementView,
)

#: How many of a unit's interventions its panel lists, newest first.
PANEL_INTERVENTIONS = 10


def intervention_status(row: Intervention) -> str:
    """Return an intervention's status: succeeded once its result is stored, else its job's (the row's without)."""
    if row.status == JobState.SUCCEEDED or row.job is None:
        return row.status
    return row.job.status


def _agreement(
    stored: Mapping[str, Any] | None, classes: Sequence[Mapping[str, Any]]
) -> LabelEffectAgreementView | None:
    """Return the stored agreement with the names of its top classes (as the stored class effects name them)."""
    if stored is None:
        return None
    names = {effect["class_index"]: effect.get("class_name") for effect in classes}
    top = [int(index) for index in stored.get("top_classes", [])]
    return LabelEffectAgreementView(
        cosine=stored["cosine"],
        z=stored["z"],
        p_value=stored["p_value"],
        top_classes=top,
        top_class_names=[names.get(index) or f"class {index}" for index in top],
        n_random=stored.get("n_random"),
    )


def intervention_view(row: Intervention) -> InterventionView:
    """Return the view of an intervention row (its effect's fields null until its job succeeded)."""
    result: Mapping[str, Any] = row.result or {}
    job = row.job
    error = redact_paths(job.error) if job is not None and job.error and job.status == JobState.FAILED else None
    classes = result.get("classes")
    downstream = result.get("downstream")
    return InterventionView(
        id=row.id,
        url=intervention_url(row.id),
        status=intervention_status(row),
        run_id=row.run_id,
        layer=row.layer,
        units=[int(unit) for unit in row.units],
        mode=row.mode,
        factor=row.factor,
        job_id=row.job_id,
        job_url=job_url(row.job_id) if row.job_id is not None else None,
        error=error,
        created_at=row.created_at,
        finished_at=row.finished_at,
        label=result.get("label"),
        n_images=result.get("n_images"),
        classes=[ClassEffectView(**effect) for effect in classes] if classes is not None else None,
        predictions_changed=result.get("predictions_changed"),
        accuracy_before=result.get("accuracy_before"),
        accuracy_after=result.get("accuracy_after"),
        downstream=[
            DownstreamEffectView(**unit, url=neuron_url(row.run_id, unit["layer"], unit["unit"])) for unit in downstream
        ]
        if downstream is not None
        else None,
        label_effect_agreement=_agreement(result.get("label_effect_agreement"), classes or []),
        seconds=result.get("seconds"),
        device=result.get("device"),
    )


def get_intervention(session: Session, intervention_id: int) -> InterventionView:
    """Return one intervention, or raise NotFound."""
    row = session.get(Intervention, intervention_id, options=[joinedload(Intervention.job)])
    if row is None:
        raise NotFound(
            f"There is no intervention {intervention_id}; a neuron page's “Test this neuron” panel lists its own."
        )
    return intervention_view(row)


def _summary(row: Intervention) -> InterventionSummary:
    result: Mapping[str, Any] = row.result or {}
    agreement = result.get("label_effect_agreement") or {}
    classes = result.get("classes") or []
    most_hurt = (classes[0].get("class_name") or f"class {classes[0]['class_index']}") if classes else None
    return InterventionSummary(
        id=row.id,
        url=intervention_url(row.id),
        status=intervention_status(row),
        units=[int(unit) for unit in row.units],
        mode=row.mode,
        factor=row.factor,
        created_at=row.created_at,
        predictions_changed=result.get("predictions_changed"),
        agreement_z=agreement.get("z"),
        agreement_p=agreement.get("p_value"),
        most_hurt=most_hurt,
    )


def unit_interventions(session: Session, run_id: int, layer: str, unit: int) -> list[InterventionSummary]:
    """Return the newest interventions on a unit of the run's layer (alone or among others), newest first."""
    get_run(session, run_id)
    rows = session.scalars(
        select(Intervention)
        .options(joinedload(Intervention.job))
        .where(Intervention.run_id == run_id, Intervention.layer == layer)
        .order_by(Intervention.id.desc())
    )
    found: list[InterventionSummary] = []
    for row in rows:  # units are a JSON list: filtered here, the newest first, until the panel is full
        if unit in row.units:
            found.append(_summary(row))
            if len(found) == PANEL_INTERVENTIONS:
                break
    return found
