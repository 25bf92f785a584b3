"""Controls a visitor may not use are not rendered (#26): the top bar's Upload link and the catalogue pages' upload
forms and delete buttons show only to those the routes would let use them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.support.dashboard_seed import Dashboard, add_account

UPLOAD_LINK = 'id="upload-link" href="/upload"'


@pytest.fixture(scope="module")
def visitors(dashboard: Dashboard) -> Iterator[dict[str, TestClient]]:
    """Clients of an anonymous visitor, a viewer, an editor and the admin on the seeded app."""
    tokens = {name: add_account(dashboard.engine, name, role) for name, role in (("vic", "viewer"), ("ed", "editor"))}
    app = dashboard.app()
    headers = {
        "anonymous": {},
        "viewer": {"Authorization": f"Bearer {tokens['vic']}"},
        "editor": {"Authorization": f"Bearer {tokens['ed']}"},
        "admin": dashboard.admin_headers,
    }
    with TestClient(app) as client:
        yield {who: TestClient(app, headers=value) for who, value in headers.items()} | {"anonymous": client}


@pytest.mark.parametrize(("who", "shown"), [("anonymous", False), ("viewer", False), ("editor", True), ("admin", True)])
def test_the_top_bars_upload_link_shows_only_to_those_who_may_upload(
    visitors: dict[str, TestClient], who: str, shown: bool
) -> None:
    client = visitors[who]
    account = client.get("/account", headers={"HX-Request": "true"})
    assert account.status_code == 200 and (UPLOAD_LINK in account.text) is shown
    assert client.get("/upload", follow_redirects=False).status_code in ((200,) if shown else (303, 401, 403))
    home = client.get("/")
    assert 'href="/upload">Upload</a>' not in home.text  # the page itself is the same for everyone
    assert ('href="/upload">Upload a checkpoint</a>' in home.text) is shown


def test_catalogue_pages_show_upload_forms_and_delete_buttons_only_to_who_may_use_them(
    visitors: dict[str, TestClient],
) -> None:
    added = visitors["admin"].post("/api/v1/concept-sets", data={"name": "admins-words", "concepts": "cat\ndog\n"})
    assert added.status_code == 201, added.text
    delete_button = 'action="/concept-sets/admins-words/delete"'
    for who, may_upload, may_delete in (
        ("anonymous", False, False),
        ("viewer", False, False),
        ("editor", True, False),  # another editor's set
        ("admin", True, True),
    ):
        for page in ("/concept-sets", "/probe-sets"):
            text = visitors[who].get(page).text
            assert (f'method="post" action="{page}"' in text) is may_upload, (who, page)
        assert (delete_button in visitors[who].get("/concept-sets").text) is may_delete, who
