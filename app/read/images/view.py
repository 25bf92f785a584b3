"""The image view: one probe image of a stored run and, per layer, the units it drives most, from stored activations.

A run never changes once stored, so each layer's activations are read (through the app's `ArtifactsReader`) and
standardised once (per-unit mean and spread) and kept with the layer's labels; a page is then a row read and two
top-k's per layer. The model's prediction on the image and the units behind it come from its stored outputs
(app/read/classes/contributions.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.cache_bounds import CacheBounds
from app.core.errors import NotFound
from app.core.lru import LRUCache
from app.core.urls import image_url, media_url, neuron_url
from app.persistence.models import ProbeImage, Run
from app.read.artifacts.activations import ActivationsUnavailable
from app.read.artifacts.reader import ArtifactsReader
from app.read.caches import ReadCache
from app.read.classes.contributions import ClassViews
from app.read.schemas.images import ImageLayerUnits, ImageUnit, ImageView
from app.read.schemas.layers import LayerSummary
from dissect_core.analysis.standardise import LayerStandardiser
from dissect_core.analysis.unit_ranking import RankedUnits, rank_units
from dissect_core.evaluation.verdict import Verdict

#: How many units each of a layer's two lists shows.
TOP_UNITS = 8


@dataclass(frozen=True)
class UnitLabel:
    """What the image view shows of a unit's label."""

    label: str
    score: float
    low_confidence: bool
    reliable: bool | None
    verdict: Verdict | None = None


UNLABELLED = UnitLabel(label="(no label stored)", score=0.0, low_confidence=True, reliable=None)


@dataclass(frozen=True)
class LayerRanking:
    """A layer's standardised activations with its units' labels (by column)."""

    standardiser: LayerStandardiser
    labels: tuple[UnitLabel, ...]

    def nbytes(self) -> int:
        """Return roughly how many bytes the ranking holds."""
        return self.standardiser.nbytes() + 200 * len(self.labels)


@dataclass(frozen=True)
class RunImages:
    """Where a run's activations lie (its artifacts folder as stored) and how many probe images it stored."""

    folder: str
    n_images: int


class ImageViews:
    """Answers image views of stored runs, keeping each stored layer's standardised activations and labels."""

    def __init__(
        self, reader: ArtifactsReader, *, bounds: CacheBounds | None = None, classes: ClassViews | None = None
    ) -> None:
        bounds = bounds or CacheBounds()
        self.reader = reader
        self.classes = classes or ClassViews(reader, bounds=bounds)
        # Keyed by the run's artifacts folder (a new one per stored run): a deleted run's id, reused by a later run,
        # never finds the old activations.
        self._layers: LRUCache[tuple[str, str], LayerRanking] = LRUCache(
            bounds.ranked_layers, weigh=LayerRanking.nbytes, max_weight=bounds.ranked_bytes, loads_per_key=True
        )

    def view(self, session: Session, cache: ReadCache, run_id: int, image_index: int) -> ImageView:
        """Return the image view of a run's probe image, or raise NotFound naming the valid indices."""
        run = cache.run(session, run_id)
        images, image = _run_images(session, run_id, image_index)
        if image is None:
            valid = f"probe images 0–{images.n_images - 1}" if images.n_images else "no probe images"
            raise NotFound(
                f"Run {run_id} has {valid}, so there is no image {image_index}; pick an index in that range."
            )
        source_path, view_file = image
        prediction, why = self.classes.prediction(session, cache, run, image_index)
        return ImageView(
            run_id=run_id,
            model_name=run.model_name,
            image_index=image_index,
            n_images=images.n_images,
            file_name=_file_name(source_path),
            view_url=media_url(view_file),
            previous_image=image_index - 1 if image_index > 0 else None,
            next_image=image_index + 1 if image_index + 1 < images.n_images else None,
            permalink=image_url(run_id, image_index),
            layers=[self._layer_units(session, cache, run_id, images, layer, image_index) for layer in run.layers],
            prediction=prediction,
            why=why,
        )

    def _layer_units(
        self, session: Session, cache: ReadCache, run_id: int, images: RunImages, layer: LayerSummary, image: int
    ) -> ImageLayerUnits:
        try:
            ranking = self._ranking(session, cache, run_id, images, layer.name)
        except ActivationsUnavailable as error:
            return ImageLayerUnits(
                layer=layer.name,
                kind=layer.kind,
                n_units=layer.n_units,
                by_activation=[],
                by_unusualness=[],
                unavailable=str(error),
            )
        loudest, most_unusual = rank_units(ranking.standardiser, image, TOP_UNITS)
        return ImageLayerUnits(
            layer=layer.name,
            kind=layer.kind,
            n_units=layer.n_units,
            by_activation=ranked_units(run_id, layer.name, ranking, loudest),
            by_unusualness=ranked_units(run_id, layer.name, ranking, most_unusual),
        )

    def layer_ranking(self, session: Session, cache: ReadCache, run_id: int, layer: str) -> LayerRanking:
        """Return a stored layer's standardised activations and labels (cached), or raise ActivationsUnavailable."""
        images, _ = _run_images(session, run_id, 0)
        return self._ranking(session, cache, run_id, images, layer)

    def _ranking(self, session: Session, cache: ReadCache, run_id: int, images: RunImages, layer: str) -> LayerRanking:
        def load() -> LayerRanking:
            rows = self.reader.activation_rows(images.folder, layer, images.n_images)
            index = cache.layer_index(session, run_id, layer)
            by_unit = {
                neuron.unit: UnitLabel(
                    label=neuron.summary.label,
                    score=neuron.summary.score,
                    low_confidence=neuron.summary.low_confidence,
                    reliable=neuron.summary.reliable,
                    verdict=neuron.summary.verdict,
                )
                for neuron in index.neurons
            }
            labels = tuple(by_unit.get(unit, UNLABELLED) for unit in range(rows.shape[0]))
            return LayerRanking(standardiser=LayerStandardiser.from_rows(rows), labels=labels)

        return self._layers.get_or_load((images.folder, layer), load)


def _run_images(session: Session, run_id: int, image_index: int) -> tuple[RunImages, tuple[str, str | None] | None]:
    """Return the run's activations folder and image count, and the image's (source path, view file) if stored."""
    # One round trip. Indices run 0..n-1 and (run_id, index) is unique: the largest is an index lookup, not a count.
    last = select(func.max(ProbeImage.index)).where(ProbeImage.run_id == run_id).scalar_subquery()
    on_image = (ProbeImage.run_id == Run.id) & (ProbeImage.index == image_index)
    row = session.execute(
        select(Run.artifacts_dir, last, ProbeImage.source_path, ProbeImage.view_file)
        .outerjoin(ProbeImage, on_image)
        .where(Run.id == run_id)
    ).one()
    stored, last_index, source_path, view_file = row
    images = RunImages(folder=stored or "", n_images=0 if last_index is None else int(last_index) + 1)
    return images, None if source_path is None else (source_path, view_file)


def _file_name(source_path: str) -> str:
    """Return a stored probe image's file name alone (either separator), never the folder it was read from."""
    return PurePath(source_path.replace("\\", "/")).name or "(unnamed)"


def ranked_units(run_id: int, layer: str, ranking: LayerRanking, ranked: RankedUnits) -> list[ImageUnit]:
    """Return the ranked units as the view shows them, with their labels."""
    rows = zip(
        ranked.units.tolist(),
        ranked.activations.tolist(),
        ranked.percentiles.tolist(),
        ranked.z_scores.tolist(),
        strict=True,
    )
    units = []
    for unit, activation, percentile, z_score in rows:
        label = ranking.labels[unit]
        units.append(
            ImageUnit(
                unit=unit,
                label=label.label,
                score=label.score,
                low_confidence=label.low_confidence,
                reliable=label.reliable,
                verdict=label.verdict,
                activation=activation,
                percentile=percentile,
                z_score=z_score,
                neuron_url=neuron_url(run_id, layer, unit),
            )
        )
    return units
