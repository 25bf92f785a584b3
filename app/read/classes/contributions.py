"""A classifier's classes read from a stored run's outputs: which units of the layer feeding the classifier drive
each class (contribution = W[c, j] × the mean of feature j over the images predicted as c), how many probe images
it is predicted for, and why the model predicted what it did on one image (W[c, j] × feature j on it).

The per-class tables are computed once per run (one pass over the stored classifier inputs) and kept in an LRU;
a page is then a row look-up. A run stored before outputs were kept, or whose model has no final linear classifier
fed by a dissected layer, has no class pages: the error says so and how to get them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from sqlalchemy.orm import Session

from app.core.cache_bounds import CacheBounds
from app.core.errors import NotFound
from app.core.lru import LRUCache
from app.core.urls import class_url, image_url, neuron_url
from app.read.artifacts.reader import ArtifactsReader
from app.read.caches import ReadCache
from app.read.classes.names import class_name_or_index, run_class_names
from app.read.images.queries import view_urls
from app.read.layers.index import LayerIndex
from app.read.neurons.unit_links import crop_urls, unit_summary
from app.read.runs.queries import get_run
from app.read.schemas.classes import (
    ClassDetail,
    ClassList,
    ClassSummary,
    ClassUnit,
    PredictedImage,
    Prediction,
    PredictionUnit,
)
from app.read.schemas.runs import RunDetail
from dissect_core.analysis.classes import class_contributions, image_contributions, positive_shares, top_predictions
from dissect_core.analysis.outputs import ModelOutputs
from dissect_core.topk import stable_topk

#: Units a class page lists, probe images it shows, units "why this prediction" lists.
CLASS_UNITS = 20
PREDICTED_IMAGES = 24
WHY_UNITS = 8


class NoClassifierOutputs(NotFound):
    """The run keeps no classifier outputs fed by a dissected layer, so it has no class pages."""


@dataclass(frozen=True)
class Classifier:
    """A run's final classifier as stored: its weight [C, D], its inputs [N, D], the layer feeding it, its logits."""

    weight: torch.Tensor
    inputs: torch.Tensor
    logits: torch.Tensor
    feeding_layer: str


def stored_classifier(outputs: ModelOutputs | None, run_id: int) -> Classifier:
    """Return the run's classifier from its stored outputs, or raise NoClassifierOutputs saying why there is none."""
    if outputs is None:
        raise NoClassifierOutputs(
            f"Run {run_id} has no classifier outputs: it was stored before the model's outputs were kept, so it has "
            "no class pages or predictions; dissect the model again to store them."
        )
    weight, inputs, feeding = outputs.classifier_weight, outputs.classifier_inputs, outputs.feeding_layer
    if weight is None or inputs is None or feeding is None:
        raise NoClassifierOutputs(
            f"Run {run_id} has no classifier outputs fed by a dissected layer: its model ends in no linear "
            "classifier, or the layer feeding it was not dissected; dissect that layer (e.g. the one before the "
            "classifier) with the model's final layer to get class pages."
        )
    return Classifier(weight=weight, inputs=inputs, logits=outputs.logits, feeding_layer=feeding)


@dataclass(frozen=True)
class RunClasses:
    """Per-class tables of one run: contributions [C, D] and their shares, predictions per image and per class."""

    classifier: Classifier
    contributions: torch.Tensor
    shares: torch.Tensor
    predicted: torch.Tensor  # [N] each image's class
    confidence: torch.Tensor  # [N] the softmax probability of that class
    n_predicted: torch.Tensor  # [C]

    @classmethod
    def of(cls, classifier: Classifier) -> RunClasses:
        """Return the tables of a classifier (one pass over its stored inputs)."""
        predicted = classifier.logits.argmax(dim=1)
        contributions = class_contributions(classifier.weight, classifier.inputs, predicted)
        probabilities = torch.softmax(classifier.logits.float(), dim=1)
        return cls(
            classifier=classifier,
            contributions=contributions,
            shares=positive_shares(contributions),
            predicted=predicted,
            confidence=probabilities.gather(1, predicted.unsqueeze(1)).squeeze(1),
            n_predicted=torch.bincount(predicted, minlength=classifier.weight.shape[0]),
        )

    @property
    def n_classes(self) -> int:
        """Return the number of classes."""
        return int(self.contributions.shape[0])

    def nbytes(self) -> int:
        """Return roughly the bytes held beyond the reader's own copy of the outputs."""
        tensors = (self.contributions, self.shares, self.predicted, self.confidence, self.n_predicted)
        return sum(tensor.numel() * tensor.element_size() for tensor in tensors)


class ClassViews:
    """Answers class lists, class pages and predictions of stored runs, keeping each run's per-class tables."""

    def __init__(self, reader: ArtifactsReader, *, bounds: CacheBounds | None = None) -> None:
        bounds = bounds or CacheBounds()
        self.reader = reader
        # Keyed by the run's id and creation time, as NeuronDistributions keys folders: a reused id misses.
        self._runs: LRUCache[tuple[int, object], RunClasses] = LRUCache(bounds.artifact_runs, loads_per_key=True)

    def classes(self, session: Session, run: RunDetail) -> RunClasses:
        """Return the run's per-class tables (cached), or raise NoClassifierOutputs."""

        def load() -> RunClasses:
            outputs = self.reader.outputs(get_run(session, run.id).artifacts_dir)
            return RunClasses.of(stored_classifier(outputs, run.id))

        return self._runs.get_or_load((run.id, run.created_at), load)

    def has_classes(self, session: Session, run: RunDetail) -> bool:
        """Return whether the run has class pages (classifier outputs fed by a dissected layer)."""
        try:
            self.classes(session, run)
        except NoClassifierOutputs:
            return False
        return True

    def class_list(self, session: Session, cache: ReadCache, run_id: int, q: str = "") -> ClassList:
        """Return the run's classes whose name contains q (any case), each with its top unit."""
        run = cache.run(session, run_id)
        tables = self.classes(session, run)
        names = run_class_names(run)
        index = cache.layer_index(session, run_id, tables.classifier.feeding_layer)
        wanted = q.strip().casefold()
        summaries = []
        for class_index in range(tables.n_classes):
            name = class_name_or_index(names, class_index)
            if wanted and wanted not in name.casefold():
                continue
            n_predicted = int(tables.n_predicted[class_index])
            top = int(tables.contributions[class_index].argmax()) if n_predicted else None
            summaries.append(
                ClassSummary(
                    class_index=class_index,
                    class_name=name,
                    n_predicted=n_predicted,
                    top_unit=None if top is None else _class_unit(run_id, index, tables, class_index, top),
                    url=class_url(run_id, class_index),
                )
            )
        return ClassList(
            run_id=run_id,
            q=q.strip(),
            n_classes=tables.n_classes,
            feeding_layer=tables.classifier.feeding_layer,
            items=summaries,
            total=len(summaries),
            limit=max(1, len(summaries)),
        )

    def class_detail(self, session: Session, cache: ReadCache, run_id: int, class_index: int) -> ClassDetail:
        """Return one class: its units by contribution and the probe images predicted as it, or raise NotFound."""
        run = cache.run(session, run_id)
        tables = self.classes(session, run)
        if not 0 <= class_index < tables.n_classes:
            raise NotFound(
                f"Run {run_id}'s classifier has classes 0–{tables.n_classes - 1}, so there is no class {class_index}; "
                "pick one in that range."
            )
        index = cache.layer_index(session, run_id, tables.classifier.feeding_layer)
        row = tables.contributions[class_index]
        _, units = stable_topk(row.unsqueeze(0), min(CLASS_UNITS, row.numel()))
        n_predicted = int(tables.n_predicted[class_index])
        return ClassDetail(
            run_id=run_id,
            class_index=class_index,
            class_name=class_name_or_index(run_class_names(run), class_index),
            n_predicted=n_predicted,
            feeding_layer=tables.classifier.feeding_layer,
            units=[_class_unit(run_id, index, tables, class_index, unit) for unit in units[0].tolist()]
            if n_predicted
            else [],
            predicted_images=_predicted_images(session, run_id, tables, class_index),
        )

    def prediction(
        self, session: Session, cache: ReadCache, run: RunDetail, image: int
    ) -> tuple[list[Prediction], list[PredictionUnit]]:
        """Return the model's top-5 classes on a probe image and, for the top one, the units contributing most on
        it; ([], []) for a run without classifier outputs."""
        try:
            tables = self.classes(session, run)
        except NoClassifierOutputs:
            return [], []
        classifier = tables.classifier
        if not 0 <= image < classifier.logits.shape[0]:
            return [], []
        names = run_class_names(run)
        classes, probabilities = top_predictions(classifier.logits[image])
        prediction = [
            Prediction(
                class_index=int(c),
                class_name=class_name_or_index(names, int(c)),
                probability=float(p),
                url=class_url(run.id, int(c)),
            )
            for c, p in zip(classes.tolist(), probabilities.tolist(), strict=True)
        ]
        top_class = int(classes[0])
        row = image_contributions(classifier.weight, classifier.inputs[image])[top_class]
        values, units = stable_topk(row.unsqueeze(0), min(WHY_UNITS, row.numel()))
        index = cache.layer_index(session, run.id, classifier.feeding_layer)
        why = []
        for unit, contribution in zip(units[0].tolist(), values[0].tolist(), strict=True):
            summary = unit_summary(index, unit)
            crops = crop_urls(summary)
            why.append(
                PredictionUnit(
                    layer=classifier.feeding_layer,
                    unit=unit,
                    label=None if summary is None else summary.label,
                    contribution=contribution,
                    url=neuron_url(run.id, classifier.feeding_layer, unit),
                    crop_url=crops[0] if crops else None,
                )
            )
        return prediction, why


def _class_unit(run_id: int, index: LayerIndex, tables: RunClasses, class_index: int, unit: int) -> ClassUnit:
    summary = unit_summary(index, unit)
    return ClassUnit(
        layer=index.layer,
        unit=unit,
        label=None if summary is None else summary.label,
        reliable=None if summary is None else summary.reliable,
        verdict=None if summary is None else summary.verdict,
        contribution=float(tables.contributions[class_index, unit]),
        share=float(tables.shares[class_index, unit]),
        url=neuron_url(run_id, index.layer, unit),
        crop_urls=crop_urls(summary),
    )


def _predicted_images(session: Session, run_id: int, tables: RunClasses, class_index: int) -> list[PredictedImage]:
    """Return the probe images predicted as the class, the most confident first (the lower index on ties)."""
    chosen = (tables.predicted == class_index).nonzero().squeeze(1)
    if chosen.numel() == 0:
        return []
    confidence = tables.confidence[chosen]
    values, positions = stable_topk(confidence.unsqueeze(0), min(PREDICTED_IMAGES, chosen.numel()))
    images = chosen[positions[0]].tolist()
    views = view_urls(session, run_id, images)
    return [
        PredictedImage(
            image_index=image, probability=float(value), view_url=views.get(image), url=image_url(run_id, image)
        )
        for image, value in zip(images, values[0].tolist(), strict=True)
    ]
