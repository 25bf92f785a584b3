"""Deleting a run through its confirmation page, and which run controls each visitor is shown."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.auth.users import get_user
from app.persistence.db import write_session
from app.persistence.models import Job, Run, TypedConcept
from tests.support.dashboard_seed import Dashboard, LayerSpec, add_account, build_dashboard, seed_run

PASSWORD = "correct horse battery"
CONTROLS = ('id="run-details-form"', 'id="delete-run"', "/delete", "and relabel")


@dataclass
class Lab:
    """The seeded dashboard, an owner (erin), another editor (ed), a viewer (vic) and erin's run with a typed
    concept, a job that made it and a relabel of it."""

    dashboard: Dashboard
    tokens: dict[str, str]
    run_id: int
    relabel_id: int

    def client(self, name: str | None = None, **options: Any) -> TestClient:
        """Return a client on a new app: anonymous, or with `name`'s bearer token."""
        headers = {"Authorization": f"Bearer {self.tokens[name]}"} if name else {}
        return TestClient(self.dashboard.app(), headers=headers, **options)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A seeded dashboard with erin's run and what hangs on it (the last test deletes the run)."""
    dashboard = build_dashboard(tmp_path_factory.mktemp("deletes") / "data")
    tokens = {"admin": dashboard.admin_token}
    tokens |= {
        name: add_account(dashboard.engine, name, role, PASSWORD)
        for name, role in (("erin", "editor"), ("ed", "editor"), ("vic", "viewer"))
    }
    layers = (LayerSpec("conv1", "conv", 3), LayerSpec("fc", "linear", 4))
    run_id = seed_run(dashboard.engine, dashboard.settings, model_name="erins-net", layers=layers).run_id
    relabel_id = seed_run(dashboard.engine, dashboard.settings, model_name="erins-net", layers=layers[1:]).run_id
    with write_session(dashboard.engine) as session:
        erin = get_user(session, "erin")
        session.get(Run, run_id).owner_id = erin.id  # type: ignore[union-attr]
        session.get(Run, relabel_id).parent_run_id = run_id  # type: ignore[union-attr]
        session.add(TypedConcept(run_id=run_id, text="zebra", owner_id=erin.id))
        session.add(Job(params={"model": "erins-net"}, run_id=run_id, owner_id=erin.id, status="succeeded"))
    yield Lab(dashboard, tokens, run_id, relabel_id)
    dashboard.engine.dispose()


def log_in(client: TestClient, name: str) -> TestClient:
    """Log the client in through the login form; return it."""
    token = re.search(r'name="csrftoken" value="([^"]+)"', client.get("/login").text)
    assert token
    fields = {"csrftoken": token.group(1), "name": name, "password": PASSWORD, "next": "/"}
    assert client.post("/login", data=fields, follow_redirects=False).status_code == 303
    return client


def test_anonymous_visitors_and_viewers_see_no_run_controls(lab: Lab) -> None:
    for client in (lab.client(), lab.client("vic")):
        page = client.get(f"/runs/{lab.run_id}")
        assert page.status_code == 200 and "erins-net" in page.text
        for control in CONTROLS:
            assert control not in page.text, control
        assert "Upload a checkpoint</a>" not in client.get("/").text.split("No runs yet")[0]


def test_an_editor_who_is_not_the_owner_sees_no_controls_of_the_run_but_may_upload(lab: Lab) -> None:
    client = lab.client("ed")
    page = client.get(f"/runs/{lab.run_id}").text
    for control in CONTROLS:
        assert control not in page, control
    assert "Upload a checkpoint</a>" in client.get("/").text
    assert client.get(f"/runs/{lab.run_id}/delete").status_code == 403


def test_the_owner_and_an_admin_see_the_controls(lab: Lab) -> None:
    for name in ("erin", "admin"):
        page = lab.client(name).get(f"/runs/{lab.run_id}").text
        for control in CONTROLS:
            assert control in page, (name, control)


def test_the_kept_concepts_panel_shows_the_relabel_button_to_the_owner_only(lab: Lab) -> None:
    url = f"/runs/{lab.run_id}/typed-concepts"
    assert "and relabel" in lab.client("erin").get(url).text
    assert "and relabel" not in lab.client("ed").get(url).text
    assert "zebra" in lab.client().get(url).text


def test_others_are_kept_from_the_confirmation_page_and_the_api_delete(lab: Lab) -> None:
    anonymous = lab.client(follow_redirects=False).get(f"/runs/{lab.run_id}/delete")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    refused = lab.client("ed").delete(f"/api/v1/runs/{lab.run_id}")
    assert refused.status_code == 403 and "belongs to erin" in refused.json()["detail"]


def test_the_confirmation_page_lists_what_goes_and_the_message_says_what_went(lab: Lab) -> None:
    client = log_in(lab.client(follow_redirects=False), "erin")
    page = client.get(f"/runs/{lab.run_id}/delete")
    assert page.status_code == 200
    text = re.sub(r"<[^>]+>", "", page.text)
    assert f"Delete run #{lab.run_id} · erins-net?" in text
    assert "2 layers: conv1, fc" in text and "7 neurons" in text and "1 typed concept: zebra" in text
    assert "1 job that made or relabelled it" in text and f"1 relabel of it: run #{lab.relabel_id}" in text
    assert client.get(f"/runs/{lab.run_id}").status_code == 200  # nothing went yet
    token = re.search(r'name="csrftoken" value="([^"]+)"', page.text)
    assert token
    deleted = client.post(f"/runs/{lab.run_id}/delete", data={"csrftoken": token.group(1)})
    assert deleted.status_code == 303 and deleted.headers["location"] == "/"
    home = client.get("/").text
    gone = "2 layers, 7 neurons and 1 typed concept. Its files stay until an operator runs neuron-atlas gc."
    assert f"Deleted run #{lab.run_id} · erins-net: {gone}" in home
    assert 'id="flash"' not in client.get("/").text  # shown once
    assert client.get(f"/runs/{lab.run_id}").status_code == 404
    with Session(lab.dashboard.engine) as session:
        relabel = session.get(Run, lab.relabel_id)
        assert relabel is not None and relabel.parent_run_id is None
