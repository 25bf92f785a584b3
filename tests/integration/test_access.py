"""Accounts and access through the real app: who may read and change what, logins, tokens, CSRF, hosts, headers.

Every hostile request is checked for its status, its message and that it left nothing behind.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.auth.tokens import create_login_link
from app.auth.users import get_user
from app.cli.accounts import first_start_link
from app.cli.main import main as cli
from app.jobs.dissections import StoredDissection
from app.jobs.queue import jobs as queue
from app.jobs.queue.worker import run_worker
from app.persistence.db import write_session
from app.persistence.models import ApiToken, Job, JobState, LoginLink, Run, TypedConcept, User
from app.web.main import create_app
from tests.integration.test_api import checkpoint_bytes, stored_checkpoints, upload
from tests.support.dashboard_seed import (
    Dashboard,
    LayerSpec,
    TinyNet,
    add_account,
    build_dashboard,
    fake_encoder_loader,
    seed_run,
    tiny_catalog,
)

HX = {"HX-Request": "true"}
PASSWORD = "correct horse battery"


@dataclass
class Lab:
    """The seeded dashboard with two editors and a viewer (tokens), and a run and a job owned by the first editor."""

    dashboard: Dashboard
    tokens: dict[str, str]
    erin_run: int
    erin_job: int

    def client(self, name: str | None = None, **options: Any) -> TestClient:
        """Return a client on a new app: anonymous (no cookies sent), or with `name`'s bearer token."""
        headers = {"Authorization": f"Bearer {self.tokens[name]}"} if name else {}
        return TestClient(self.dashboard.app(), headers=headers, **options)

    def counts(self) -> tuple[int, int, int]:
        """Return how many jobs, typed concepts and checkpoint files there are."""
        with Session(self.dashboard.engine) as session:
            jobs = session.scalar(select(func.count()).select_from(Job)) or 0
            typed = session.scalar(select(func.count()).select_from(TypedConcept)) or 0
        return jobs, typed, len(stored_checkpoints(self.dashboard))


def fake_executor(settings: Any, config: Any, progress: Any, should_stop: Any, **kwargs: Any) -> StoredDissection:
    """Stand in for the pipeline: store a small run of the job's model, completing the job in the same commit."""
    seeded = seed_run(kwargs["engine"], settings, model_name="erins-net", layers=(LayerSpec("fc", "linear", 3),))
    with write_session(kwargs["engine"]) as session:
        kwargs["before_commit"](session, seeded.run_id)
    return StoredDissection(run_id=seeded.run_id, result=None)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A seeded dashboard, its accounts, and erin's run, made by the worker from a job erin queued."""
    dashboard = build_dashboard(tmp_path_factory.mktemp("lab") / "data")
    tokens = {"admin": dashboard.admin_token}
    for name, role in (("erin", "editor"), ("ed", "editor"), ("vic", "viewer")):
        tokens[name] = add_account(dashboard.engine, name, role, PASSWORD)
    with write_session(dashboard.engine) as session:
        erin = get_user(session, "erin")
        params = {"model": "tinynet", "layers": ["fc"], "probe": str(dashboard.settings.data_dir / "probe")}
        done_id = queue.enqueue(session, params, owner_id=erin.id).id
    run_worker(dashboard.settings, once=True, executor=fake_executor, handle_signals=False)
    with write_session(dashboard.engine) as session:
        erin_run = session.get(Job, done_id).run_id
        erin_job = queue.enqueue(session, params, owner_id=get_user(session, "erin").id).id
    yield Lab(dashboard, tokens, erin_run, erin_job)
    dashboard.engine.dispose()


def csrf_from(html: str) -> str:
    """Return the CSRF token of a page's form."""
    found = re.search(r'name="csrftoken" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def post_login(client: TestClient, name: str, password: str = PASSWORD, next_path: str = "/") -> Any:
    """Submit the login form as a browser does (its page first, for the CSRF token); return the answer."""
    token = csrf_from(client.get("/login").text)
    fields = {"csrftoken": token, "name": name, "password": password, "next": next_path}
    return client.post("/login", data=fields, follow_redirects=False)


def log_in(client: TestClient, name: str, password: str = PASSWORD) -> TestClient:
    """Log the client in through the login form; return it."""
    response = post_login(client, name, password)
    assert response.status_code == 303, response.text
    return client


# --- ownership recorded ------------------------------------------------------------------------------------


def test_the_worker_gives_the_run_its_jobs_owner_and_the_pages_show_it(lab: Lab) -> None:
    with Session(lab.dashboard.engine) as session:
        run = session.get(Run, lab.erin_run)
        assert run.owner is not None and run.owner.name == "erin" and run.model.owner_id == run.owner_id
    client = lab.client()
    assert client.get(f"/api/v1/runs/{lab.erin_run}").json()["owner"] == "erin"
    assert "by erin" in client.get(f"/runs/{lab.erin_run}").text
    assert client.get(f"/api/v1/jobs/{lab.erin_job}").json()["owner"] == "erin"
    assert "by erin" in client.get(f"/jobs/{lab.erin_job}").text
    assert "stored from the command line" in client.get(f"/runs/{lab.dashboard.newer.run_id}").text


def test_an_upload_is_owned_by_its_uploader(lab: Lab) -> None:
    created = upload(lab.client("erin"), checkpoint_bytes(TinyNet().state_dict()))
    assert created.status_code == 201, created.text
    with Session(lab.dashboard.engine) as session:
        job = session.get(Job, created.json()["job_id"])
        assert job.owner is not None and job.owner.name == "erin"
        queue.cancel(lab.dashboard.engine, job.id)


# --- anonymous, viewers, other editors ----------------------------------------------------------------------


def test_anonymous_writes_get_401_and_store_nothing(lab: Lab) -> None:
    before = lab.counts()
    client = lab.client()
    run_id = lab.dashboard.newer.run_id
    requests = {
        "upload": lambda: upload(client, checkpoint_bytes(TinyNet().state_dict())),
        "relabel": lambda: client.post(f"/api/v1/runs/{run_id}/relabel"),
        "cancel": lambda: client.post(f"/api/v1/jobs/{lab.erin_job}/cancel"),
        "typed concept": lambda: client.post(f"/api/v1/runs/{run_id}/typed-concepts", data={"text": "zebra"}),
    }
    for what, send in requests.items():
        client.cookies.clear()  # a script: no cookies, so the CSRF check lets it through to the login check
        response = send()
        assert response.status_code == 401, (what, response.text)
        assert response.json()["detail"].startswith("Log in to upload checkpoints"), what
        assert response.headers["www-authenticate"] == "Bearer"
    assert lab.counts() == before
    with Session(lab.dashboard.engine) as session:
        assert session.get(Job, lab.erin_job).status == JobState.QUEUED


def test_anonymous_pages_send_the_browser_to_the_login_page(lab: Lab) -> None:
    client = lab.client(follow_redirects=False)
    assert client.get("/upload").headers["location"] == "/login?next=/upload"
    client.cookies.clear()
    run_id = lab.dashboard.newer.run_id
    relabel = client.post(f"/runs/{run_id}/relabel", headers={"Referer": f"http://testserver/runs/{run_id}"})
    assert relabel.status_code == 303 and relabel.headers["location"] == f"/login?next=/runs/{run_id}"
    client.cookies.clear()
    keep = client.post(f"/runs/{run_id}/typed-concepts", data={"text": "zebra"}, headers=HX)
    assert keep.status_code == 401 and keep.headers["HX-Redirect"] == "/login"
    login = client.get("/login?next=/upload")
    assert login.status_code == 200 and 'name="next" value="/upload"' in login.text


def test_a_viewer_reads_but_gets_403_for_changes(lab: Lab) -> None:
    before = lab.counts()
    client = lab.client("vic")
    assert client.get(f"/api/v1/runs/{lab.erin_run}").status_code == 200
    for response in (
        upload(client, checkpoint_bytes(TinyNet().state_dict())),
        client.post(f"/api/v1/runs/{lab.erin_run}/relabel"),
        client.post(f"/api/v1/jobs/{lab.erin_job}/cancel"),
        client.post(f"/api/v1/runs/{lab.erin_run}/typed-concepts", data={"text": "zebra"}),
    ):
        assert response.status_code == 403, response.text
        assert response.json()["detail"].startswith("vic is a viewer and may not upload checkpoints")
        assert "neuron-atlas users role vic editor" in response.json()["detail"]
    assert lab.counts() == before


def test_another_editors_run_and_job_get_403(lab: Lab) -> None:
    before = lab.counts()
    client = lab.client("ed")
    cancel = client.post(f"/api/v1/jobs/{lab.erin_job}/cancel")
    assert cancel.status_code == 403
    assert cancel.json()["detail"] == f"Job {lab.erin_job} belongs to erin; only they or an admin may cancel it."
    relabel = client.post(f"/api/v1/runs/{lab.erin_run}/relabel")
    assert relabel.status_code == 403 and "belongs to erin" in relabel.json()["detail"]
    keep = client.post(f"/api/v1/runs/{lab.erin_run}/typed-concepts", data={"text": "zebra"})
    assert keep.status_code == 403 and "belongs to erin" in keep.json()["detail"]
    page = client.post(f"/jobs/{lab.erin_job}/cancel")
    assert page.status_code == 403 and "belongs to erin" in page.text and "<html" in page.text
    ownerless = client.post(f"/api/v1/runs/{lab.dashboard.newer.run_id}/typed-concepts", data={"text": "zebra"})
    assert ownerless.status_code == 403 and "only an admin may" in ownerless.json()["detail"]
    assert lab.counts() == before
    with Session(lab.dashboard.engine) as session:
        assert session.get(Job, lab.erin_job).status == JobState.QUEUED


def test_the_owner_and_an_admin_may_curate(lab: Lab) -> None:
    kept = lab.client("erin").post(f"/api/v1/runs/{lab.erin_run}/typed-concepts", data={"text": "zebra"})
    assert kept.status_code == 201
    with Session(lab.dashboard.engine) as session:
        row = session.get(TypedConcept, kept.json()["id"])
        assert row is not None and row.owner_id == get_user(session, "erin").id
    by_admin = lab.client("admin").post(f"/api/v1/runs/{lab.erin_run}/typed-concepts", data={"text": "okapi"})
    assert by_admin.status_code == 201


# --- CSRF, origins, hosts, headers -----------------------------------------------------------------------------


def test_a_form_post_without_its_csrf_token_is_refused(lab: Lab) -> None:
    client = log_in(lab.client(follow_redirects=False), "erin")
    before = lab.counts()
    url = f"/runs/{lab.erin_run}/typed-concepts"
    missing = client.post(url, data={"text": "forged"})
    assert missing.status_code == 403 and "security token is missing or out of date" in missing.text
    api = client.post(f"/api/v1/runs/{lab.erin_run}/relabel")
    assert api.status_code == 403 and "no valid CSRF token" in api.json()["detail"]
    token = csrf_from(client.get("/logout").text)
    cross_site = client.post(
        url, data={"text": "forged", "csrftoken": token}, headers={"Origin": "https://evil.example"}
    )
    assert cross_site.status_code == 403
    assert "Refused a cross-site request: it came from https://evil.example" in cross_site.text
    null_origin = client.post(url, data={"text": "forged", "csrftoken": token}, headers={"Origin": "null"})
    assert null_origin.status_code == 403
    file_first = client.post("/upload", files={"checkpoint": ("x.pt", b"junk")}, data={})
    assert file_first.status_code == 403 and "csrftoken field must come before the file" in file_first.text
    assert lab.counts() == before
    same_site = client.post(url, data={"text": "wanted", "csrftoken": token}, headers={"Origin": "http://testserver"})
    assert same_site.status_code == 303
    header = client.post(url, data={"text": "also wanted"}, headers={**HX, "X-CSRFToken": token})
    assert header.status_code == 204


def test_a_logged_in_browser_uploads_with_its_token_first(lab: Lab) -> None:
    client = log_in(lab.client(follow_redirects=False), "erin")
    token = csrf_from(client.get("/upload").text)
    fields = {"csrftoken": token, "architecture": "tinynet", "layers": ["conv"]}
    response = client.post(
        "/upload", data=fields, files={"checkpoint": ("browser.pt", checkpoint_bytes(TinyNet().state_dict()))}
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith("/jobs/")
    job_id = int(response.headers["location"].rsplit("/", 1)[1])
    cancel_token = csrf_from(client.get(f"/jobs/{job_id}").text)
    cancelled = client.post(f"/jobs/{job_id}/cancel", data={"csrftoken": cancel_token})
    assert cancelled.status_code == 303


def test_a_foreign_host_header_gets_400(lab: Lab) -> None:
    client = lab.client()
    for host in ("evil.example", "testserver.evil.example", "127.0.0.1.nip.io"):
        response = client.get("/", headers={"Host": host})
        assert response.status_code == 400 and response.text == "Invalid host header", host
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert client.get("/healthz", headers={"Host": "testserver:8000"}).json() == {"status": "ok"}


def test_every_answer_has_the_security_headers(lab: Lab) -> None:
    client = lab.client()
    neuron = f"/runs/{lab.dashboard.newer.run_id}/layers/fc/neurons/1"
    for path in ("/", "/static/app.js", "/api/v1/runs", neuron, neuron, "/login", "/no/such/page"):
        headers = client.get(path).headers
        policy = headers["content-security-policy"]
        assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy, path
        assert "unsafe-eval" not in policy and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["referrer-policy"] == "same-origin" and headers["x-frame-options"] == "DENY", path


# --- READ_ACCESS=users -----------------------------------------------------------------------------------------


def test_read_access_users_needs_a_login_for_every_page_and_call(lab: Lab) -> None:
    dashboard = lab.dashboard
    members_only = replace(dashboard.settings, read_access="users")
    app = create_app(members_only, encoder_loader=fake_encoder_loader(), catalog=tiny_catalog())
    neuron = f"/runs/{dashboard.newer.run_id}/layers/fc/neurons/2"
    with TestClient(app, headers={"Authorization": f"Bearer {lab.tokens['vic']}"}) as member:
        assert member.get(neuron).status_code == 200  # now kept in the response cache
    anonymous = TestClient(app, follow_redirects=False)
    for path in ("/", neuron, f"/runs/{dashboard.newer.run_id}", "/docs", "/account"):
        response = anonymous.get(path)
        assert response.status_code == 303 and response.headers["location"].startswith("/login"), path
    assert anonymous.get(neuron).headers["location"] == f"/login?next={neuron}"
    api = anonymous.get(f"/api/v1{neuron}")
    assert api.status_code == 401 and api.json()["detail"].startswith("This dashboard is open to its users only")
    assert anonymous.get("/api/v1/runs").status_code == 401
    for open_path in ("/login", "/static/app.css", "/healthz"):
        assert anonymous.get(open_path).status_code == 200, open_path
    browser = log_in(TestClient(app, follow_redirects=False), "vic")
    assert browser.get(neuron).status_code == 200 and browser.get("/api/v1/runs").status_code == 200


def test_read_access_is_validated() -> None:
    from app.core.config import Settings
    from app.core.errors import AtlasError

    with pytest.raises(AtlasError, match="NEURON_ATLAS_READ_ACCESS='everyone' is not one of public, users"):
        Settings.from_env({"NEURON_ATLAS_READ_ACCESS": "everyone"})
    with pytest.raises(AtlasError, match="SECRET_KEY has 5 characters"):
        Settings.from_env({"NEURON_ATLAS_SECRET_KEY": "short"})
    assert Settings.from_env({"NEURON_ATLAS_READ_ACCESS": "Users"}).read_access == "users"


# --- tokens, login links, passwords -------------------------------------------------------------------------


def test_tokens_are_created_once_used_and_revoked(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NEURON_ATLAS_DATA_DIR", str(lab.dashboard.settings.data_dir))
    assert cli(["tokens", "create", "erin", "--name", "nightly upload"]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    client = lab.client()
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json() == {"name": "erin", "role": "editor"}
    with Session(lab.dashboard.engine) as session:
        row = session.scalars(select(ApiToken).where(ApiToken.name == "nightly upload")).one()
        assert row.token_hash != token and token not in row.token_hash and row.last_used_at is not None
    assert cli(["tokens", "list", "erin"]) == 0
    assert "nightly upload" in capsys.readouterr().out
    assert cli(["tokens", "revoke", str(row.id)]) == 0
    revoked = client.get("/api/v1/runs", headers={"Authorization": f"Bearer {token}"})
    assert revoked.status_code == 401 and "unknown or revoked" in revoked.json()["detail"]
    assert client.get("/api/v1/runs", headers={"Authorization": "Bearer na_made-up"}).status_code == 401
    assert client.get("/api/v1/runs", headers={"Authorization": "Basic ZXJpbjpwdw=="}).status_code == 401
    assert client.get("/api/v1/me").status_code == 401


def test_the_first_start_admin_logs_in_once_with_the_printed_link(tmp_path: Any) -> None:
    dashboard = build_dashboard(tmp_path / "data")
    with write_session(dashboard.engine) as session:
        session.execute(text("DELETE FROM users"))
    older = first_start_link(dashboard.settings, "http://127.0.0.1:8000")
    link = first_start_link(dashboard.settings, "http://127.0.0.1:8000", "/upload")  # a restart: a new link
    assert link is not None and link.startswith("http://127.0.0.1:8000/login?token=na_") and "&next=/upload" in link
    with Session(dashboard.engine) as session:
        assert [(user.name, user.role) for user in session.scalars(select(User))] == [("admin", "admin")]
    assert older is not None and older != link
    revoked = TestClient(dashboard.app()).get(older.removeprefix("http://127.0.0.1:8000"))
    assert revoked.status_code == 400 and "a newer link or a password replaced it" in revoked.text
    path = link.removeprefix("http://127.0.0.1:8000")
    browser = TestClient(dashboard.app(), base_url="https://testserver", follow_redirects=False)
    first = browser.get(path)
    assert first.status_code == 303 and first.headers["location"] == "/upload"
    cookie = next(value for value in first.headers.get_list("set-cookie") if value.startswith("neuron_atlas_session="))
    assert all(flag in cookie.lower() for flag in ("httponly", "samesite=lax", "secure"))
    assert browser.get("/api/v1/me").json() == {"name": "admin", "role": "admin"}
    assert browser.get("/upload").status_code == 200
    again = TestClient(dashboard.app(), follow_redirects=False).get(path)
    assert again.status_code == 400 and "used already or has expired" in again.text
    with write_session(dashboard.engine) as session:
        expired = create_login_link(session, get_user(session, "admin"), lifetime=timedelta(seconds=-1))
    late = TestClient(dashboard.app()).get(f"/login?token={expired}")
    assert late.status_code == 400 and "used already or has expired" in late.text
    with Session(dashboard.engine) as session:
        assert all(link.token_hash not in path for link in session.scalars(select(LoginLink)))
    dashboard.engine.dispose()


def test_racing_requests_with_one_link_log_in_once(tmp_path: Any) -> None:
    dashboard = build_dashboard(tmp_path / "data")
    with write_session(dashboard.engine) as session:
        token = create_login_link(session, get_user(session, "admin"))
    app = dashboard.app()
    statuses: list[int] = []

    def use() -> None:
        statuses.append(TestClient(app, follow_redirects=False).get(f"/login?token={token}").status_code)

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [303, 400, 400, 400]
    dashboard.engine.dispose()


def test_passwords_are_stored_only_as_argon2_hashes(lab: Lab) -> None:
    with Session(lab.dashboard.engine) as session:
        stored = session.scalar(select(User.password_hash).where(User.name == "erin"))
        dump = " ".join(str(value) for row in session.execute(text("SELECT * FROM users")) for value in row)
    assert stored is not None and stored.startswith("$argon2id$") and PASSWORD not in dump
    wrong = post_login(lab.client(), "erin", "not it")
    assert wrong.status_code == 401 and "Wrong name or password" in wrong.text
    nobody = post_login(lab.client(), "nobody")
    assert nobody.status_code == 401 and "Wrong name or password" in nobody.text
    tokenless = lab.client().post("/login", data={"name": "erin", "password": PASSWORD})
    assert tokenless.status_code == 403  # even with no cookie yet: no logging a browser in from another site
    client = log_in(lab.client(follow_redirects=False), "erin")
    assert client.get("/api/v1/me").json()["name"] == "erin"
    assert 'id="account" href="/logout"' in client.get("/account").text
    logout = client.post("/logout", data={"csrftoken": csrf_from(client.get("/logout").text)})
    assert logout.status_code == 303 and client.get("/api/v1/me").status_code == 401


def test_a_removed_users_session_stops_working(lab: Lab, tmp_path: Any) -> None:
    add_account(lab.dashboard.engine, "temp", "editor", PASSWORD)
    client = log_in(lab.client(follow_redirects=False), "temp")
    assert client.get("/api/v1/me").json()["name"] == "temp"
    with write_session(lab.dashboard.engine) as session:
        session.delete(get_user(session, "temp"))
    add_account(lab.dashboard.engine, "temp2", "admin", PASSWORD)  # may get the removed user's id on SQLite
    assert client.get("/api/v1/me").status_code == 401


def test_login_redirects_stay_on_this_site(lab: Lab) -> None:
    for evil in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        response = post_login(lab.client(), "erin", next_path=evil)
        assert response.status_code == 303 and response.headers["location"] == "/", evil


# --- the command line ----------------------------------------------------------------------------------------


def test_users_are_added_listed_changed_and_removed_from_the_command_line(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    monkeypatch.setenv("NEURON_ATLAS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr("sys.stdin", io.StringIO("a long passphrase\n"))
    assert cli(["users", "add", "alice", "--role", "editor", "--password-stdin"]) == 0
    answers = iter(["typed twice here", "typed twice here"])
    monkeypatch.setattr("getpass.getpass", lambda _prompt="": next(answers))
    assert cli(["users", "add", "root", "--role", "admin"]) == 0
    monkeypatch.setattr("getpass.getpass", lambda _prompt="": "")
    assert cli(["users", "add", "bob", "--role", "viewer"]) == 2
    assert "pass --no-password" in capsys.readouterr().err
    assert cli(["users", "add", "bob", "--role", "viewer", "--no-password"]) == 0
    assert cli(["users", "role", "bob", "editor"]) == 0
    assert cli(["users", "list"]) == 0
    listing = capsys.readouterr().out
    assert re.search(r"alice\s+editor\s+password", listing) and re.search(r"bob\s+editor\s+no password", listing)
    assert cli(["users", "link", "bob", "--url", "http://atlas.lab:8000"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("http://atlas.lab:8000/login?token=na_")
    assert cli(["users", "remove", "alice"]) == 0
    assert cli(["users", "remove", "root"]) == 2
    assert "is the last admin" in capsys.readouterr().err
    assert cli(["users", "remove", "nobody"]) == 2
    assert "there is no user 'nobody' (users: bob, root)" in capsys.readouterr().err
