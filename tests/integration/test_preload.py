"""Concept search preloaded: opening a run's pages (and starting the server) loads the run's text encoder and
artifacts in the background, so the first typed concept does not wait for them; nothing it meets reaches a page."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.read.concepts.preload import RunPreloader
from app.read.concepts.search import ConceptSearcher, RunScoring, run_scoring
from app.read.runs.queries import get_run
from app.web.main import create_app
from dissect_core.errors import DissectError
from tests.support.dashboard_seed import Dashboard, FakeEncoder, tiny_catalog

LAYER = "blocks.3"


class CountingLoader:
    """An encoder loader handing out one FakeEncoder, counting its loads; `fail` makes it raise instead."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.encoder = FakeEncoder()
        self.loads = 0
        self.fail = fail

    def __call__(self, _spec: str, _device: str) -> FakeEncoder:
        self.loads += 1
        if self.fail is not None:
            raise self.fail
        return self.encoder


def preloading_app(dashboard: Dashboard, loader: CountingLoader, preload_runs: int = 2) -> FastAPI:
    """Return an app on the seeded data with preloading on (the seed turns it off for every other test)."""
    settings = replace(dashboard.settings, preload_runs=preload_runs)
    return create_app(settings, encoder_loader=loader, catalog=tiny_catalog())


def scoring(dashboard: Dashboard, run_id: int) -> RunScoring:
    with Session(dashboard.engine) as session:
        return run_scoring(get_run(session, run_id))


def parts(app: FastAPI) -> tuple[ConceptSearcher, RunPreloader]:
    return app.state.concept_searcher, app.state.preloader


@pytest.mark.parametrize(
    "page, layer",
    [("/runs/{run}", None), ("/runs/{run}/layers/conv1", "conv1"), ("/runs/{run}/layers/fc/neurons/3", "fc")],
)
def test_opening_a_runs_page_loads_its_encoder_and_artifacts_without_a_typed_concept(
    dashboard: Dashboard, page: str, layer: str | None
) -> None:
    loader = CountingLoader()
    app = preloading_app(dashboard, loader, preload_runs=1)  # at start, the newer run only
    searcher, preloader = parts(app)
    older = scoring(dashboard, dashboard.older.run_id)
    with TestClient(app, headers=dashboard.admin_headers) as client:
        assert preloader.wait_idle() and not searcher.is_warm(older)
        assert client.get(page.format(run=dashboard.older.run_id)).status_code == 200
        assert preloader.wait_idle()
        assert searcher.is_warm(older, layer) and loader.loads == 1 and loader.encoder.calls == []
        url = f"/api/v1/runs/{dashboard.older.run_id}/layers/{layer or 'conv1'}/concepts"
        assert client.get(url, params={"q": "striped"}).status_code == 200 and loader.loads == 1


@pytest.mark.parametrize("preload_runs, warm_runs", [(1, ("newer",)), (2, ("newer", "older"))])
def test_the_newest_runs_are_preloaded_at_start(
    dashboard: Dashboard, preload_runs: int, warm_runs: tuple[str, ...]
) -> None:
    app = preloading_app(dashboard, CountingLoader(), preload_runs)
    searcher, preloader = parts(app)
    with TestClient(app):
        assert preloader.wait_idle()
        for name in ("newer", "older"):
            seeded = getattr(dashboard, name)
            assert searcher.is_warm(scoring(dashboard, seeded.run_id)) == (name in warm_runs)


def test_preloading_off_loads_nothing(dashboard: Dashboard) -> None:
    loader = CountingLoader()
    app = preloading_app(dashboard, loader, preload_runs=0)
    with TestClient(app, headers=dashboard.admin_headers) as client:
        assert client.get(f"/runs/{dashboard.newer.run_id}").status_code == 200
        assert app.state.preloader.wait_idle()
    assert loader.loads == 0 and not app.state.concept_searcher.is_warm(scoring(dashboard, dashboard.newer.run_id))


@pytest.mark.parametrize("failure", [DissectError("no such weights"), RuntimeError("out of memory")])
def test_a_failed_preload_never_reaches_a_page(dashboard: Dashboard, failure: Exception) -> None:
    loader = CountingLoader(fail=failure)
    app = preloading_app(dashboard, loader)
    searcher, preloader = parts(app)
    with TestClient(app, headers=dashboard.admin_headers) as client:
        for path in (f"/runs/{dashboard.newer.run_id}", f"/runs/{dashboard.older.run_id}/layers/conv1"):
            assert client.get(path).status_code == 200
        assert preloader.wait_idle()
        assert loader.loads >= 2  # the thread went on after the first failure
        assert not searcher.is_warm(scoring(dashboard, dashboard.newer.run_id))


def test_a_deleted_run_or_unknown_layer_is_skipped(dashboard: Dashboard) -> None:
    loader = CountingLoader()
    preloader: RunPreloader = preloading_app(dashboard, loader).state.preloader
    preloader.request(10**6)
    preloader.request(dashboard.newer.run_id, "../../etc/passwd")
    assert preloader.wait_idle() and loader.loads == 0
    preloader.close()


def test_a_run_waiting_to_load_is_queued_once_and_a_closed_preloader_takes_nothing(dashboard: Dashboard) -> None:
    loader = CountingLoader()
    preloader: RunPreloader = preloading_app(dashboard, loader).state.preloader
    running, release = threading.Event(), threading.Event()

    def hold_the_thread() -> None:
        running.set()
        release.wait(10)

    preloader._queue_task(hold_the_thread)
    assert running.wait(10)
    for _ in range(5):
        preloader.request(dashboard.newer.run_id)
    assert preloader._queue.qsize() == 1
    release.set()
    assert preloader.wait_idle() and loader.loads == 1
    preloader.close()
    preloader.request(dashboard.older.run_id)
    assert not preloader._pending
