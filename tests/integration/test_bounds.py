"""The real app under hostile or unlucky input: damaged run artifacts, checkpoint bombs and odd suffixes,
junk query parameters against the response cache."""

from __future__ import annotations

import io
import json
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
from tests.support.dashboard_seed import Dashboard, TinyNet, build_dashboard, fake_encoder_loader, tiny_catalog
from tests.support.served import DiskWatch, post_chunked, reset_peak, served, status_bytes


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


# --- HEAD and the schema's word on tokens ----------------------------------------------------------------------


def test_head_answers_wherever_get_does_with_the_same_head_and_no_body(dashboard: Dashboard) -> None:
    run_id = dashboard.newer.run_id
    media = dashboard.newer.media_files[0]
    addresses = ["/api/v1/runs", f"/api/v1/runs/{run_id}", f"/runs/{run_id}", "/", f"/media/{media}", "/healthz"]
    with TestClient(dashboard.app()) as client:
        for address in addresses:
            got, head = client.get(address), client.head(address)
            assert head.status_code == got.status_code == 200, address
            assert head.content == b"" and head.headers["content-type"] == got.headers["content-type"], address
            assert head.headers["content-length"] == str(len(got.content)), address
        missing = client.head("/api/v1/runs/999999")
        assert missing.status_code == 404 and missing.content == b""
        post_only = client.head("/api/v1/uploads")
        assert post_only.status_code == 405 and post_only.headers["allow"] == "POST"
        options = client.options("/api/v1/jobs")
        assert options.status_code == 405 and options.headers["allow"] == "GET, HEAD"
        assert client.options("/api/v1/runs").headers["allow"] == "GET, HEAD, POST"  # POST pushes a run
        schema = client.get("/openapi.json").json()
    assert not [path for path, operations in schema["paths"].items() if "head" in operations]


def test_the_schema_declares_tokens_required_for_changes_and_optional_for_reads(dashboard: Dashboard) -> None:
    with TestClient(dashboard.app()) as client:
        schema = client.get("/openapi.json").json()
        anonymous = client.post(f"/api/v1/runs/{dashboard.older.run_id}/relabel")
        bad_token = client.get("/api/v1/runs", headers={"Authorization": "Bearer not-a-token"})
    assert schema["components"]["securitySchemes"]["bearerToken"] | {"description": ""} == {
        "type": "http",
        "scheme": "bearer",
        "description": "",
    }
    paths = schema["paths"]
    required, optional = [{"bearerToken": []}], [{}, {"bearerToken": []}]
    for path, method in [
        ("/api/v1/uploads", "post"),
        ("/api/v1/runs", "post"),
        ("/api/v1/runs/{run_id}/relabel", "post"),
        ("/api/v1/runs/{run_id}", "delete"),
        ("/api/v1/me", "get"),
    ]:
        assert paths[path][method]["security"] == required, (path, method)
    for path in ("/api/v1/runs", "/api/v1/runs/{run_id}", "/api/v1/jobs", "/api/v1/probe-sets"):
        assert paths[path]["get"]["security"] == optional, path
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    assert bad_token.status_code == 401 and "unknown or revoked" in bad_token.json()["detail"]


# --- the real server's memory and disk under a bomb and a chunked flood (measured from /proc) --------------------

MiB = 2**20
#: The bounds the real server holds to, with generous margins: its peak resident size grows by less than this while
#: it refuses a bomb or a chunked flood, and what it holds on disk by less than the upload limit plus this.
MEMORY_BOUND = 300 * MiB
DISK_MARGIN = 32 * MiB
#: The upload limit the measured server runs with (lower than the default 200 MB, for a test's time).
UPLOAD_LIMIT_MB = 64


def test_the_real_server_stays_bounded_under_a_bomb_and_a_chunked_flood(tmp_path: Path) -> None:
    """A 1 GiB deflated torch zip (a few MB; twice) and a 256 MB chunked body to `neuron-atlas serve`: all refused,
    its memory and disk within bounds (VmHWM reset before each where Linux lets it, else against the peak so far)."""
    seeded = build_dashboard(tmp_path / "data")
    seeded.engine.dispose()
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {
        "NEURON_ATLAS_DATA_DIR": str(seeded.settings.data_dir),
        "NEURON_ATLAS_UPLOAD_LIMIT_MB": str(UPLOAD_LIMIT_MB),
        "TMPDIR": str(temp),
    }
    bomb = tmp_path / "bomb.pt"
    with served(env, tmp_path / "server.log") as server:
        server.wait_until_up(90, while_waiting=lambda: write_deflated_torch_bomb(bomb, 2**30))
        pid, auth = server.process.pid, seeded.admin_headers
        # Warm: the architecture the uploads name is built (on the meta device) and its facts kept.
        warm = httpx.get(f"{server.url}/api/v1/architectures/resnet18/layers", headers=auth, timeout=60)
        assert warm.status_code == 200, warm.text
        disk = DiskWatch(pid, (seeded.settings.data_dir, temp))
        fields = {"architecture": "resnet18", "layers": "fc", "probe": "cifar100", "concepts": "20k"}

        def send_bomb() -> tuple[int, str]:
            files = {"checkpoint": ("bomb.pt", bomb.read_bytes())}
            answer = httpx.post(f"{server.url}/api/v1/uploads", data=fields, files=files, headers=auth, timeout=60)
            return answer.status_code, answer.json()["detail"]

        def send_flood() -> tuple[int, str]:
            boundary = "atlasboundary"
            head = (
                f'--{boundary}\r\nContent-Disposition: form-data; name="checkpoint"; filename="big.pt"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            headers = {**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"}
            answer = post_chunked(server.port, "/api/v1/uploads", headers, head, 256 * MiB)
            sent.append(answer.sent_bytes)
            return answer.status, json.loads(answer.body)["detail"]

        sent: list[int] = []
        measured = {}
        for name, send in (("bomb", send_bomb), ("bomb again", send_bomb), ("chunked", send_flood)):
            reset = reset_peak(pid)
            base = status_bytes(pid, "VmRSS") if reset else status_bytes(pid, "VmHWM")
            with disk.watching():
                before = disk.held()
                status, detail = send()
            growth, on_disk = max(0, status_bytes(pid, "VmHWM") - base), disk.peak - before
            measured[name] = (status, detail, growth, on_disk)
            print(f"{name}: {status} {detail!r}; peak RSS +{growth / MiB:.1f} MB over {base / MiB:.0f} MB", end="")
            print(f" ({'reset' if reset else 'the peak so far'}), disk +{on_disk / MiB:.1f} MB")
    print(f"chunked: {sent[0] / MiB:.1f} MB of 256 MB sent before the answer")
    for name in ("bomb", "bomb again"):
        bomb_status, bomb_detail, bomb_memory, bomb_disk = measured[name]
        assert bomb_status == 400 and "compressed" in bomb_detail, bomb_detail
        assert bomb_memory < MEMORY_BOUND and bomb_disk < DISK_MARGIN + bomb.stat().st_size
    flood_status, flood_detail, flood_memory, flood_disk = measured["chunked"]
    assert flood_status == 400 and "while it was arriving" in flood_detail, flood_detail
    assert flood_memory < MEMORY_BOUND and flood_disk < UPLOAD_LIMIT_MB * MiB + DISK_MARGIN
    assert sent[0] < 256 * MiB  # refused once past the limit, not after the whole body
