"""Error answers: every handler gives the API one JSON shape, `{"detail": …}`, with the status its error means."""

from __future__ import annotations

import errno
from collections.abc import Callable

import pytest
from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.testclient import TestClient

from app.auth.permissions import Forbidden, LoginRequired
from app.core.errors import AtlasError, BadUpload, InUse, NotFound, QuotaExceeded, StorageUnavailable
from app.core.urls import API_PREFIX
from app.web.auth import install_auth_handlers
from app.web.errors import SERVER_ERROR, AnswerServerErrors, ErrorBody, install_error_handlers
from app.web.views.paging import MAX_ID, Id
from app.web.views.templating import make_templates
from dissect_core.errors import DissectError

RAISED: dict[str, tuple[Callable[[], Exception], int]] = {
    "not-found": (lambda: NotFound("There is no run 7; pick one from the list at /."), 404),
    "dissect": (lambda: DissectError("unknown similarity 'x'; use one of: soft_wpmi"), 422),
    "atlas": (lambda: AtlasError("The model name is taken; choose another."), 422),
    "bad-upload": (lambda: BadUpload("The uploaded checkpoint is empty; choose the file again."), 400),
    "quota": (lambda: QuotaExceeded("Run 7 already keeps 3 typed concepts; relabel with those first."), 429),
    "storage": (lambda: StorageUnavailable("The database is read-only; make it writable."), 503),
    "in-use": (lambda: InUse("Job 3 still uses the probe set 'pets'; delete it once the job ends."), 409),
    "refused-write": (lambda: OSError(errno.EROFS, "Read-only file system", "/data/x"), 503),
    "login": (lambda: LoginRequired("Log in to relabel: open /login."), 401),
    "forbidden": (lambda: Forbidden("Run 7 belongs to erin; only they or an admin may relabel it."), 403),
    "http": (lambda: HTTPException(409, "The runs do not compare; pick another run."), 409),
    "unhandled": (lambda: RuntimeError("a bug"), 500),
}


def error_app() -> FastAPI:
    """Return an app with the dashboard's error handlers whose API routes raise each error of RAISED."""
    app = FastAPI()
    router = APIRouter(prefix=API_PREFIX)

    @router.get("/raise/{kind}")
    def raise_error(kind: str) -> None:
        raise RAISED[kind][0]()

    @router.get("/things/{thing_id}")
    def thing(thing_id: Id) -> dict[str, int]:
        return {"id": thing_id}

    app.include_router(router)
    templates = make_templates()
    install_error_handlers(app, templates)
    install_auth_handlers(app, templates)
    app.add_middleware(AnswerServerErrors)
    return app


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(error_app(), raise_server_exceptions=False)


def assert_error_body(response_json: object) -> ErrorBody:
    assert isinstance(response_json, dict) and set(response_json) == {"detail"}, response_json
    return ErrorBody.model_validate(response_json)


@pytest.mark.parametrize("kind", sorted(RAISED))
def test_every_raised_error_is_answered_as_its_detail(client: TestClient, kind: str) -> None:
    response = client.get(f"{API_PREFIX}/raise/{kind}")
    assert response.status_code == RAISED[kind][1]
    assert response.headers["content-type"] == "application/json"
    error = RAISED[kind][0]()
    expected = {
        "unhandled": SERVER_ERROR,
        "refused-write": "The data folder cannot be written at /data/x (Read-only file system); make "
        "NEURON_ATLAS_DATA_DIR writable by the server's user (or free disk space), then try again.",
        "http": getattr(error, "detail", None),
    }.get(kind, str(error))
    assert assert_error_body(response.json()).detail == expected


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", f"{API_PREFIX}/things/{MAX_ID + 1}", 404),  # an id out of range: nothing has it
        ("GET", f"{API_PREFIX}/nowhere", 404),
        ("POST", f"{API_PREFIX}/things/1", 405),
    ],
)
def test_the_frameworks_own_errors_have_the_same_shape(client: TestClient, method: str, path: str, status: int) -> None:
    response = client.request(method, path)
    assert response.status_code == status
    detail = assert_error_body(response.json()).detail
    assert isinstance(detail, str) and detail


def test_a_request_that_does_not_fit_the_schema_lists_its_problems_under_detail(client: TestClient) -> None:
    response = client.get(f"{API_PREFIX}/things/seven")
    assert response.status_code == 422
    detail = assert_error_body(response.json()).detail
    assert isinstance(detail, list) and detail[0].loc == ["path", "thing_id"]
