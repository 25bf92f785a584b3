"""The resource registrar on a tiny app: one function served as JSON, page and fragment; page parameters; redirects;
kept bodies; the one htmx rule; the card memo's lifetime."""

from __future__ import annotations

import gc
import weakref
from typing import Annotated

from fastapi import APIRouter, FastAPI, Form
from fastapi.templating import Jinja2Templates
from fastapi.testclient import TestClient
from jinja2 import DictLoader, Environment
from markupsafe import Markup
from pydantic import BaseModel
from starlette.datastructures import Headers

from app.read.layers.index import LayerIndex
from app.read.schemas.layers import LayerScoreStats
from app.web.middleware.cached_answers import ServeCachedBodies
from app.web.middleware.response_cache import ResponseCache, request_key
from app.web.resources import Page, Redirect, resource
from app.web.views.cards import CardMemo
from app.web.views.htmx import is_htmx

HX = {"HX-Request": "true"}
TEMPLATES = {
    "page.html": "<html>{{ thing.name }} {{ extra }} {{ where }}</html>",
    "fragment.html": "<b>{{ thing.name }}</b>",
    "search.html": "<html>{{ found or '' }}|{{ problem or '' }}</html>",
}


class Thing(BaseModel):
    id: int
    name: str


def thing_context(thing: Thing) -> dict[str, object]:
    return {"thing": thing}


def page_extras(thing_id: int, where: str = "home") -> dict[str, object]:
    return {"extra": f"page of {thing_id}", "where": where}


def search_context(outcome: Thing | ValueError, q: str = "") -> dict[str, object]:
    if isinstance(outcome, Thing):
        return {"found": outcome.name}
    return {"problem": str(outcome) if q else None}  # a blank box is no mistake


def make_app(calls: list[int]) -> FastAPI:
    router = APIRouter(tags=["things"])

    @resource(
        router,
        "/things/{thing_id}",
        html=Page("page.html", context=thing_context, fragment="fragment.html", page_context=page_extras),
    )
    def thing(thing_id: int) -> Thing:
        """One thing."""
        return Thing(id=thing_id, name=f"thing {thing_id}")

    @resource(router, "/search", html=Page("search.html", context=search_context, shown_errors=(ValueError,)))
    def search(q: str) -> Thing:
        """The thing named q."""
        if not q.strip():
            raise ValueError("type a name")
        return Thing(id=1, name=q)

    def back(_thing: Thing, back: Annotated[str, Form()] = "/") -> str:
        return back

    @resource(router, "/things", method="POST", html=Redirect(back, htmx_event="things-changed"), status_code=201)
    def add_thing(name: Annotated[str, Form()]) -> Thing:
        """Add a thing."""
        return Thing(id=7, name=name)

    @resource(router, "/kept/{thing_id}", html=Page("page.html", context=thing_context, immutable=True), immutable=True)
    def kept(thing_id: int) -> Thing:
        """A thing that never changes."""
        calls.append(thing_id)
        return Thing(id=thing_id, name="kept")

    app = FastAPI()
    app.state.templates = Jinja2Templates(env=Environment(loader=DictLoader(TEMPLATES), autoescape=True))
    app.state.response_cache = ResponseCache()
    app.add_middleware(ServeCachedBodies, cache=app.state.response_cache)
    app.include_router(router)
    return app


def test_one_declaration_serves_json_the_page_and_the_fragment() -> None:
    client = TestClient(make_app([]))
    assert client.get("/api/v1/things/3").json() == {"id": 3, "name": "thing 3"}
    page = client.get("/things/3", params={"where": "there"})
    assert page.text == "<html>thing 3 page of 3 there</html>" and page.headers["vary"] == "HX-Request"
    fragment = client.get("/things/3", headers=HX)
    assert fragment.text == "<b>thing 3</b>" and fragment.headers["vary"] == "HX-Request"
    restore = client.get("/things/3", headers={**HX, "HX-History-Restore-Request": "true"})
    assert restore.text.startswith("<html>")
    assert "vary" not in client.get("/api/v1/things/3").headers


def test_page_parameters_join_the_html_route_alone() -> None:
    client = TestClient(make_app([]))
    schema = client.get("/openapi.json").json()
    assert set(schema["paths"]) == {
        "/api/v1/things/{thing_id}",
        "/api/v1/search",
        "/api/v1/things",
        "/api/v1/kept/{thing_id}",
    }
    assert [param["name"] for param in schema["paths"]["/api/v1/things/{thing_id}"]["get"]["parameters"]] == [
        "thing_id"
    ]
    assert schema["paths"]["/api/v1/things/{thing_id}"]["get"]["summary"] == "Thing"
    assert client.get("/api/v1/search").status_code == 422  # q is required in the API...
    assert client.get("/search").text == "<html>|</html>"  # ...optional on the page
    assert client.get("/search", params={"q": " "}).text == "<html>|type a name</html>"
    assert client.get("/search", params={"q": "cup"}).text == "<html>cup|</html>"


def test_actions_redirect_browsers_and_notify_htmx() -> None:
    client = TestClient(make_app([]))
    created = client.post("/api/v1/things", data={"name": "cup"})
    assert created.status_code == 201 and created.json() == {"id": 7, "name": "cup"}
    browser = client.post("/things", data={"name": "cup", "back": "/things/7"}, follow_redirects=False)
    assert browser.status_code == 303 and browser.headers["location"] == "/things/7"
    htmx = client.post("/things", data={"name": "cup"}, headers=HX)
    assert htmx.status_code == 204 and htmx.headers["HX-Trigger"] == "things-changed"


def test_immutable_answers_are_kept_per_htmx_ness_and_replayed() -> None:
    calls: list[int] = []
    client = TestClient(make_app(calls))
    first, again = client.get("/kept/5"), client.get("/kept/5")
    assert first.text == again.text == "<html>kept  </html>" and calls == [5]
    assert again.headers["vary"] == "HX-Request" and again.headers["content-type"] == "text/html; charset=utf-8"
    client.get("/kept/5", headers=HX)
    json_first, json_again = client.get("/api/v1/kept/5"), client.get("/api/v1/kept/5")
    assert json_first.content == json_again.content and json_again.headers["content-type"] == "application/json"
    assert calls == [5, 5, 5]


def test_pages_and_the_cache_tell_htmx_apart_by_one_rule() -> None:
    def scope(headers: dict[str, str]) -> dict[str, object]:
        raw = [(name.lower().encode(), value.encode()) for name, value in headers.items()]
        return {"type": "http", "path": "/x", "query_string": b"a=1", "headers": raw}

    restore = {**HX, "HX-History-Restore-Request": "true"}
    assert is_htmx(Headers(HX)) and not is_htmx(Headers(restore)) and not is_htmx(Headers({}))
    assert request_key(scope(HX)) == "/x?a=1|hx" and request_key(scope(restore)) == request_key(scope({}))


def test_card_memo_keeps_cards_per_index_and_lives_as_long_as_it() -> None:
    stats = LayerScoreStats(score_min=0, score_max=1, low_confidence_below=0.25)
    index, other = (
        LayerIndex(run_id=run_id, layer="fc", layer_kind="linear", n_units=0, stats=stats, neurons=())
        for run_id in (1, 2)
    )
    memo = CardMemo()
    memo.of(index)[3] = Markup("<a>3</a>")
    assert memo.of(index) == {3: Markup("<a>3</a>")} and memo.of(other) == {}  # unit 3 of another layer stays apart
    alive = weakref.ref(index)
    del index
    gc.collect()
    assert alive() is None
