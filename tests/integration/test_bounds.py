"""The real app under hostile or unlucky input: damaged run artifacts, checkpoint bombs and odd suffixes,
junk query parameters against the response cache."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import torch
from fastapi.testclient import TestClient
from safetensors.torch import save
from sqlalchemy.orm import Session

from app.persistence.models import Job
from app.web.main import create_app
from dissect_core.models.state_dicts import read_state_dict
from tests.support.checkpoints import write_deflated_torch_bomb
from tests.support.dashboard_seed import Dashboard, TinyNet, fake_encoder_loader, tiny_catalog


def checkpoint_bytes(state_dict: dict[str, torch.Tensor]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    return buffer.getvalue()


def upload(client: TestClient, content: bytes, filename: str) -> httpx.Response:
    data = {"architecture": "tinynet", "layers": ["conv", "fc"], "probe": "cifar100", "concepts": "20k"}
    return client.post("/api/v1/uploads", data=data, files={"checkpoint": (filename, content)})


def stored_checkpoints(dashboard: Dashboard) -> list[Path]:
    folder = dashboard.settings.data_dir / "checkpoints"
    return sorted(path for path in folder.rglob("*") if path.is_file()) if folder.exists() else []


@contextmanager
def replaced(path: Path, content: bytes) -> Iterator[None]:
    """Return a context in which the file at `path` holds `content`, restored afterwards."""
    original = path.read_bytes()
    path.write_bytes(content)
    try:
        yield
    finally:
        path.write_bytes(original)


# --- damaged run artifacts -----------------------------------------------------------------------------------


def test_a_truncated_artifact_answers_like_a_missing_one_with_the_fix(dashboard: Dashboard) -> None:
    embeddings = dashboard.older.artifacts_dir / "image_embeddings.pt"
    url = f"/api/v1/runs/{dashboard.older.run_id}/layers/fc/concepts"
    with replaced(embeddings, embeddings.read_bytes()[:300]), TestClient(dashboard.app()) as client:
        response = client.get(url, params={"q": "sky"}, headers=dashboard.admin_headers)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "image_embeddings.pt is damaged" in detail and "dissect the model again" in detail
    assert str(dashboard.settings.data_dir) not in detail


def test_top_indices_that_are_not_image_indices_are_told_as_damaged(dashboard: Dashboard) -> None:
    top = dashboard.older.artifacts_dir / "top_indices" / "fc.pt"
    buffer = io.BytesIO()
    torch.save(torch.full((10, 5), 10**6), buffer)
    url = f"/api/v1/runs/{dashboard.older.run_id}/layers/fc/neurons/3/concept"
    with replaced(top, buffer.getvalue()), TestClient(dashboard.app()) as client:
        response = client.get(url, params={"q": "sky"}, headers=dashboard.admin_headers)
    assert response.status_code == 422 and "fc.pt is damaged" in response.json()["detail"]


# --- checkpoints ---------------------------------------------------------------------------------------------


def test_an_upload_named_in_upper_case_is_read_as_safetensors(dashboard: Dashboard) -> None:
    content = save({key: value.contiguous() for key, value in TinyNet().state_dict().items()})
    with TestClient(dashboard.app(), headers=dashboard.admin_headers) as client:
        response = upload(client, content, "tiny.SAFETENSORS")
    assert response.status_code == 201, response.text
    with Session(dashboard.engine) as session:
        checkpoint = dashboard.settings.data_dir / session.get(Job, response.json()["job_id"]).params["checkpoint"]
    assert checkpoint.name == "tiny.SAFETENSORS"
    assert set(read_state_dict(checkpoint)) == set(TinyNet().state_dict())  # as the worker will read it


def test_a_checkpoint_bomb_is_refused_and_nothing_is_kept(dashboard: Dashboard, tmp_path: Path) -> None:
    bomb = write_deflated_torch_bomb(tmp_path / "bomb.pt", 64 * 2**20).read_bytes()
    before = stored_checkpoints(dashboard)
    with TestClient(dashboard.app(), headers=dashboard.admin_headers) as client:
        response = upload(client, bomb, "bomb.pt")
    assert response.status_code == 400 and "compressed" in response.json()["detail"]
    assert "'bomb.pt'" in response.json()["detail"] and stored_checkpoints(dashboard) == before


@pytest.mark.parametrize(
    ("settings_change", "content", "status", "words"),
    [
        (
            {"checkpoint_max_bytes": 256},
            checkpoint_bytes(TinyNet().state_dict()),
            400,
            ["over the limit of 0 MB", "NEURON_ATLAS_CHECKPOINT_MAX_MB"],
        ),
        (
            {},
            checkpoint_bytes({**TinyNet().state_dict(), "optimizer.moments": torch.zeros(4096)}),
            422,
            ["more than 4x", "cannot be that architecture's"],
        ),
    ],
)
def test_checkpoints_declaring_too_much_are_refused_unread(
    dashboard: Dashboard, settings_change: dict[str, int], content: bytes, status: int, words: list[str]
) -> None:
    settings = replace(dashboard.settings, **settings_change)
    app = create_app(settings, encoder_loader=fake_encoder_loader(dashboard.encoder), catalog=tiny_catalog())
    with TestClient(app, headers=dashboard.admin_headers) as client:
        response = upload(client, content, "tiny.pt")
    assert response.status_code == status, response.text
    assert all(word in response.json()["detail"] for word in words), response.json()["detail"]


# --- the response cache --------------------------------------------------------------------------------------


def test_junk_query_parameters_do_not_grow_the_response_cache(dashboard: Dashboard) -> None:
    settings = replace(dashboard.settings, response_cache_bytes=8 * 2**20)
    app = create_app(settings, encoder_loader=fake_encoder_loader(dashboard.encoder), catalog=tiny_catalog())
    cache = app.state.response_cache
    assert cache.max_bytes == 8 * 2**20
    layer = f"/runs/{dashboard.newer.run_id}/layers/blocks.3"
    with TestClient(app, headers=dashboard.admin_headers) as client:
        page = client.get(layer, params={"page": 2})
        cards = client.get(layer, params={"page": 2, "part": "cards"}, headers={"HX-Request": "true"})
        kept, held = len(cache), cache.bytes_held
        for index in range(300):
            junk = client.get(f"{layer}?utm_{index}={'x' * 200}&page=2&page=02")
            assert junk.status_code == 200 and junk.content == page.content
        again = client.get(f"{layer}?part=cards&page=2&fbclid=1", headers={"HX-Request": "true"})
    assert kept == 2 and again.content == cards.content != page.content
    assert len(cache) == kept and cache.bytes_held == held
