"""The one search box, "which units detect X?": units whose labels match the text (its word forms included) or
name one of its near concepts, beside the text ranked as a concept over every layer of the run."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from sqlalchemy.orm import Session

from app.read.caches import ReadCache
from app.read.classes.names import run_class_names
from app.read.concepts.search import ConceptSearcher, run_scoring
from app.read.layers.label_query import LabelQuery
from app.read.runs.queries import get_run
from app.read.schemas.search import ConceptRanking, HitSort, LabelHit, NearConcept, RankedUnit, UnitSearch
from app.read.search.hits import unit_hit_fields
from app.read.search.near import near_concepts, run_labels
from app.read.search.ranking import RunConceptScores, UnitConceptScore, ranking_page, score_run
from dissect_core.errors import DissectError

#: Units of the concept ranking the search answer carries (the ranking's own route pages through the rest).
RANKING_PAGE = 24


#: A hit of either list the search answers with: both sort by the same keys.
Hit = LabelHit | RankedUnit


def _by_layer(hit: Hit) -> tuple[Any, ...]:
    return (hit.layer_position, -hit.label_score, hit.unit)


def _last_when_none(value: float | None) -> tuple[bool, float]:
    return (value is None, -(value or 0.0))


#: The sort key of each HitSort, for label hits and ranked units alike.
HIT_ORDERS: dict[HitSort, Callable[[Hit], tuple[Any, ...]]] = {
    "layer": _by_layer,
    "score": lambda hit: (*_last_when_none(hit.standardised_score), *_by_layer(hit)),
    "r": lambda hit: (*_last_when_none(hit.explained_r), *_by_layer(hit)),
}


def _label_hits(
    session: Session,
    cache: ReadCache,
    run_id: int,
    query: LabelQuery,
    near: list[NearConcept],
    scored: RunConceptScores | None,
    concept: str,
) -> list[LabelHit]:
    """Return every unit of the run the query finds as the layer grid's filter does (label, word forms, unit, class
    name), or whose label is one of the near concepts."""
    near_labels = {item.concept for item in near}
    class_names = run_class_names(cache.run(session, run_id))
    hits = []
    for summary in cache.run(session, run_id).layers:
        index = cache.layer_index(session, run_id, summary.name)
        for neuron in index.neurons:
            matched: Literal["label", "near"]
            if neuron.matches(query):  # the grid filter's rule: the label, its word forms, the unit or the class
                matched = "label"
            elif neuron.summary.label in near_labels:
                matched = "near"
            else:
                continue
            ranked = scored.of(summary.name, neuron.unit) if scored is not None else UnitConceptScore()
            hits.append(
                LabelHit(
                    **unit_hit_fields(index, summary.position, neuron.unit, class_names, concept),
                    matched=matched,
                    score=ranked.score,
                    standardised_score=ranked.standardised_score,
                    rank=ranked.rank,
                )
            )
    return hits


def search_units(
    session: Session,
    cache: ReadCache,
    searcher: ConceptSearcher,
    run_id: int,
    q: str,
    *,
    sort: HitSort = "layer",
    offset: int = 0,
    limit: int = 200,
) -> UnitSearch:
    """Return a page of the units whose labels match q or its near concepts, in `sort` order, and q ranked as a
    concept over every layer (RANKING_PAGE units). A unit number (`7`, `#7`) is no concept: it is not ranked. A run
    that cannot score typed concepts still gets its label hits, with the reason in `ranking_error`."""
    started = time.perf_counter()
    get_run(session, run_id)  # NotFound for a run that does not exist
    query = LabelQuery.parse(q)
    concept = q.strip() if query.unit is None else ""
    near: list[NearConcept] = []
    scored: RunConceptScores | None = None
    ranking: ConceptRanking | None = None
    ranking_error = None
    if concept:
        try:
            scored = score_run(session, cache, searcher, run_id, concept)
            ranking = ranking_page(session, cache, run_id, scored, offset=0, limit=RANKING_PAGE, started=started)
            near = near_concepts(searcher, run_scoring(get_run(session, run_id)), run_labels(session, run_id), query)
        except DissectError as error:
            ranking_error = str(error)
    hits = [] if query.is_empty else _label_hits(session, cache, run_id, query, near, scored, concept)
    hits.sort(key=HIT_ORDERS[sort])
    return UnitSearch(
        items=hits[offset : offset + limit],
        total=len(hits),
        offset=offset,
        limit=limit,
        run_id=run_id,
        q=q.strip(),
        sort=sort,
        word_forms=query.other_forms,
        near_concepts=near,
        ranking=ranking,
        ranking_error=ranking_error,
        seconds=time.perf_counter() - started,
    )
