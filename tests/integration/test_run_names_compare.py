"""Runs: names and notes their owner edits, lineage (a relabel points to its parent), comparing two runs
of one architecture, and a relabel that would change nothing refused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.jobs.dissections import StoredDissection
from app.jobs.queue.worker import run_worker
from app.persistence.db import write_session
from app.persistence.models import Job, Layer, Neuron, Run, User
from tests.support.dashboard_seed import Dashboard, LayerSpec, add_account, build_dashboard, seed_run

PASSWORD = "correct horse battery"
#: The newer run's labels that differ from the older run's: conv1's every fourth unit, fc's first three.
CHANGED = {"conv1": {unit for unit in range(64) if unit % 4 == 0}, "fc": {0, 1, 2}}


@dataclass
class Runs:
    """The seeded dashboard, its accounts' tokens, and a run of another architecture."""

    dashboard: Dashboard
    tokens: dict[str, str]
    other_architecture: int

    @property
    def older(self) -> int:
        """The older tinynet run (conv1, fc), owned by owen."""
        return self.dashboard.older.run_id

    @property
    def newer(self) -> int:
        """The newer tinynet run (conv1, blocks.3, fc), owned by owen; some labels differ from the older run's."""
        return self.dashboard.newer.run_id

    def client(self, name: str | None = None, **options: Any) -> TestClient:
        """Return a client on a new app, with `name`'s bearer token (or none)."""
        headers = {"Authorization": f"Bearer {self.tokens[name]}"} if name else {}
        return TestClient(self.dashboard.app(), headers=headers, **options)

    def run_row(self, run_id: int) -> Run:
        """Return the stored run."""
        with Session(self.dashboard.engine) as session:
            run = session.get(Run, run_id)
            assert run is not None
            session.expunge(run)
            return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    """Two tinynet runs owned by the editor owen (the newer relabelled as CHANGED), and a run of `othernet`."""
    dashboard = build_dashboard(tmp_path_factory.mktemp("runs") / "data")
    tokens = {"admin": dashboard.admin_token}
    for name, role in (("owen", "editor"), ("ed", "editor")):
        tokens[name] = add_account(dashboard.engine, name, role, PASSWORD)
    other = seed_run(
        dashboard.engine, dashboard.settings, model_name="othernet", layers=(LayerSpec("fc", "linear", 10),)
    )
    with write_session(dashboard.engine) as session:
        owen = session.scalars(select(User).where(User.name == "owen")).one()
        session.execute(
            update(Run).where(Run.id.in_([dashboard.older.run_id, dashboard.newer.run_id])).values(owner_id=owen.id)
        )
        for layer_name, units in CHANGED.items():
            layer_id = session.scalars(
                select(Layer.id).where(Layer.run_id == dashboard.newer.run_id, Layer.name == layer_name)
            ).one()
            session.execute(
                update(Neuron).where(Neuron.layer_id == layer_id, Neuron.unit.in_(units)).values(label="zebra")
            )
    yield Runs(dashboard, tokens, other.run_id)
    dashboard.engine.dispose()


def csrf_from(html: str) -> str:
    """Return the CSRF token of a page's form."""
    found = re.search(r'name="csrftoken" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def logged_in(runs: Runs, name: str) -> TestClient:
    """Return a browser-like client logged in as `name` through the login form."""
    client = runs.client(follow_redirects=False)
    token = csrf_from(client.get("/login").text)
    answer = client.post("/login", data={"csrftoken": token, "name": name, "password": PASSWORD, "next": "/"})
    assert answer.status_code == 303, answer.text
    return client


# --- names and notes ------------------------------------------------------------------------------------------


def test_the_owner_names_a_run_and_keeps_notes_from_its_page_and_the_api(runs: Runs) -> None:
    browser = logged_in(runs, "owen")
    page = browser.get(f"/runs/{runs.older}")
    assert page.status_code == 200 and 'id="run-details-form"' in page.text
    saved = browser.post(
        f"/runs/{runs.older}/details",
        data={"csrftoken": csrf_from(page.text), "name": "  Baseline  ", "notes": "first try\nwith avg pooling"},
    )
    assert saved.status_code == 303 and saved.headers["location"] == f"/runs/{runs.older}"
    shown = browser.get(f"/runs/{runs.older}").text
    assert "Baseline" in shown and "first try\nwith avg pooling" in shown
    assert runs.run_row(runs.older).name == "Baseline"  # stripped

    api = runs.client("owen")
    patched = api.patch(f"/api/v1/runs/{runs.older}", json={"notes": "changed by script"})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["name"] == "Baseline" and body["title"] == "Baseline" and body["notes"] == "changed by script"
    listed = {run["id"]: run for run in api.get("/api/v1/runs").json()["items"]}
    assert listed[runs.older]["title"] == "Baseline" and listed[runs.newer]["title"] == f"run #{runs.newer} · tinynet"

    cleared = api.patch(f"/api/v1/runs/{runs.older}", json={"name": ""}).json()
    assert cleared["name"] is None and cleared["title"] == f"run #{runs.older} · tinynet"
    assert cleared["notes"] == "changed by script"  # left out: kept


def test_another_user_may_not_rename_a_run(runs: Runs) -> None:
    before = runs.run_row(runs.newer).name
    api = runs.client("ed").patch(f"/api/v1/runs/{runs.newer}", json={"name": "mine now"})
    assert api.status_code == 403 and "belongs to owen" in api.json()["detail"]
    browser = logged_in(runs, "ed")
    page = browser.get(f"/runs/{runs.newer}").text
    assert 'id="run-details-form"' not in page  # not rendered for someone who may not use it (#26)
    token = csrf_from(browser.get("/logout").text)  # a forged post still meets the owner check
    form = browser.post(f"/runs/{runs.newer}/details", data={"csrftoken": token, "name": "mine now", "notes": ""})
    assert form.status_code == 403 and "belongs to owen" in form.text
    assert runs.run_row(runs.newer).name == before


def test_a_details_form_without_its_csrf_token_is_refused(runs: Runs) -> None:
    browser = logged_in(runs, "owen")
    before = runs.run_row(runs.newer).name
    missing = browser.post(f"/runs/{runs.newer}/details", data={"name": "forged", "notes": ""})
    assert missing.status_code == 403 and "security token is missing or out of date" in missing.text
    wrong = browser.post(f"/runs/{runs.newer}/details", data={"csrftoken": "x" * 40, "name": "forged", "notes": ""})
    assert wrong.status_code == 403
    assert runs.run_row(runs.newer).name == before


def test_a_too_long_name_is_refused_with_its_limit_and_the_form_keeps_what_was_typed(runs: Runs) -> None:
    browser = logged_in(runs, "owen")
    token = csrf_from(browser.get(f"/runs/{runs.newer}").text)
    long_name = "n" * 201
    form = browser.post(f"/runs/{runs.newer}/details", data={"csrftoken": token, "name": long_name, "notes": "kept"})
    assert form.status_code == 422
    assert "Name too long: 201 characters, where a run&#39;s name may have at most 200; shorten it." in form.text
    assert f'value="{long_name}"' in form.text and ">kept</textarea>" in form.text
    long_notes = browser.post(
        f"/runs/{runs.newer}/details", data={"csrftoken": token, "name": "ok", "notes": "x" * 5001}
    )
    assert long_notes.status_code == 422 and "Notes too long: 5,001 characters" in long_notes.text
    api = runs.client("owen").patch(f"/api/v1/runs/{runs.newer}", json={"name": long_name})
    assert api.status_code == 422 and "at most 200 characters" in api.text
    assert runs.run_row(runs.newer).name is None  # nothing stored


# --- comparing two runs ---------------------------------------------------------------------------------------


def expected_rows(runs: Runs, layer: str) -> list[dict[str, Any]]:
    """Return the older and newer run's units of a layer side by side, read from the database."""
    with Session(runs.dashboard.engine) as session:

        def neurons(run_id: int) -> dict[int, tuple[str, float]]:
            rows = session.execute(
                select(Neuron.unit, Neuron.label, Neuron.score)
                .join(Layer, Neuron.layer_id == Layer.id)
                .where(Layer.run_id == run_id, Layer.name == layer)
            ).all()
            return {unit: (label, score) for unit, label, score in rows}

        mine, theirs = neurons(runs.older), neurons(runs.newer)
    return [
        {"unit": unit, "changed": mine[unit][0] != theirs[unit][0], "delta": theirs[unit][1] - mine[unit][1]}
        for unit in sorted(mine)
    ]


def test_compare_gives_each_shared_layers_changed_share_and_its_neurons(runs: Runs) -> None:
    client = runs.client("admin")
    answer = client.get(f"/api/v1/runs/{runs.older}/compare", params={"other": runs.newer, "layer": "fc"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["architecture"] == "tinynet" and body["other"]["id"] == runs.newer
    shares = {layer["name"]: (layer["n_units"], layer["n_changed"], layer["share_changed"]) for layer in body["layers"]}
    assert shares == {"conv1": (64, 16, 0.25), "fc": (10, 3, 0.3)}  # blocks.3 is only in the newer run
    assert body["layer"] == "fc" and body["sort"] == "changed" and body["total"] == 10
    listed = body["items"]
    assert [neuron["unit"] for neuron in listed[:3]] == sorted(
        CHANGED["fc"], key=lambda unit: -abs(expected_rows(runs, "fc")[unit]["delta"])
    )
    assert all(neuron["changed"] for neuron in listed[:3]) and not any(neuron["changed"] for neuron in listed[3:])
    first = listed[0]
    assert first["other_label"] == "zebra" and first["label"] != "zebra"
    assert first["delta"] == pytest.approx(first["other_score"] - first["score"])
    assert first["url"] == f"/runs/{runs.older}/layers/fc/neurons/{first['unit']}"
    assert first["other_url"] == f"/runs/{runs.newer}/layers/fc/neurons/{first['unit']}"


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("unit", lambda row: row["unit"]),
        ("-delta", lambda row: (-row["delta"], row["unit"])),
        ("delta", lambda row: (row["delta"], row["unit"])),
        ("-abs_delta", lambda row: (-abs(row["delta"]), row["unit"])),
        ("changed", lambda row: (not row["changed"], -abs(row["delta"]), row["unit"])),
    ],
)
def test_compare_sorts_and_pages_the_neurons(runs: Runs, sort: str, key: Any) -> None:
    expected = [row["unit"] for row in sorted(expected_rows(runs, "conv1"), key=key)]
    client = runs.client("admin")
    url = f"/api/v1/runs/{runs.older}/compare"
    pages = [
        client.get(url, params={"other": runs.newer, "sort": sort, "offset": offset, "limit": 25}).json()
        for offset in (0, 25, 50)
    ]
    assert pages[0]["layer"] == "conv1" and pages[0]["total"] == 64  # the first shared layer by default
    assert [neuron["unit"] for page in pages for neuron in page["items"]] == expected


def test_the_compare_page_shows_both_runs_and_links_each_neuron_to_both(runs: Runs) -> None:
    page = runs.client("admin").get(f"/runs/{runs.older}/compare", params={"other": runs.newer, "sort": "-abs_delta"})
    assert page.status_code == 200
    assert 'id="compare-layers"' in page.text and "25%" in page.text and "30%" in page.text
    assert f'href="/runs/{runs.older}/layers/conv1/neurons/0"' in page.text
    assert f'href="/runs/{runs.newer}/layers/conv1/neurons/0"' in page.text
    assert 'aria-sort="descending"' in page.text
    assert "Next →" not in page.text  # 64 units, 100 a page
    paged = runs.client("admin").get(f"/runs/{runs.older}/compare", params={"other": runs.newer, "limit": 25}).text
    assert "Next →" in paged and "offset=25&amp;limit=25" in paged and "1–25 of 64" in paged
    run_page = runs.client("admin").get(f"/runs/{runs.older}").text
    assert f'<option value="{runs.newer}"' in run_page and f'<option value="{runs.other_architecture}"' not in run_page


def test_runs_of_different_architectures_are_not_compared(runs: Runs) -> None:
    client = runs.client("admin")
    api = client.get(f"/api/v1/runs/{runs.older}/compare", params={"other": runs.other_architecture})
    assert api.status_code == 409
    detail = api.json()["detail"]
    assert f"Run #{runs.older} dissected tinynet and run #{runs.other_architecture} dissected othernet" in detail
    page = client.get(f"/runs/{runs.older}/compare", params={"other": runs.other_architecture})
    assert page.status_code == 409 and "dissected othernet" in page.text
    missing = client.get(f"/api/v1/runs/{runs.older}/compare", params={"other": runs.newer, "layer": "blocks.3"})
    assert missing.status_code == 404 and "they share: conv1, fc" in missing.json()["detail"]
    gone = client.get(f"/api/v1/runs/{runs.older}/compare", params={"other": 9999})
    assert gone.status_code == 404


# --- relabels: lineage, and one that changes nothing ----------------------------------------------------------


def job_count(runs: Runs) -> int:
    """Return how many jobs there are."""
    with Session(runs.dashboard.engine) as session:
        return session.scalar(select(func.count()).select_from(Job)) or 0


def test_a_relabel_that_would_reproduce_its_run_is_refused_and_nothing_is_queued(runs: Runs) -> None:
    client = runs.client("owen")
    base = f"/api/v1/runs/{runs.newer}"
    assert client.post(f"{base}/typed-concepts", data={"text": "striped"}).status_code == 201  # in its vocabulary
    concepts = runs.dashboard.settings.data_dir / "concepts"
    files_before = sorted(concepts.iterdir()) if concepts.exists() else []
    jobs_before = job_count(runs)
    refused = client.post(f"{base}/relabel")
    assert refused.status_code == 422
    assert refused.json()["detail"].startswith(
        f"This relabel would reproduce run #{runs.newer}: change the concept set, similarity or pooling"
    )
    page = client.post(f"/runs/{runs.newer}/relabel", follow_redirects=False)
    assert page.status_code == 422 and "would reproduce run" in page.text
    assert job_count(runs) == jobs_before
    assert (sorted(concepts.iterdir()) if concepts.exists() else []) == files_before


def child_executor(settings: Any, config: Any, progress: Any, should_stop: Any, **kwargs: Any) -> StoredDissection:
    """Stand in for the pipeline: store a small tinynet run, completing the job in the same commit."""
    seeded = seed_run(kwargs["engine"], settings, layers=(LayerSpec("fc", "linear", 10),))
    with write_session(kwargs["engine"]) as session:
        kwargs["before_commit"](session, seeded.run_id)
    return StoredDissection(run_id=seeded.run_id, result=None)  # type: ignore[arg-type]


def test_a_relabel_records_its_parent_and_both_pages_show_the_lineage(runs: Runs) -> None:
    client = runs.client("owen")
    base = f"/api/v1/runs/{runs.older}"
    assert client.post(f"{base}/typed-concepts", data={"text": "okapi"}).status_code == 201
    created = client.post(f"{base}/relabel")
    assert created.status_code == 201, created.text
    with Session(runs.dashboard.engine) as session:
        job = session.get(Job, created.json()["job_id"])
        assert job is not None and job.parent_run_id == runs.older
    assert run_worker(runs.dashboard.settings, once=True, executor=child_executor, handle_signals=False) == 1
    with Session(runs.dashboard.engine) as session:
        job = session.get(Job, created.json()["job_id"])
        assert job is not None and job.run_id is not None
        child = job.run_id
    assert runs.run_row(child).parent_run_id == runs.older
    detail = client.get(f"/api/v1/runs/{child}").json()
    assert detail["parent"]["id"] == runs.older and detail["parent"]["url"] == f"/runs/{runs.older}"
    assert [link["id"] for link in client.get(base).json()["children"]] == [child]
    child_page = client.get(f"/runs/{child}").text
    assert "relabel of" in child_page and f'href="/runs/{child}/compare?other={runs.older}"' in child_page
    assert re.search(rf'<option value="{runs.older}" selected>[^<]*\(parent\)', child_page)
    assert "relabelled as" in client.get(f"/runs/{runs.older}").text
