"""A stored layer held in memory: every neuron with its top images, in each grid order, loaded in two queries.

A run is written once and never edited, so a layer can be read whole on first use and answered from memory
afterwards: grid pages in any sort or filter, neuron permalinks and the JSON lists come from one in-memory
index instead of several queries each. A 2,048-neuron layer takes a few megabytes and well under a second
to load; the ReadCache keeps a bounded number of them.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.errors import NotFound
from app.core.urls import media_url, neuron_url, top_media_url
from app.persistence.media import CUT_ON_REQUEST
from app.persistence.models import Neuron, TopImage
from app.read.classes.names import class_fields, run_class_names, unit_class_name
from app.read.layers.label_query import LabelQuery
from app.read.schemas.layers import LayerEvaluationView, LayerScoreStats
from app.read.schemas.neurons import (
    ConceptScoreView,
    NeuronDetail,
    NeuronList,
    NeuronSummary,
    TopImageView,
    WeightedConceptView,
)
from app.read.schemas.runs import NeuronSort, RunDetail
from dissect_core.evaluation.verdict import Verdict
from dissect_core.neuron_rows import GRADE_FIELDS
from dissect_core.results import EVALUATION_FIELDS

#: A neuron row's evaluation, verdict, coverage and label-free columns, as NeuronSummary fields of the same names.
SUMMARY_FIELDS = EVALUATION_FIELDS + GRADE_FIELDS

GRID_IMAGES = 5


@dataclass(frozen=True)
class IndexedNeuron:
    """One neuron of a stored layer: its grid card (summary), every top image and its runners-up."""

    summary: NeuronSummary
    top_images: tuple[TopImageView, ...]
    runners_up: tuple[ConceptScoreView, ...]
    label_folded: str
    #: On a classifier's final layer, the unit's class name case-folded ("" elsewhere): filters find units by it.
    class_folded: str = ""

    @property
    def unit(self) -> int:
        """The neuron's unit number in its layer."""
        return self.summary.unit

    def matches(self, query: LabelQuery) -> bool:
        """Return whether the query finds this neuron: by its label or unit (LabelQuery), or by its class name."""
        return query.matches(self.label_folded, self.unit) or bool(
            self.class_folded and query.matches(self.class_folded, -1)
        )


def _score_fraction(score: float, stats: LayerScoreStats) -> float:
    spread = stats.score_max - stats.score_min
    return 1.0 if spread <= 0 else max(0.0, min(1.0, (score - stats.score_min) / spread))


def _by_r(neuron: IndexedNeuron, sign: float) -> tuple[bool, float, int]:
    # Neurons without an r (stored before evaluations, or with an undefined one) come last in either direction.
    r = neuron.summary.explained_r
    return (r is None, sign * (r or 0.0), neuron.unit)


def _by_score(name: str, sign: float) -> Callable[[IndexedNeuron], tuple[bool, float, int]]:
    """Return the sort key of a label-free score (`clarity`, `polysemanticity`); neurons without one come last."""

    def key(neuron: IndexedNeuron) -> tuple[bool, float, int]:
        value = getattr(neuron.summary, name)
        return (value is None, sign * (value or 0.0), neuron.unit)

    return key


_SORT_KEYS: dict[str, tuple[Callable[[IndexedNeuron], Any], bool]] = {
    "unit": (lambda neuron: neuron.unit, False),
    "-unit": (lambda neuron: neuron.unit, True),
    "score": (lambda neuron: (neuron.summary.score, neuron.unit), False),
    "-score": (lambda neuron: (-neuron.summary.score, neuron.unit), False),
    "label": (lambda neuron: (neuron.label_folded, neuron.unit), False),
    # Labels Z→A, ties still by ascending unit: a stable reverse sort of the unit order keeps that order.
    "-label": (lambda neuron: neuron.label_folded, True),
    "r": (lambda neuron: _by_r(neuron, 1.0), False),
    "-r": (lambda neuron: _by_r(neuron, -1.0), False),
    "clarity": (_by_score("clarity", 1.0), False),
    "-clarity": (_by_score("clarity", -1.0), False),
    "polysemanticity": (_by_score("polysemanticity", 1.0), False),
    "-polysemanticity": (_by_score("polysemanticity", -1.0), False),
}


@dataclass(eq=False)  # hashed by identity, so an index can key (weak) caches that live exactly as long as it does
class LayerIndex:
    """Every neuron of one stored layer in unit order, with the orders of the grid's sorts computed once each."""

    run_id: int
    layer: str
    layer_kind: str
    n_units: int
    stats: LayerScoreStats
    neurons: tuple[IndexedNeuron, ...]
    evaluation: LayerEvaluationView | None = None
    _position: dict[int, int] = field(init=False, repr=False)
    _orders: dict[str, tuple[IndexedNeuron, ...]] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._position = {neuron.unit: position for position, neuron in enumerate(self.neurons)}
        self._orders["unit"] = self.neurons

    def n_top_images(self) -> int:
        """Return how many top images the index holds (its memory is roughly proportional)."""
        return sum(len(neuron.top_images) for neuron in self.neurons)

    def ordered(self, sort: NeuronSort) -> tuple[IndexedNeuron, ...]:
        """Return the neurons in a grid sort order (computed on first use; dict writes are atomic)."""
        order = self._orders.get(sort)
        if order is None:
            key, reverse = _SORT_KEYS[sort]
            order = tuple(sorted(self.neurons, key=key, reverse=reverse))
            self._orders[sort] = order
        return order

    def matching(
        self, sort: NeuronSort, q: str, reliable: bool = False, verdict: Verdict | None = None
    ) -> Sequence[IndexedNeuron]:
        """Return the neurons whose label contains q (any case), or whose unit q names (`7` or `#7`), in order;
        with `reliable`, only those whose label is reliable (the top grade); with `verdict`, only that grade's."""
        ordered = self.ordered(sort)
        query = LabelQuery.parse(q)
        if query.is_empty and not reliable and verdict is None:
            return ordered
        return [
            neuron
            for neuron in ordered
            if (query.is_empty or neuron.matches(query))
            and (not reliable or neuron.summary.reliable is True)
            and (verdict is None or neuron.summary.verdict == verdict)
        ]

    def page(
        self,
        *,
        offset: int,
        limit: int,
        sort: NeuronSort,
        q: str,
        reliable: bool = False,
        verdict: Verdict | None = None,
    ) -> NeuronList:
        """Return one page of the grid: the matching (and, with `reliable` or `verdict`, graded so) neurons in `sort`
        order."""
        matches = self.matching(sort, q, reliable, verdict)
        return NeuronList(
            run_id=self.run_id,
            layer=self.layer,
            n_units=self.n_units,
            total=len(matches),
            offset=offset,
            limit=limit,
            sort=sort,
            q=q.strip(),
            reliable=reliable,
            verdict=verdict,
            stats=self.stats,
            layer_evaluation=self.evaluation,
            items=[neuron.summary for neuron in matches[offset : offset + limit]],
        )

    def neighbours(self, unit: int, sort: NeuronSort, q: str = "") -> tuple[int | None, int | None]:
        """Return the units before and after `unit` in the grid's `sort` order among those matching `q` (None at an
        end, both None when `unit` is not among them)."""
        units = [neuron.unit for neuron in self.matching(sort, q)]
        try:
            at = units.index(unit)
        except ValueError:
            return None, None
        return (units[at - 1] if at > 0 else None), (units[at + 1] if at + 1 < len(units) else None)

    def detail(self, run: RunDetail, unit: int) -> NeuronDetail:
        """Return one neuron with all its top images, runners-up and neighbours, or raise NotFound."""
        position = self._position.get(unit)
        if position is None:
            units = f"units {self.neurons[0].unit}–{self.neurons[-1].unit}" if self.neurons else "no labelled units"
            raise NotFound(f"Layer '{self.layer}' of run {self.run_id} has {units}; there is no unit {unit}.")
        neuron = self.neurons[position]
        summary = neuron.summary
        return NeuronDetail(
            unit=summary.unit,
            label=summary.label,
            score=summary.score,
            low_confidence=summary.low_confidence,
            score_fraction=summary.score_fraction,
            **{name: getattr(summary, name) for name in SUMMARY_FIELDS},
            top_images=list(neuron.top_images),
            run_id=self.run_id,
            model_name=run.model_name,
            layer=self.layer,
            layer_kind=self.layer_kind,
            n_units=self.n_units,
            runners_up=list(neuron.runners_up),
            previous_unit=self.neurons[position - 1].unit if position > 0 else None,
            next_unit=self.neurons[position + 1].unit if position + 1 < len(self.neurons) else None,
            stats=self.stats,
            layer_evaluation=self.evaluation,
            permalink=neuron_url(self.run_id, self.layer, summary.unit),
            # A RunDetail built without settings (model_construct) has no class names to show.
            **class_fields(run_class_names(run), self.n_units, summary.unit, summary.label),
        )


@contextmanager
def _collector_paused() -> Iterator[None]:
    # Building tens of thousands of small objects triggers full collections that scan every object the process
    # holds (torch included), doubling or tripling the load time; nothing built here forms cycles.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_layer_index(
    session: Session,
    *,
    run_id: int,
    layer_id: int,
    layer: str,
    layer_kind: str,
    n_units: int,
    stats: LayerScoreStats,
    evaluation: LayerEvaluationView | None = None,
    class_names: Sequence[str] | None = None,
) -> LayerIndex:
    """Read a stored layer's neurons and top images (two queries) into a LayerIndex; the run's `class_names` name
    the units of its classifier's final layer."""
    image_rows = session.execute(
        select(
            TopImage.neuron_id,
            TopImage.rank,
            TopImage.image_index,
            TopImage.activation,
            TopImage.box_x0,
            TopImage.box_y0,
            TopImage.box_x1,
            TopImage.box_y1,
            TopImage.crop_file,
            TopImage.view_file,
            TopImage.heatmap_file,
        )
        .join(Neuron, Neuron.id == TopImage.neuron_id)
        .where(Neuron.layer_id == layer_id)
        .order_by(TopImage.neuron_id, TopImage.rank)
    ).all()
    neuron_rows = session.execute(
        select(
            Neuron.id,
            Neuron.unit,
            Neuron.label,
            Neuron.score,
            Neuron.runners_up,
            *(getattr(Neuron, name) for name in SUMMARY_FIELDS),
        )
        .where(Neuron.layer_id == layer_id)
        .order_by(Neuron.unit)
    ).all()
    with _collector_paused():
        classes = [unit_class_name(class_names, n_units, row[1]) or "" for row in neuron_rows]
        neurons = _indexed_neurons(neuron_rows, image_rows, stats, run_id=run_id, layer=layer, classes=classes)
    return LayerIndex(
        run_id=run_id,
        layer=layer,
        layer_kind=layer_kind,
        n_units=n_units,
        stats=stats,
        neurons=neurons,
        evaluation=evaluation,
    )


def cut_media_url(stored: str | None, run_id: int, layer: str, unit: int, rank: int, kind: str) -> str | None:
    """Return a top image's crop or heatmap URL: its stable cut-on-request URL, or its stored file's (older runs)."""
    if stored == CUT_ON_REQUEST:
        return top_media_url(run_id, layer, unit, rank, kind)
    return media_url(stored)


def _indexed_neurons(
    neuron_rows: Sequence[Any],
    image_rows: Sequence[Any],
    stats: LayerScoreStats,
    *,
    run_id: int,
    layer: str,
    classes: Sequence[str],
) -> tuple[IndexedNeuron, ...]:
    images: dict[int, list[TopImageView]] = {}
    units = {row[0]: row[1] for row in neuron_rows}
    for neuron_id, rank, image_index, activation, x0, y0, x1, y1, crop, view, heatmap in image_rows:
        unit = units[neuron_id]
        images.setdefault(neuron_id, []).append(
            TopImageView(
                rank=rank,
                image_index=image_index,
                activation=activation,
                box=(x0, y0, x1, y1),
                crop_url=cut_media_url(crop, run_id, layer, unit, rank, "crop") or "",
                view_url=media_url(view) or "",
                heatmap_url=cut_media_url(heatmap, run_id, layer, unit, rank, "heatmap"),
            )
        )
    neurons = []
    for (neuron_id, unit, label, score, runners_up, *evaluation), class_name in zip(neuron_rows, classes, strict=True):
        top_images = tuple(images.get(neuron_id, ()))
        summary = NeuronSummary(
            unit=unit,
            label=label,
            score=score,
            low_confidence=score < stats.low_confidence_below,
            score_fraction=_score_fraction(score, stats),
            **_evaluation_fields(evaluation),
            # The card's images are the first top images themselves: a TopImageView is a GridImage, and pydantic
            # serialises it by the declared GridImage fields, so the JSON list is unchanged.
            top_images=list(top_images[:GRID_IMAGES]),
        )
        neurons.append(
            IndexedNeuron(
                summary=summary,
                top_images=top_images,
                runners_up=tuple(
                    ConceptScoreView(concept=str(alt["concept"]), score=float(alt["score"])) for alt in runners_up
                ),
                label_folded=label.casefold(),
                class_folded=class_name.casefold(),
            )
        )
    return tuple(neurons)


def _evaluation_fields(columns: Sequence[Any]) -> dict[str, Any]:
    """Return a neuron row's evaluation and grade columns (in SUMMARY_FIELDS order) as NeuronSummary fields."""
    fields = dict(zip(SUMMARY_FIELDS, columns, strict=True))
    explanation = fields["explanation"]
    if explanation is not None:
        fields["explanation"] = [
            WeightedConceptView(concept=str(term["concept"]), weight=float(term["weight"])) for term in explanation
        ]
    return fields
