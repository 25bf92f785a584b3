"""Concept sets uploaded as lists: cleaned, stored by hash and chosen by name; bad or oversized lists refused,
leaving nothing behind."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.persistence.models import Job
from tests.integration.upload_helpers import bounded_client, nothing_stored, refused, upload
from tests.support.dashboard_seed import Dashboard


def test_an_uploaded_concept_list_is_cleaned_stored_by_hash_and_chosen_by_name(
    client: TestClient, dashboard: Dashboard
) -> None:
    response = client.post(
        "/api/v1/concept-sets", data={"name": "Textures", "concepts": " striped\n\ndotted\nstriped\n"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "textures" and response.json()["n_concepts"] == 2
    listed = client.get("/api/v1/concept-sets").json()["items"]
    assert {item["name"] for item in listed} >= {"20k", "imagenet", "textures"}
    assert str(dashboard.settings.data_dir) not in str(listed)
    created = upload(client, concepts="textures", model_name="textured")
    assert created.status_code == 201, created.text
    with Session(dashboard.engine) as session:
        params = session.get(Job, created.json()["job_id"]).params
    stored = dashboard.settings.data_dir / params["concepts"]  # stored relative to the data folder
    assert stored.parent == dashboard.settings.data_dir / "concept-sets" and stored.read_text() == "striped\ndotted\n"
    from_file = client.post("/api/v1/concept-sets", data={"name": "colours"}, files={"file": ("c.txt", b"red\nblue\n")})
    assert from_file.status_code == 201 and from_file.json()["n_concepts"] == 2
    with nothing_stored(dashboard):
        again = client.post("/api/v1/concept-sets", data={"name": "again", "concepts": "striped\ndotted"})
        refused(again, 422, "already is the concept set 'textures'")


@pytest.mark.parametrize(
    ("data", "files", "status", "words"),
    [
        ({"name": "/etc/passwd", "concepts": "a"}, None, 422, ["'/etc/passwd' cannot name a concept set"]),
        ({"name": "imagenet", "concepts": "a"}, None, 422, ["'imagenet' is taken"]),
        ({"name": "empty", "concepts": "\n \n"}, None, 400, ["No concepts were sent"]),
        ({"name": "latin1"}, {"file": ("l.txt", "caf\xe9\n".encode("latin-1"))}, 400, ["not UTF-8"]),
        ({"name": "long", "concepts": "x" * 300}, None, 422, ["longer than 200 characters"]),
        ({"name": "nul", "concepts": "a\x00b"}, None, 422, ["holds a control character"]),
    ],
)
def test_bad_concept_lists_are_refused(
    client: TestClient, dashboard: Dashboard, data: dict[str, str], files: Any, status: int, words: list[str]
) -> None:
    with nothing_stored(dashboard):
        print(
            data.get("name"), "->", refused(client.post("/api/v1/concept-sets", data=data, files=files), status, *words)
        )


def test_concept_lists_are_bounded_in_lines_and_bytes(dashboard: Dashboard) -> None:
    with bounded_client(dashboard, concepts_max_lines=3, concepts_max_bytes=1024) as client, nothing_stored(dashboard):
        lines = client.post("/api/v1/concept-sets", data={"name": "lines", "concepts": "a\nb\nc\nd\n"})
        refused(lines, 400, "4 lines, more than 3")
        big = client.post("/api/v1/concept-sets", data={"name": "big"}, files={"file": ("b.txt", b"word\n" * 400)})
        refused(big, 400, "larger than 1 KB")
        huge = client.post("/api/v1/concept-sets", data={"name": "huge"}, files={"file": ("h.txt", b"w\n" * 100_000)})
        refused(huge, 400, "over the concept list limit")
