"""A typed concept ranked over every layer of a run in one answer.

Each layer is scored as the layer's own concept ranking scores it (app.read.concepts.search: soft-WPMI against the
run's stored image embeddings and normalisers). Soft-WPMI scores are on each layer's own scale (its top images'
similarities, less the concept's prior), so units of different layers are ordered by their score in standard
deviations above their layer's mean (`standardise`); each unit also keeps its raw score and its rank in its layer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NamedTuple

import torch
from sqlalchemy.orm import Session

from app.read.caches import ReadCache
from app.read.classes.names import run_class_names
from app.read.concepts.search import ConceptSearcher, clean_concept, run_scoring
from app.read.layers.queries import get_layer
from app.read.runs.queries import get_run
from app.read.schemas.search import ConceptRanking, RankedUnit
from app.read.search.hits import unit_hit_fields
from dissect_core.analysis.coverage import Coverage


def standardise(scores: torch.Tensor) -> torch.Tensor:
    """Return scores [K] in population standard deviations above their mean (all 0 when they do not vary)."""
    values = scores.double()
    spread = values.std(unbiased=False) if values.numel() > 1 else values.new_tensor(0.0)
    if not torch.isfinite(spread) or spread <= 0:
        return torch.zeros_like(values)
    return (values - values.mean()) / spread


def ranks_within(scores: torch.Tensor) -> torch.Tensor:
    """Return each unit's rank [K] by score, 1 = best (ties in unit order, as the layer's own ranking orders them)."""
    order = torch.argsort(scores, descending=True, stable=True)
    ranks = torch.empty_like(order)
    ranks[order] = torch.arange(1, len(order) + 1)
    return ranks


def coverage_warning(coverage: Coverage | None) -> str | None:
    """Return the coverage's note as a sentence when the concept cannot be judged on the probe set, else None."""
    if coverage is None or coverage.judgeable:
        return None
    return coverage.note[:1].upper() + coverage.note[1:] + "."


class UnitConceptScore(NamedTuple):
    """A concept's score on one unit, that score standardised within its layer, and the unit's rank there."""

    score: float | None = None
    standardised_score: float | None = None
    rank: int | None = None


@dataclass(frozen=True)
class LayerScores:
    """One layer's scores for a concept: raw, standardised and ranked, by unit."""

    name: str
    position: int
    scores: torch.Tensor
    standardised: torch.Tensor
    ranks: torch.Tensor


@dataclass(frozen=True)
class RunConceptScores:
    """A concept scored on every ranked layer of a run, with the run-wide order and the encoder's coverage."""

    concept: str
    layers: tuple[LayerScores, ...]
    #: (layer index into `layers`, unit) pairs, best standardised score first.
    order: tuple[tuple[int, int], ...]
    coverage: Coverage | None

    def of(self, layer: str, unit: int) -> UnitConceptScore:
        """Return a unit's score, standardised score and rank in its layer (all None when its layer was not ranked)."""
        for scored in self.layers:
            if scored.name == layer and 0 <= unit < len(scored.scores):
                return UnitConceptScore(
                    float(scored.scores[unit]), float(scored.standardised[unit]), int(scored.ranks[unit])
                )
        return UnitConceptScore()


def score_run(
    session: Session, cache: ReadCache, searcher: ConceptSearcher, run_id: int, concept: str, layer: str | None = None
) -> RunConceptScores:
    """Return the concept's scores on every layer of the run (or the one named), ordered across layers."""
    concept = clean_concept(concept)
    scoring = run_scoring(get_run(session, run_id))
    summaries = cache.run(session, run_id).layers
    if layer is not None:
        chosen = get_layer(session, run_id, layer)  # NotFound names the run's layers
        summaries = [summary for summary in summaries if summary.name == chosen.name]
    scored = []
    for summary in summaries:
        scores = searcher.score(scoring, summary.name, [concept])[:, 0].double()
        scored.append(LayerScores(summary.name, summary.position, scores, standardise(scores), ranks_within(scores)))
    # Concatenated in forward layer order then unit order, so a stable sort breaks ties by layer, then unit.
    keys = [(number, unit) for number, layer_scores in enumerate(scored) for unit in range(len(layer_scores.scores))]
    every = torch.cat([layer_scores.standardised for layer_scores in scored]) if scored else torch.zeros(0)
    order = torch.argsort(every, descending=True, stable=True).tolist()
    return RunConceptScores(
        concept=concept,
        layers=tuple(scored),
        order=tuple(keys[position] for position in order),
        coverage=searcher.coverage(scoring, concept),
    )


def ranking_page(
    session: Session,
    cache: ReadCache,
    run_id: int,
    scored: RunConceptScores,
    *,
    offset: int,
    limit: int,
    started: float,
) -> ConceptRanking:
    """Return one page of a run's scored units, best standardised score first (`started`: when the work began)."""
    class_names = run_class_names(cache.run(session, run_id))
    items = []
    for number, unit in scored.order[offset : offset + limit]:
        layer_scores = scored.layers[number]
        index = cache.layer_index(session, run_id, layer_scores.name)
        items.append(
            RankedUnit(
                **unit_hit_fields(index, layer_scores.position, unit, class_names, scored.concept),
                score=float(layer_scores.scores[unit]),
                standardised_score=float(layer_scores.standardised[unit]),
                rank=int(layer_scores.ranks[unit]),
                n_units=len(layer_scores.scores),
            )
        )
    coverage = scored.coverage
    return ConceptRanking(
        items=items,
        total=len(scored.order),
        offset=offset,
        limit=limit,
        run_id=run_id,
        concept=scored.concept,
        layers=[layer_scores.name for layer_scores in scored.layers],
        warning=coverage_warning(coverage),
        n_carrying=None if coverage is None else coverage.n_carrying,
        encoder_blind=coverage is not None and coverage.encoder_blind,
        seconds=time.perf_counter() - started,
    )


def rank_concept(
    session: Session,
    cache: ReadCache,
    searcher: ConceptSearcher,
    run_id: int,
    concept: str,
    *,
    offset: int = 0,
    limit: int = 24,
    layer: str | None = None,
) -> ConceptRanking:
    """Return one page of the run's units (of every layer, or of `layer`) ranked by the typed concept."""
    started = time.perf_counter()
    scored = score_run(session, cache, searcher, run_id, concept, layer)
    return ranking_page(session, cache, run_id, scored, offset=offset, limit=limit, started=started)
