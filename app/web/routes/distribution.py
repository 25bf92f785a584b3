"""A neuron's distribution evidence: its activation histogram, quantile bands and most correlated units (JSON), and
what the neuron page's distribution panels need."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.orm import Session

from app.read.neurons.distributions import NeuronDistributions
from app.read.schemas.distributions import NeuronDistribution
from app.read.schemas.neurons import NeuronDetail
from app.read.schemas.runs import RunDetail
from app.web.deps import DistributionsDep, ReadCacheDep, SessionDep
from app.web.errors import API_ERRORS
from app.web.resources import Page, resource
from app.web.views.charts import activation_histogram_svg
from app.web.views.paging import Id

router = APIRouter(tags=["neurons"], responses=API_ERRORS)


def distribution_fragment(evidence: NeuronDistribution) -> dict[str, object]:
    """Return what partials/neuron_distribution.html needs from a neuron's distribution evidence."""
    if evidence.unavailable is not None:
        return {"distribution": None, "distribution_chart": None, "distribution_error": evidence.unavailable}
    return {
        "distribution": evidence,
        "distribution_chart": activation_histogram_svg(evidence),
        "distribution_error": None,
    }


def distribution_page(run_id: Id, layer: str, unit: Id, session: SessionDep, cache: ReadCacheDep) -> dict[str, object]:
    """Return the rest of the neuron page around the panels (the link a browser without JavaScript follows)."""
    from app.web.routes.neurons import neuron_page_context  # that module's page links to this route

    run = cache.run(session, run_id)
    return neuron_page_context(run, cache.layer_index(session, run_id, layer).detail(run, unit))


# The neuron page loads these panels after it shows (htmx), so its own answer stays within the dashboard's latency
# target at 50,000 probe images.
@resource(
    router,
    "/runs/{run_id}/layers/{layer}/neurons/{unit}/distribution",
    html=Page(
        "neuron.html",
        context=distribution_fragment,
        fragment="partials/neuron_distribution.html",
        page_context=distribution_page,
        immutable=True,
    ),
    immutable=True,
)
def neuron_distribution(
    run_id: Id, layer: str, unit: Id, session: SessionDep, cache: ReadCacheDep, distributions: DistributionsDep
) -> NeuronDistribution:
    """One neuron's activation over every stored probe image: histogram bins, examples from the top 1%, 1–5%, 5–20%
    and 20–50% and a random sample, and the 10 most correlated units in its layer and in the run's other layers.
    A run stored before activations were kept says why in `unavailable`."""
    run = cache.run(session, run_id)
    detail = cache.layer_index(session, run_id, layer).detail(run, unit)
    return distributions.evidence(session, run, detail)


def distribution_context(
    session: Session, run: RunDetail, neuron: NeuronDetail, distributions: NeuronDistributions
) -> dict[str, object]:
    """Return what partials/neuron_distribution.html needs: the evidence and its chart, or why there is none."""
    return distribution_fragment(distributions.evidence(session, run, neuron))
