"""Accounts that hold against a patient attacker (issue 27, items 1-3, 9 and 10), against the real server: two
`neuron-atlas serve` processes on one SQLite database, on loopback only.

- `public` reads without a login and trusts X-Forwarded-For (`--proxy-headers`, as behind a proxy);
- `members` is login-only (READ_ACCESS=users) and trusts no forwarded header.

Both start on a seeded dashboard whose admin has no password yet, so each prints a first-start login link. Every
hostile loop is bounded: a dozen guesses, four characters per text field.
"""

from __future__ import annotations

import io
import re
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.tokens import token_hash
from app.cli.main import main as cli
from app.persistence.models import CatalogConceptSet, CatalogProbeSet, LoginLink, ProbeImage, Run, TypedConcept
from tests.support.dashboard_seed import Dashboard, TinyNet, add_account, build_dashboard
from tests.support.served import ServedChild, served

PASSWORD = "correct horse battery"
#: Failed logins allowed per (account, address) before the wait, and the first wait: long enough that no wait
#: ends while the test floods.
FREE_FAILURES = 3
FIRST_WAIT_S = 30
GUESSES = 12
#: The address the owner logs in from (sent as X-Forwarded-For to the server trusting it).
HOME = "192.0.2.10"
LINK_LINE = re.compile(r"one-time link \(valid 24 hours\): (\S+)")
#: The characters every text field refuses, and how the answer names each.
HOSTILE = {
    "\x00": "U+0000 NULL",
    "\x1b": "U+001B ESCAPE",
    "\u202e": "U+202E RIGHT-TO-LEFT OVERRIDE",
    "\u200b": "U+200B ZERO WIDTH SPACE",
}
SESSION_COOKIE = "neuron_atlas_session"


@dataclass
class Servers:
    """The two server processes on one seeded data folder, and the first-start links they printed."""

    dashboard: Dashboard
    public: ServedChild
    members: ServedChild
    links: list[str]

    def logs(self) -> str:
        """Return both servers' output so far."""
        return self.public.log.read_text() + self.members.log.read_text()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """Two servers (started together, each printing a first-start link) on a dashboard with three editors."""
    root = tmp_path_factory.mktemp("accounts")
    dashboard = build_dashboard(root / "data")
    for name in ("erin", "ed"):
        add_account(dashboard.engine, name, "editor", PASSWORD)
    env = {
        "NEURON_ATLAS_DATA_DIR": str(dashboard.settings.data_dir),
        "NEURON_ATLAS_PRELOAD_RUNS": "0",
        "NEURON_ATLAS_LOGIN_FREE_FAILURES": str(FREE_FAILURES),
        "NEURON_ATLAS_LOGIN_BACKOFF_S": str(FIRST_WAIT_S),
        "NEURON_ATLAS_LOGIN_BACKOFF_MAX_S": str(2 * FIRST_WAIT_S),
    }
    with (
        served(env, root / "public.log", ("--proxy-headers",)) as public,
        served({**env, "NEURON_ATLAS_READ_ACCESS": "users"}, root / "members.log") as members,
    ):
        public.wait_until_up(240)
        members.wait_until_up(240)
        links = [found.group(1) for child in (public, members) for found in LINK_LINE.finditer(child.log.read_text())]
        yield Servers(dashboard, public, members, links)
    dashboard.engine.dispose()


def csrf_from(html: str) -> str:
    """Return the CSRF token of a page's form."""
    found = re.search(r'name="csrftoken" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def browser(server: ServedChild, cookie: str | None = None) -> httpx.Client:
    """Return a client of a server that keeps cookies like a browser (starting with a copied session cookie)."""
    cookies = {SESSION_COOKIE: cookie} if cookie else None
    return httpx.Client(base_url=server.url, cookies=cookies, follow_redirects=False, timeout=60)


def log_in(client: httpx.Client, name: str, password: str, forwarded_for: str | None = None) -> httpx.Response:
    """Submit the login form as a browser does (its page first, for the CSRF token); return the answer."""
    token = csrf_from(client.get("/login").text)
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    fields = {"csrftoken": token, "name": name, "password": password, "next": "/"}
    return client.post("/login", data=fields, headers=headers)


def logged_in(server: ServedChild, name: str, password: str = PASSWORD) -> httpx.Client:
    """Return a browser logged in as `name`."""
    client = browser(server)
    answer = log_in(client, name, password)
    assert answer.status_code == 303, answer.text
    return client


def copied(client: httpx.Client, server: ServedChild) -> httpx.Client:
    """Return another browser, of `server`, holding a copy of the client's session cookie."""
    return browser(server, client.cookies[SESSION_COOKIE])


def whoami(client: httpx.Client) -> int:
    """Return the status of /api/v1/me for the client's cookie."""
    return client.get("/api/v1/me").status_code


# --- 1: throttled logins, shared by both processes -------------------------------------------------------------


def test_two_servers_share_the_throttle_and_the_owner_still_gets_in(servers: Servers) -> None:
    public, members = servers.public, servers.members
    assert log_in(browser(public), "erin", PASSWORD, forwarded_for=HOME).status_code == 303  # a known address
    guessers = (browser(public), browser(members))  # the same address (loopback) through either process
    statuses, waits = [], []
    started = time.monotonic()
    for guess in range(GUESSES):
        answer = log_in(guessers[guess % 2], "erin", f"guess number {guess}")
        statuses.append(answer.status_code)
        if answer.status_code == 429:
            waits.append(int(answer.headers["retry-after"]))
            assert "Too many failed logins for this account from your address" in answer.text
    flood_s = time.monotonic() - started
    print(f"{GUESSES} guesses through two processes: {statuses} in {flood_s:.1f} s, waits {waits}")
    assert statuses == [401] * FREE_FAILURES + [429] * (GUESSES - FREE_FAILURES)
    assert all(0 < wait <= FIRST_WAIT_S for wait in waits) and flood_s < 60
    for guesser in guessers:  # while the pair waits, not even the right password is checked
        assert log_in(guesser, "erin", PASSWORD).status_code == 429
    # A forwarded address means nothing to the process not told to trust it: still the waiting loopback pair.
    assert log_in(guessers[1], "erin", PASSWORD, forwarded_for=HOME).status_code == 429
    # The process trusting its proxy sees the owner at home, an address they logged in from: let in.
    assert log_in(browser(public), "erin", PASSWORD, forwarded_for=HOME).status_code == 303
    logs = servers.logs()
    assert logs.count("failed login for 'erin' from '127.0.0.1'") == FREE_FAILURES
    assert "login refused for 'erin' from '127.0.0.1'" in logs
    assert "guess number" not in logs and PASSWORD not in logs


# --- 2: sessions that really end -------------------------------------------------------------------------------


def test_a_copied_cookie_stops_working_after_logout_everywhere(servers: Servers) -> None:
    public, members = servers.public, servers.members
    owner = logged_in(public, "ed")
    cookie = owner.cookies[SESSION_COOKIE]  # copied before logging out, then used through either process
    thief, public_thief = browser(members, cookie), browser(public, cookie)
    run_page = f"/runs/{servers.dashboard.newer.run_id}"
    assert whoami(thief) == 200 and thief.get(run_page).status_code == 200 and whoami(public_thief) == 200
    logout = owner.post("/logout", data={"csrftoken": csrf_from(owner.get("/logout").text)})
    assert logout.status_code == 303
    assert whoami(thief) == 401 and whoami(public_thief) == 401
    page = thief.get(run_page)
    assert page.status_code == 303 and page.headers["location"] == f"/login?next={run_page}"
    upload = public_thief.get("/upload")
    assert upload.status_code == 303 and upload.headers["location"] == "/login?next=/upload"


def test_a_new_password_a_new_role_or_users_logout_ends_every_session(
    servers: Servers, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    public, members = servers.public, servers.members
    monkeypatch.setenv("NEURON_ATLAS_DATA_DIR", str(servers.dashboard.settings.data_dir))
    laptop, phone = logged_in(public, "ed"), logged_in(members, "ed")
    stolen = copied(laptop, members)
    assert whoami(stolen) == 200
    monkeypatch.setattr("sys.stdin", io.StringIO("a new long passphrase\n"))
    assert cli(["users", "password", "ed", "--password-stdin"]) == 0
    assert whoami(stolen) == 401 and whoami(laptop) == 401 and whoami(phone) == 401
    laptop = logged_in(public, "ed", "a new long passphrase")
    stolen = copied(laptop, members)
    assert cli(["users", "role", "ed", "viewer"]) == 0
    assert whoami(stolen) == 401 and whoami(laptop) == 401
    laptop, phone = logged_in(public, "ed", "a new long passphrase"), logged_in(members, "ed", "a new long passphrase")
    capsys.readouterr()
    assert cli(["users", "logout", "ed"]) == 0
    assert "ended 2 login sessions of ed" in capsys.readouterr().out
    assert whoami(laptop) == 401 and whoami(phone) == 401


# --- 3: one valid admin link, never in the access log ----------------------------------------------------------


def test_only_the_newest_admin_link_works_until_a_password_is_set(
    servers: Servers, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    public, members = servers.public, servers.members
    tokens = [link.rsplit("token=", 1)[1] for link in servers.links]
    assert len(tokens) == 2, servers.logs()  # each start printed one
    with Session(servers.dashboard.engine) as session:
        live = set(session.scalars(select(LoginLink.token_hash).where(LoginLink.used_at.is_(None))))
    newer = [token for token in tokens if token_hash(token) in live]
    older = [token for token in tokens if token_hash(token) not in live]
    assert len(newer) == 1 and len(older) == 1  # the second start revoked the first start's link
    refused = browser(public).get(f"/login?token={older[0]}")
    assert refused.status_code == 400 and "a newer link or a password replaced it" in refused.text
    monkeypatch.setenv("NEURON_ATLAS_DATA_DIR", str(servers.dashboard.settings.data_dir))
    monkeypatch.setattr("sys.stdin", io.StringIO("the admin's own passphrase\n"))
    assert cli(["users", "password", "admin", "--password-stdin"]) == 0
    assert browser(members).get(f"/login?token={newer[0]}").status_code == 400
    capsys.readouterr()
    assert cli(["users", "link", "erin", "--url", members.url]) == 0
    link = capsys.readouterr().out.strip().splitlines()[-1]
    client = browser(members)
    assert client.get(link.removeprefix(members.url)).status_code == 303 and whoami(client) == 200
    assert browser(members).get(link.removeprefix(members.url)).status_code == 400  # once only
    spent = [*tokens, link.rsplit("token=", 1)[1]]
    requests = [line for line in servers.logs().splitlines() if '"GET /login?token=' in line]
    assert len(requests) == 4 and all("token=[redacted]" in line for line in requests)
    for line in servers.logs().splitlines():
        shown = [token for token in spent if token in line]
        assert not shown or "one-time link" in line, line  # only the start message shows its own link


# --- 9: one rule for every name and concept typed or uploaded --------------------------------------------------


def zip_of_one_image() -> bytes:
    """Return a zip archive holding one small PNG."""
    image = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(image, format="PNG")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("red.png", image.getvalue())
    return archive.getvalue()


def checkpoint_bytes() -> bytes:
    """Return a small torch checkpoint."""
    import torch

    buffer = io.BytesIO()
    torch.save(TinyNet().state_dict(), buffer)
    return buffer.getvalue()


def test_every_text_field_refuses_control_bidi_and_invisible_characters(servers: Servers) -> None:
    run_id = servers.dashboard.newer.run_id
    api = httpx.Client(base_url=servers.public.url, headers=servers.dashboard.admin_headers, timeout=60)
    archive, checkpoint = zip_of_one_image(), checkpoint_bytes()
    fields = {
        "run name": lambda bad: api.patch(f"/api/v1/runs/{run_id}", json={"name": f"a{bad}b"}),
        "run notes": lambda bad: api.patch(f"/api/v1/runs/{run_id}", json={"notes": f"first line\nsec{bad}ond"}),
        "run name (page form)": lambda bad: api.post(f"/runs/{run_id}/details", data={"name": f"a{bad}b"}),
        "typed concept": lambda bad: api.post(f"/api/v1/runs/{run_id}/typed-concepts", data={"text": f"zeb{bad}ra"}),
        "concept search": lambda bad: api.get(f"/api/v1/runs/{run_id}/layers/fc/concepts", params={"q": f"s{bad}"}),
        "probe-set name": lambda bad: api.post(
            "/api/v1/probe-sets", data={"name": f"reds{bad}"}, files={"archive": ("reds.zip", archive)}
        ),
        "concept-set name": lambda bad: api.post("/api/v1/concept-sets", data={"name": f"tex{bad}", "concepts": "x"}),
        "concept list": lambda bad: api.post(
            "/api/v1/concept-sets", data={"name": "textures", "concepts": f"striped\ndot{bad}ted\n"}
        ),
        "model name": lambda bad: api.post(
            "/api/v1/uploads",
            data={"architecture": "resnet18", "layers": "fc", "model_name": f"net{bad}"},
            files={"checkpoint": ("net.pt", checkpoint)},
        ),
    }
    for field, send in fields.items():
        for character, named in HOSTILE.items():
            answer = send(character)
            assert answer.status_code == 422, (field, named, answer.text[:500])
            assert named in answer.text, (field, named, answer.text[:500])
    not_utf8 = api.post(
        f"/runs/{run_id}/details",
        content=b"name=caf%E9&notes=",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert not_utf8.status_code == 422 and "not valid UTF-8" in not_utf8.text
    with Session(servers.dashboard.engine) as session:
        run = session.get(Run, run_id)
        assert run is not None and run.name is None and run.notes is None
        for table in (TypedConcept, CatalogConceptSet, CatalogProbeSet):
            assert session.scalar(select(func.count()).select_from(table)) == 0, table


# --- 10: login-only mode keeps shared caches out ---------------------------------------------------------------


def test_login_only_answers_are_private_to_the_browser(servers: Servers) -> None:
    with Session(servers.dashboard.engine) as session:
        view = session.scalars(select(ProbeImage.view_file).where(ProbeImage.view_file.is_not(None))).first()
    media = f"/media/{view}"
    member = httpx.Client(base_url=servers.members.url, headers=servers.dashboard.admin_headers, timeout=60)
    image = member.get(media)
    assert image.status_code == 200 and image.headers["cache-control"] == "private, max-age=31536000, immutable"
    for path in ("/", f"/runs/{servers.dashboard.newer.run_id}", "/api/v1/runs", "/login"):
        answer = member.get(path)
        assert answer.status_code == 200 and answer.headers["cache-control"].startswith("private"), path
    anonymous = browser(servers.members).get(media)
    assert anonymous.status_code == 303 and anonymous.headers["cache-control"] == "private"
    public = httpx.get(servers.public.url + media, timeout=60)  # reading open to all: media stay cacheable
    assert public.status_code == 200 and public.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_the_servers_logged_nothing_they_should_not(servers: Servers) -> None:
    assert "Traceback" not in servers.logs()
