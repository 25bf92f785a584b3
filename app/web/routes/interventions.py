"""Interventions (#23): ask for one on a run's units (editors), its result and permalink, a neuron's "Test this
neuron" panel, and the run-wide sweep of a layer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query
from fastapi.responses import RedirectResponse

from app.auth.permissions import can_edit, require_owner
from app.core.urls import API_PREFIX, intervention_url, job_url, neuron_interventions_url
from app.jobs.interventions import submit_intervention, submit_sweep
from app.persistence.db import write_session
from app.read.interventions import queries as intervention_queries
from app.read.interventions import sweeps as sweep_queries
from app.read.interventions.sweeps import SWEEP_SORTS
from app.read.runs import queries as run_queries
from app.read.schemas.common import ListPage
from app.read.schemas.interventions import (
    InterventionCreated,
    InterventionRequest,
    InterventionView,
    LayerSweep,
    LayerSweepSummary,
    NeuronInterventions,
    SweepCreated,
    SweepRequest,
)
from app.web.deps import CurrentUserDep, EditorDep, EngineDep, SessionDep, SettingsDep
from app.web.errors import API_ERRORS, WRITE_ERRORS, ErrorBody
from app.web.resources import Page, resource
from app.web.views.htmx import JOB_FINISHED
from app.web.views.paging import Id, whole
from dissect_core.interventions.modes import INTERVENTION_MODES, MAX_SCALE_FACTOR

router = APIRouter(tags=["interventions"], responses=API_ERRORS)
#: What asking for an intervention or a sweep (a JSON body) can answer besides success.
ASK_RESPONSES: dict[int | str, dict[str, object]] = {
    **WRITE_ERRORS,
    400: {"model": ErrorBody, "description": "the body is not JSON"},
}
SweepSort = Annotated[
    str, Query(pattern=f"^({'|'.join(SWEEP_SORTS)})$", description=f"one of {', '.join(SWEEP_SORTS)}")
]
MaxP = Annotated[float | None, Query(ge=0, le=1, description="only units whose agreement p is at most this")]
#: The factor the neuron page's "amplify" button offers first.
DEFAULT_AMPLIFY_FACTOR = 3.0


@router.post(API_PREFIX + "/runs/{run_id}/interventions", status_code=202, responses=ASK_RESPONSES)
def ask_intervention(
    run_id: Id, request: InterventionRequest, engine: EngineDep, settings: SettingsDep, user: EditorDep
) -> InterventionCreated:
    """Queue an intervention on units of one of the run's layers (any editor; within their queue limit); an
    identical request (run, layer, units, mode, factor) queued, running or done is answered with that one. 422
    names the run's layers, the layer's units and the modes; nothing is stored then."""
    with write_session(engine) as session:
        row = submit_intervention(
            session, settings, run_id, (request.layer, request.units, request.mode, request.factor), owner=user
        )
        return InterventionCreated(id=row.id, job_id=row.job_id, url=intervention_url(row.id))


#: The statuses an intervention keeps once reached (its page stops polling).
FINISHED = ("succeeded", "failed", "cancelled")
#: How many classes the result page charts at each end (most hurt, most helped).
CHARTED_CLASSES = 10


def intervention_page(intervention: InterventionView) -> dict[str, object]:
    """Return the context of intervention.html and of its result fragment (polled while queued or running)."""
    classes = intervention.classes or []
    hurt = [effect for effect in classes if effect.mean_delta_logit < 0][:CHARTED_CLASSES]
    helped = [effect for effect in reversed(classes) if effect.mean_delta_logit > 0][:CHARTED_CLASSES]
    largest = max((abs(effect.mean_delta_logit) for effect in hurt + helped), default=0.0)
    return {
        "title": f"intervention {intervention.id}",
        "intervention": intervention,
        "finished": intervention.status in FINISHED,
        "hurt": hurt,
        "helped": helped,
        "largest_delta": largest or 1.0,
    }


def finished_event(intervention: InterventionView) -> str | None:
    """Return the event sent with a finished intervention's fragment (which also stops the polling)."""
    return JOB_FINISHED if intervention.status in FINISHED else None


@resource(
    router,
    "/interventions/{intervention_id}",
    html=Page(
        "intervention.html",
        context=intervention_page,
        fragment="partials/intervention_result.html",
        fragment_event=finished_event,
    ),
)
def intervention(intervention_id: Id, session: SessionDep) -> InterventionView:
    """One intervention: what was asked, its status and, once it ran, its effect: every class's mean change of
    logit and probability (most hurt first), the share of changed predictions, top-1 accuracy before and after,
    the downstream units that moved most, and the label–effect agreement (null fields until it ran)."""
    return intervention_queries.get_intervention(session, intervention_id)


def neuron_panel(
    interventions: NeuronInterventions, run_id: Id, layer: str, unit: Id, user: CurrentUserDep
) -> dict[str, object]:
    """Return the context of the neuron page's "Test this neuron" panel: its results, the buttons for editors."""
    return {
        "title": f"interventions on {layer} unit {unit}",
        "run_id": run_id,
        "layer": layer,
        "unit": unit,
        "action": neuron_interventions_url(run_id, layer, unit),
        "interventions": interventions.items,
        "can_intervene": can_edit(user),
        "modes": INTERVENTION_MODES,
        "default_factor": DEFAULT_AMPLIFY_FACTOR,
        "max_factor": MAX_SCALE_FACTOR,
    }


@resource(
    router,
    "/runs/{run_id}/layers/{layer}/neurons/{unit}/interventions",
    html=Page("neuron_interventions.html", context=neuron_panel, fragment="partials/neuron_intervention.html"),
)
def neuron_interventions(run_id: Id, layer: str, unit: Id, session: SessionDep) -> NeuronInterventions:
    """The newest interventions on one neuron (alone or with others), newest first."""
    found = intervention_queries.unit_interventions(session, run_id, layer, unit)
    return NeuronInterventions(
        **whole(found).model_dump(exclude={"items"}), items=found, run_id=run_id, layer=layer, unit=unit
    )


@router.post("/runs/{run_id}/layers/{layer}/neurons/{unit}/interventions", include_in_schema=False)
def test_neuron(
    run_id: Id,
    layer: str,
    unit: Id,
    mode: Annotated[str, Form()],
    engine: EngineDep,
    settings: SettingsDep,
    user: EditorDep,
    factor: Annotated[float | None, Form()] = None,
) -> RedirectResponse:
    """The panel's buttons: queue an intervention on this neuron alone, then show its result page."""
    with write_session(engine) as session:
        scale_factor = factor if mode == "scale" else None  # the form sends its factor field with every button
        row = submit_intervention(session, settings, run_id, (layer, [unit], mode, scale_factor), owner=user)
        url = intervention_url(row.id)
    return RedirectResponse(url, status_code=303)


@router.post(API_PREFIX + "/runs/{run_id}/sweeps", status_code=202, responses=ASK_RESPONSES)
def ask_sweep(
    run_id: Id, request: SweepRequest, engine: EngineDep, settings: SettingsDep, user: EditorDep
) -> SweepCreated:
    """Queue a sweep of one of the run's layers: every unit (or `units`, at most 2,048) zeroed in turn over at most
    2,000 probe images, each one's label–effect agreement and cost stored (the run's owner or an admin)."""
    with write_session(engine) as session:
        require_owner(user, run_queries.get_run(session, run_id).owner, f"Run {run_id}", "sweep its layers")
        job = submit_sweep(session, settings, run_id, request.layer, request.units, owner=user)
        return SweepCreated(job_id=job.id, job_url=job_url(job.id), units=len(job.params["units"]))


def sweep_panel(
    units: LayerSweep, run_id: Id, layer: str, sort: SweepSort = "-z", max_p: MaxP = None
) -> dict[str, object]:
    """Return the context of a layer's sweep panel (on the layer page) and of its page."""
    return {
        "title": f"sweep of {layer}",
        "run_id": run_id,
        "layer": layer,
        "units": units.items,
        "sort": sort,
        "max_p": max_p,
        "sorts": [(value, title) for value, (title, _key) in SWEEP_SORTS.items()],
    }


@resource(
    router,
    "/runs/{run_id}/layers/{layer}/sweep",
    html=Page("layer_sweep.html", context=sweep_panel, fragment="partials/layer_sweep.html"),
)
def layer_sweep(
    run_id: Id,
    layer: str,
    session: SessionDep,
    sort: SweepSort = "-z",
    max_p: MaxP = None,
) -> LayerSweep:
    """The layer's swept units (the latest sweep of each): the label–effect agreement of zeroing it (cosine, z, p),
    the share of changed predictions, the label's r and the cost, sorted and filtered."""
    swept = sweep_queries.layer_sweep(session, run_id, layer, sort=sort, max_p=max_p)
    return LayerSweep(**whole(swept).model_dump(exclude={"items"}), items=swept, run_id=run_id, layer=layer)


def sweeps_panel(summaries: ListPage[LayerSweepSummary], run_id: Id) -> dict[str, object]:
    """Return the context of the run page's sweep panel (each swept layer's agreement beside r)."""
    return {"title": f"sweeps of run {run_id}", "run_id": run_id, "summaries": summaries.items}


@resource(
    router,
    "/runs/{run_id}/sweeps",
    html=Page("run_sweeps.html", context=sweeps_panel, fragment="partials/run_sweeps.html"),
)
def run_sweeps(run_id: Id, session: SessionDep) -> ListPage[LayerSweepSummary]:
    """Each swept layer of the run: how many units agree (p <= 0.05), the histogram and median of the agreement
    z-scores, their Spearman correlation with the labels' r, and the cost per unit."""
    return whole(sweep_queries.sweep_summaries(session, run_id))
