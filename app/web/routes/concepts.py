"""Concepts on demand: rank a layer by a typed concept, score one on a neuron, keep them, relabel with them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request

from app.auth.permissions import can_change, require_owner
from app.core.urls import api_url, job_url, run_url, safe_local_path
from app.jobs.runs.typed_concepts import keep_typed_concept, relabel_with_typed_concepts
from app.persistence.db import write_session
from app.read.concepts import typed as typed_queries
from app.read.concepts.search import MAX_CONCEPT_CHARS, score_neuron, search_layer
from app.read.layers import queries as layer_queries
from app.read.neurons.concept_evidence import concept_evidence
from app.read.runs import queries as run_queries
from app.read.schemas.common import ListPage
from app.read.schemas.concepts import ConceptSearchResult, NeuronConceptScore, TypedConceptView
from app.read.schemas.evidence import ConceptEvidence
from app.read.schemas.jobs import JobCreated
from app.read.schemas.runs import GRID_SORT
from app.web import openapi_examples as examples
from app.web.deps import (
    CurrentUserDep,
    DistributionsDep,
    EditorDep,
    EngineDep,
    ReadCacheDep,
    SearcherDep,
    SessionDep,
    SettingsDep,
)
from app.web.errors import API_ERRORS
from app.web.resources import Page, Redirect, resource
from app.web.routes.distribution import distribution_context
from app.web.routes.layers import layer_page_context
from app.web.routes.neurons import neuron, neuron_page_context
from app.web.views.htmx import TYPED_CONCEPTS_CHANGED
from app.web.views.paging import Id, Limit, Offset, linked, whole
from dissect_core.errors import DissectError

router = APIRouter(tags=["concepts"], responses=API_ERRORS)
#: A typed concept in the API: some text besides spaces. The schema says so; the search itself refuses a blank one
#: (422, saying to type a concept), and the pages take a blank box as a form not filled in yet. What the text rule
#: (app.core.text) refuses is named in the description: a schema pattern cannot name Unicode categories.
Concept = Annotated[
    str,
    Query(
        json_schema_extra={"pattern": r"\S"},
        description="the concept, e.g. 'striped': letters, digits, punctuation, symbols and spaces (422 names any "
        "other character)",
    ),
]


def typed_concepts_panel(
    kept: ListPage[TypedConceptView], run_id: Id, session: SessionDep, user: CurrentUserDep
) -> dict[str, object]:
    """Return the context of the kept-concepts panel (an htmx fragment, also on its own); the relabel button shows
    only to those who may relabel the run."""
    may_change = can_change(user, run_queries.get_run(session, run_id).owner)
    return {"run_id": run_id, "typed_concepts": kept.items, "may_change": may_change}


@resource(router, "/runs/{run_id}/typed-concepts", html=Page("partials/typed_concepts.html", typed_concepts_panel))
def typed_concepts(run_id: Id, session: SessionDep) -> ListPage[TypedConceptView]:
    """Concepts kept on the run's pages for a relabel, all on one page."""
    run_queries.get_run(session, run_id)
    return whole(typed_queries.list_typed_concepts(session, run_id))


def back_to_the_form(_kept: TypedConceptView, run_id: Id, back: Annotated[str, Form()] = "") -> str:
    """Return where the keep form goes back to: the page it was on (same site only), else the run's page."""
    return safe_local_path(back, default=run_url(run_id))


@resource(
    router,
    "/runs/{run_id}/typed-concepts",
    method="POST",
    html=Redirect(back_to_the_form, htmx_event=TYPED_CONCEPTS_CHANGED),
    status_code=201,
)
def keep_concept(
    run_id: Id, text: Annotated[str, Form(min_length=1)], engine: EngineDep, settings: SettingsDep, user: EditorDep
) -> TypedConceptView:
    """Keep a typed concept for the run (idempotent; its owner or an admin; at most a limit per run)."""
    with write_session(engine) as session:
        run = run_queries.get_run(session, run_id)
        require_owner(user, run.owner, f"Run {run_id}", "keep typed concepts for it")
        row = keep_typed_concept(session, run_id, text, owner_id=user.id, limit=(settings, user))
        return TypedConceptView(id=row.id, text=row.text, created_at=row.created_at)


@resource(
    router, "/runs/{run_id}/relabel", method="POST", html=Redirect(lambda created: created.job_url), status_code=201
)
def relabel(run_id: Id, settings: SettingsDep, engine: EngineDep, user: EditorDep) -> JobCreated:
    """Queue a relabel with the run's settings and its typed concepts added to its vocabulary (owner or admin); an
    identical queued, running or succeeded relabel is answered with its job instead."""
    with write_session(engine) as session:
        require_owner(user, run_queries.get_run(session, run_id).owner, f"Run {run_id}", "relabel it")
        job_id = relabel_with_typed_concepts(session, settings, run_id, owner=user)
    return JobCreated(job_id=job_id, job_url=job_url(job_id), api_url=api_url(job_url(job_id)))


def _problem(outcome: object, q: str) -> str | None:
    # A blank box is a form not filled in yet rather than a mistake: pages show no problem for it.
    return str(outcome) if isinstance(outcome, DissectError) and q.strip() else None


def neuron_concept_score(outcome: NeuronConceptScore | DissectError, q: str = "") -> dict[str, object]:
    """Return the context of a concept's score on a neuron: the score, or what kept it from being scored."""
    score = outcome if isinstance(outcome, NeuronConceptScore) else None
    return {"concept": q, "concept_score": score, "concept_error": _problem(outcome, q)}


def scored_neuron_page(
    run_id: Id, layer: str, unit: Id, session: SessionDep, cache: ReadCacheDep, distributions: DistributionsDep
) -> dict[str, object]:
    """Return the neuron page around the score: the neuron, as its permalink shows it."""
    run, detail = cache.run(session, run_id), neuron(run_id, layer, unit, session, cache)
    return {**neuron_page_context(run, detail), **distribution_context(session, run, detail, distributions)}


@resource(
    router,
    "/runs/{run_id}/layers/{layer}/neurons/{unit}/concept",
    html=Page(
        "neuron.html",
        context=neuron_concept_score,
        fragment="partials/neuron_concept.html",
        page_context=scored_neuron_page,
        shown_errors=(DissectError,),
    ),
)
def neuron_concept(
    run_id: Id, layer: str, unit: Id, q: Concept, session: SessionDep, searcher: SearcherDep
) -> NeuronConceptScore:
    """A typed concept's soft-WPMI score on one neuron, the neuron's rank for it in the layer, and its evidence:
    the probe images the encoder rates highest for the concept, each a hit or a miss."""
    score = score_neuron(session, searcher, run_id, layer, unit, q)
    evidence = concept_evidence(session, searcher, run_id, layer, unit, score.concept)
    return score.model_copy(update={"evidence": evidence})


def evidence_context(outcome: ConceptEvidence | DissectError) -> dict[str, object]:
    """Return the context of a concept's evidence on a neuron: the evidence, or what kept it from being shown."""
    evidence = outcome if isinstance(outcome, ConceptEvidence) else None
    return {"evidence": evidence, "evidence_error": None if evidence else str(outcome)}


@resource(
    router,
    "/runs/{run_id}/layers/{layer}/neurons/{unit}/concept-evidence",
    html=Page(
        "neuron.html",
        context=evidence_context,
        fragment="partials/concept_evidence.html",
        page_context=scored_neuron_page,
        shown_errors=(DissectError,),
    ),
)
def neuron_concept_evidence(
    run_id: Id,
    layer: str,
    unit: Id,
    session: SessionDep,
    searcher: SearcherDep,
    q: Annotated[
        str, Query(max_length=MAX_CONCEPT_CHARS, description="the concept, e.g. 'camel'; left out: the neuron's label")
    ] = "",
) -> ConceptEvidence:
    """The probe images the run's encoder rates highest for a concept (the neuron's label unless `q` names one),
    each a hit (the neuron fires: activation at or above its 95th percentile) or a miss, and how many probe
    images carry the concept at all."""
    return concept_evidence(session, searcher, run_id, layer, unit, q)


def concept_ranking(
    outcome: ConceptSearchResult | DissectError,
    run_id: Id,
    layer: str,
    session: SessionDep,
    user: CurrentUserDep,
    q: str = "",
) -> dict[str, object]:
    """Return the context of a layer ranked by a concept: the ranking, or what kept it from being ranked, and
    whether the user may keep the concept for the run (only then is its button shown)."""
    result = outcome if isinstance(outcome, ConceptSearchResult) else None
    layer_summary = layer_queries.layer_summary(session, run_id, layer)
    may_change = can_change(user, run_queries.get_run(session, run_id).owner)
    return {
        "run_id": run_id,
        "layer": layer_summary,
        "concept": q,
        "result": result,
        "error": _problem(outcome, q),
        "may_change": may_change,
    }


def ranked_layer_page(run_id: Id, layer: str, session: SessionDep, cache: ReadCacheDep) -> dict[str, object]:
    """Return the layer page around the ranking: the grid's first page, in its default order."""
    return layer_page_context(session, cache, run_id, layer, sort=GRID_SORT, q="", page=1)


@resource(
    router,
    "/runs/{run_id}/layers/{layer}/concepts",
    html=Page(
        "layer.html",
        context=concept_ranking,
        fragment="partials/concept_results.html",
        page_context=ranked_layer_page,
        shown_errors=(DissectError,),
    ),
    responses=examples.CONCEPT_RANKING,
)
def concept_search(
    request: Request,
    run_id: Id,
    layer: str,
    q: Concept,
    session: SessionDep,
    searcher: SearcherDep,
    offset: Offset = 0,
    limit: Limit = 24,
) -> ConceptSearchResult:
    """The layer's neurons ranked by the soft-WPMI score a typed concept would get, best first, a page at a time
    (`next` links the following page; every unit of the layer is ranked)."""
    return linked(search_layer(session, searcher, run_id, layer, q, offset=offset, limit=limit), request)
