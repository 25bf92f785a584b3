"""The view of an image uploaded to a run, as a probe image's view shows one: the prediction with class names, the
units behind the top class, per layer the units it drives most (standardised against the probe set), and the
labelled units that fire unusually on it (at or above UNUSUAL_PERCENTILE of the probe images).

The reading (app.jobs.run_images) stores the activations and percentiles; labels, verdicts and each layer's
standardiser come from the image views' caches, so a page is a row read and a top-k per layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from app.core.errors import NotFound
from app.core.redact import redact_paths
from app.core.urls import class_url, job_url, media_url, neuron_url, run_image_url
from app.persistence.models import JobState, RunImage, as_utc
from app.read.artifacts.activations import ActivationsUnavailable
from app.read.caches import ReadCache
from app.read.classes.names import class_name_or_index, run_class_names
from app.read.images.view import TOP_UNITS, UNLABELLED, ImageViews, LayerRanking, ranked_units
from app.read.neurons.unit_links import crop_urls, unit_summary
from app.read.runs.queries import get_run
from app.read.schemas.classes import Prediction, PredictionUnit
from app.read.schemas.images import ImageLayerUnits
from app.read.schemas.layers import LayerSummary
from app.read.schemas.run_images import RunImageSummary, RunImageView, UnusualUnit
from dissect_core.analysis.unit_ranking import rank_activations

#: A unit fires unusually on an image at or above this percentile of the probe images.
UNUSUAL_PERCENTILE = 99.0
#: How many unusually firing units the view lists (the most unusual first).
UNUSUAL_UNITS = 40
#: How many of a run's uploaded images its list shows, newest first.
LISTED_IMAGES = 24


def run_image_status(row: RunImage) -> str:
    """Return an uploaded image's status: succeeded once its reading is stored, else its job's (the row's without)."""
    if row.status == JobState.SUCCEEDED or row.job is None:
        return row.status
    return row.job.status


def _prediction(run_id: int, names: Sequence[str] | None, stored: Sequence[Mapping[str, Any]]) -> list[Prediction]:
    return [
        Prediction(
            class_index=item["class_index"],
            class_name=item.get("class_name") or class_name_or_index(names, item["class_index"]),
            probability=item["probability"],
            url=class_url(run_id, item["class_index"]),
        )
        for item in stored
    ]


def _why(session: Session, cache: ReadCache, run_id: int, stored: Mapping[str, Any] | None) -> list[PredictionUnit]:
    if not stored:
        return []
    layer = stored["layer"]
    index = cache.layer_index(session, run_id, layer)
    why = []
    for item in stored["units"]:
        summary = unit_summary(index, item["unit"])
        crops = crop_urls(summary)
        why.append(
            PredictionUnit(
                layer=layer,
                unit=item["unit"],
                label=None if summary is None else summary.label,
                contribution=item["contribution"],
                url=neuron_url(run_id, layer, item["unit"]),
                crop_url=crops[0] if crops else None,
            )
        )
    return why


def _unusual(
    run_id: int, layer: str, ranking: LayerRanking, activations: torch.Tensor, percentiles: list[float]
) -> list[UnusualUnit]:
    """Return the layer's labelled units at or above UNUSUAL_PERCENTILE."""
    z_scores = ranking.standardiser.z_scores(activations)
    found = []
    for unit, percentile in enumerate(percentiles):
        label = ranking.labels[unit]
        if percentile < UNUSUAL_PERCENTILE or label is UNLABELLED:
            continue
        found.append(
            UnusualUnit(
                layer=layer,
                unit=unit,
                label=label.label,
                verdict=label.verdict,
                reliable=label.reliable,
                activation=float(activations[unit]),
                percentile=percentile,
                z_score=float(z_scores[unit]),
                neuron_url=neuron_url(run_id, layer, unit),
            )
        )
    return found


class _Layers:
    """Per layer the units the image drives most, and the labelled units that fire unusually, across layers."""

    def __init__(self) -> None:
        self.layers: list[ImageLayerUnits] = []
        self.unusual: list[UnusualUnit] = []

    def add(self, run_id: int, layer: LayerSummary, ranking: LayerRanking, stored: Mapping[str, Any]) -> None:
        activations = torch.tensor(stored["activations"], dtype=torch.float32)
        if activations.numel() != ranking.standardiser.n_units:
            self.unavailable(layer, f"Layer {layer.name}'s stored activations do not match the image's reading.")
            return
        loudest, most_unusual = rank_activations(ranking.standardiser, activations, TOP_UNITS)
        self.layers.append(
            ImageLayerUnits(
                layer=layer.name,
                kind=layer.kind,
                n_units=layer.n_units,
                by_activation=ranked_units(run_id, layer.name, ranking, loudest),
                by_unusualness=ranked_units(run_id, layer.name, ranking, most_unusual),
            )
        )
        if stored.get("percentiles") is not None:
            self.unusual += _unusual(run_id, layer.name, ranking, activations, stored["percentiles"])

    def unavailable(self, layer: LayerSummary, why: str) -> None:
        self.layers.append(
            ImageLayerUnits(
                layer=layer.name,
                kind=layer.kind,
                n_units=layer.n_units,
                by_activation=[],
                by_unusualness=[],
                unavailable=why,
            )
        )


def run_image_view(session: Session, cache: ReadCache, views: ImageViews, run_id: int, image_id: int) -> RunImageView:
    """Return the view of an image uploaded to the run (its reading's fields empty until its job succeeded), or
    raise NotFound."""
    row = session.get(RunImage, image_id, options=[joinedload(RunImage.job)])
    if row is None or row.run_id != run_id:
        raise NotFound(
            f"Run {run_id} has no uploaded image {image_id}; upload one with the form on the run's page "
            f"(POST /api/v1/runs/{run_id}/images)."
        )
    run = cache.run(session, run_id)
    result: Mapping[str, Any] = row.result or {}
    job = row.job
    stored_layers: Mapping[str, Any] = result.get("layers") or {}
    shown = _Layers()
    for layer in run.layers if result else []:
        stored = stored_layers.get(layer.name)
        if stored is None:
            shown.unavailable(layer, f"The image's reading has no activations of layer {layer.name}.")
            continue
        try:
            ranking = views.layer_ranking(session, cache, run_id, layer.name)
        except ActivationsUnavailable as error:
            shown.unavailable(layer, str(error))
            continue
        shown.add(run_id, layer, ranking, stored)
    unusual = sorted(shown.unusual, key=lambda unit: (-unit.z_score, -unit.percentile))
    return RunImageView(
        id=row.id,
        run_id=run_id,
        model_name=run.model_name,
        url=run_image_url(run_id, row.id),
        status=run_image_status(row),
        job_id=row.job_id,
        job_url=job_url(row.job_id) if row.job_id is not None else None,
        error=redact_paths(job.error) if job is not None and job.error and job.status == JobState.FAILED else None,
        image_url=media_url(row.file),
        width=row.width,
        height=row.height,
        sha256=row.sha256,
        created_at=as_utc(row.created_at),
        finished_at=None if row.finished_at is None else as_utc(row.finished_at),
        n_probe_images=result.get("n_probe_images"),
        prediction=_prediction(run_id, run_class_names(run), result.get("prediction") or []),
        why=_why(session, cache, run_id, result.get("why")),
        layers=shown.layers,
        unusual_percentile=UNUSUAL_PERCENTILE,
        unusual=unusual[:UNUSUAL_UNITS],
        n_unusual=len(unusual),
    )


def run_images(session: Session, run_id: int) -> list[RunImageSummary]:
    """Return the newest images uploaded to the run (at most LISTED_IMAGES), newest first, or raise NotFound."""
    get_run(session, run_id)
    rows = session.scalars(
        select(RunImage)
        .options(joinedload(RunImage.job))
        .where(RunImage.run_id == run_id)
        .order_by(RunImage.id.desc())
        .limit(LISTED_IMAGES)
    )
    summaries = []
    for row in rows:
        prediction = (row.result or {}).get("prediction") or []
        top = prediction[0] if prediction else None
        summaries.append(
            RunImageSummary(
                id=row.id,
                url=run_image_url(run_id, row.id),
                status=run_image_status(row),
                image_url=media_url(row.file),
                width=row.width,
                height=row.height,
                created_at=as_utc(row.created_at),
                top_class=None if top is None else (top.get("class_name") or f"class {top['class_index']}"),
            )
        )
    return summaries
