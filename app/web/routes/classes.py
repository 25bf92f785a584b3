"""Classes: a run's classifier classes (searchable), one class's driving units and predicted images, and a neuron's
inputs and outputs (the neuron page's panel)."""

from __future__ import annotations

from fastapi import APIRouter

from app.read.neurons.connections import neuron_connections
from app.read.schemas.classes import ClassDetail, ClassList
from app.read.schemas.connections import NeuronConnections
from app.web.deps import ArtifactsReaderDep, ClassViewsDep, ReadCacheDep, SessionDep
from app.web.errors import API_ERRORS
from app.web.resources import Page, resource
from app.web.views.paging import Id

router = APIRouter(tags=["classes"], responses=API_ERRORS)


def classes_page(result: ClassList, session: SessionDep, cache: ReadCacheDep) -> dict[str, object]:
    """Return classes.html's context: the run and its (matching) classes."""
    return {"title": f"classes · run {result.run_id}", "run": cache.run(session, result.run_id), "result": result}


@resource(router, "/runs/{run_id}/classes", html=Page("classes.html", context=classes_page), immutable=True)
def classes(run_id: Id, session: SessionDep, cache: ReadCacheDep, views: ClassViewsDep, q: str = "") -> ClassList:
    """A run's classifier classes whose name contains q: each with how many probe images the model predicts as it
    and its top unit. A run without classifier outputs is a 404 saying why and how to get them."""
    return views.class_list(session, cache, run_id, q)


def class_page(result: ClassDetail, session: SessionDep, cache: ReadCacheDep) -> dict[str, object]:
    """Return class.html's context: the run and the class."""
    return {
        "title": f"{result.class_name} · run {result.run_id}",
        "run": cache.run(session, result.run_id),
        "result": result,
    }


@resource(
    router,
    "/runs/{run_id}/classes/{class_index}",
    html=Page("class.html", context=class_page, immutable=True),
    immutable=True,
)
def class_detail(
    run_id: Id, class_index: Id, session: SessionDep, cache: ReadCacheDep, views: ClassViewsDep
) -> ClassDetail:
    """One class: the units of the layer feeding the classifier by contribution (W[c, j] × the mean of feature j
    over the probe images predicted as c), each with its share of the positive contributions, and those images."""
    return views.class_detail(session, cache, run_id, class_index)


def connections_fragment(result: NeuronConnections) -> dict[str, object]:
    """Return what partials/neuron_connections.html needs."""
    return {"connections": result}


def connections_page(run_id: Id, layer: str, unit: Id, session: SessionDep, cache: ReadCacheDep) -> dict[str, object]:
    """Return the rest of the neuron page around the panel (the link a browser without JavaScript follows)."""
    from app.web.routes.neurons import neuron_page_context  # that module's page links to this route

    run = cache.run(session, run_id)
    return neuron_page_context(run, cache.layer_index(session, run_id, layer).detail(run, unit))


@resource(
    router,
    "/runs/{run_id}/layers/{layer}/neurons/{unit}/connections",
    html=Page(
        "neuron.html",
        context=connections_fragment,
        fragment="partials/neuron_connections.html",
        page_context=connections_page,
        immutable=True,
    ),
    immutable=True,
    tags=["neurons"],
)
def connections(
    run_id: Id, layer: str, unit: Id, session: SessionDep, cache: ReadCacheDep, reader: ArtifactsReaderDep
) -> NeuronConnections:
    """A neuron's strongest inputs and outputs (each connected layer pair's top 20 by |weight|, both signs), by
    |weight|: `weight` read from the module joining the layers, or `attribution` averaged over sampled probe images;
    class units carry their class. A run stored without connections answers empty lists."""
    return neuron_connections(session, cache, reader, run_id, layer, unit)
