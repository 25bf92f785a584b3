"""Your own image (#23) through the real server and worker on SQLite: a real dissection of a small random ResNet is
stored once; an editor uploads an image to it, the worker runs the run's model on it, and the API and page show the
prediction, the units it drives and the labelled units that fire unusually. Hostile uploads are refused with the
fix named, and store nothing (no row, no job, no media file)."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.jobs.dissections import submit_dissection
from app.jobs.queue.worker import run_worker
from app.persistence.db import create_db_engine, upgrade_database, write_session
from app.persistence.media import ALIAS_FOLDER
from app.persistence.media_refs import referenced_media
from app.persistence.models import Job, Run, RunImage
from app.persistence.store.layout import ArtifactsLayout
from app.read.artifacts.activations import load_layer_activations
from app.web.main import create_app
from dissect_core.config import DissectConfig
from dissect_core.run_record import RunRecord
from tests.conftest import TINY_CLIP, make_probe_folder
from tests.support.dashboard_seed import TEST_HOSTS, add_account

pytestmark = pytest.mark.usefixtures("tiny_clip")
HX = {"HX-Request": "true"}
#: The classes the stored run's record names (random weights name none).
CLASS_NAMES = ("dots", "stripes", *(f"thing {index}" for index in range(2, 1000)))


@dataclass
class Atlas:
    """A stored dissection of a random ResNet-18 (layer3, layer4, fc) and accounts to use it with."""

    settings: Settings
    engine: Engine
    run_id: int
    tokens: dict[str, str]

    def client(self, name: str | None = "erin", **overrides: Any) -> TestClient:
        """Return a client on a new app (its settings overridden), with `name`'s bearer token (None: anonymous)."""
        headers = {"Authorization": f"Bearer {self.tokens[name]}"} if name else {}
        return TestClient(create_app(replace(self.settings, **overrides)), headers=headers)

    def stored(self) -> tuple[int, int, int]:
        """Return how many uploaded images, jobs and media files are stored."""
        with Session(self.engine) as session:
            images = session.scalar(select(func.count()).select_from(RunImage)) or 0
            jobs = session.scalar(select(func.count()).select_from(Job)) or 0
        media = self.settings.media_dir
        files = [path for path in media.rglob("*") if path.is_file() and ALIAS_FOLDER not in path.parts]
        return images, jobs, len(files)

    def work_once(self) -> int:
        """Run the worker for one job; return how many it ran."""
        return run_worker(self.settings, once=True, handle_signals=False)


@pytest.fixture(scope="module")
def atlas(tmp_path_factory: pytest.TempPathFactory, tiny_clip: str) -> Iterator[Atlas]:
    root = tmp_path_factory.mktemp("run_images")
    settings = Settings.for_data_dir(root / "data", allowed_hosts=TEST_HOSTS, preload_runs=0)
    settings.ensure_dirs()
    upgrade_database(settings)
    engine = create_db_engine(settings.database_url)
    concepts = root / "concepts.txt"
    concepts.write_text("dots\nstripes\ncat\ndog\nsky\n")
    config = DissectConfig(
        model="resnet18", weights="none", layers=("layer3", "layer4", "fc"),
        probe=str(make_probe_folder(root / "probe")), concepts=str(concepts), encoder=TINY_CLIP,
        similarity_params={"top_k": 4}, n_folds=0, preprocessing={"resize": 64, "crop": 64},
    )  # fmt: skip
    with write_session(engine) as session:
        job_id = submit_dissection(session, config)
    assert run_worker(settings, once=True, handle_signals=False) == 1
    with write_session(engine) as session:
        run = session.scalars(select(Run).join(Job, Job.run_id == Run.id).where(Job.id == job_id)).one()
        record = RunRecord.from_json(run.settings)
        run.settings = replace(record, identities=replace(record.identities, class_names=CLASS_NAMES)).to_json()
        run_id = run.id
    tokens = {name: add_account(engine, name, role) for name, role in (("erin", "editor"), ("vic", "viewer"))}
    yield Atlas(settings, engine, run_id, tokens)
    engine.dispose()


def png_bytes(width: int = 80, height: int = 60, seed: int = 1) -> bytes:
    """Return a PNG of random pixels."""
    pixels = (np.random.default_rng(seed).random((height, width, 3)) * 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """Return a small PNG whose header declares `width` x `height` pixels (an image bomb)."""
    data = png_bytes(8, 8)
    header = struct.pack(">II", width, height) + data[24:29]
    chunk = b"IHDR" + header
    return data[:12] + chunk + struct.pack(">I", zlib.crc32(chunk)) + data[33:]


def upload(atlas: Atlas, data: bytes, name: str | None = "erin", **overrides: Any) -> Any:
    """POST an image to the run's upload API as `name`; return the answer."""
    client = atlas.client(name, **overrides)
    return client.post(f"/api/v1/runs/{atlas.run_id}/images", files={"image": ("mine.png", data, "image/png")})


def test_an_uploaded_image_is_read_by_the_worker_and_shown_like_a_probe_image(atlas: Atlas) -> None:
    data = png_bytes()
    created = upload(atlas, data)
    assert created.status_code == 202, created.text
    body = created.json()
    assert set(body) == {"id", "job_id", "url"} and body["url"] == f"/runs/{atlas.run_id}/uploads/{body['id']}"
    api = f"/api/v1/runs/{atlas.run_id}/uploads/{body['id']}"
    queued = atlas.client(None).get(api).json()
    assert queued["status"] == "queued" and queued["prediction"] == [] and queued["layers"] == []
    assert 'hx-trigger="every 1s"' in atlas.client(None).get(body["url"]).text  # polls until read

    assert atlas.work_once() == 1
    view = atlas.client(None).get(api).json()
    assert (view["status"], view["run_id"], view["width"], view["height"]) == ("succeeded", atlas.run_id, 80, 60)
    prediction = view["prediction"]
    assert len(prediction) == 5 and prediction[0]["class_name"] == CLASS_NAMES[prediction[0]["class_index"]]
    probabilities = [item["probability"] for item in prediction]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1.0001
    assert view["why"] and {unit["layer"] for unit in view["why"]} == {"layer4"}  # avgpool(layer4) feeds fc
    assert [layer["layer"] for layer in view["layers"]] == ["layer3", "layer4", "fc"]
    assert all(len(layer["by_activation"]) == 8 and not layer["unavailable"] for layer in view["layers"])
    assert all(unit["percentile"] >= 99 and unit["label"] for unit in view["unusual"])
    assert view["n_unusual"] >= len(view["unusual"])

    with Session(atlas.engine) as session:
        reading = session.scalars(select(RunImage.result).where(RunImage.id == body["id"])).one()
        run = session.scalars(select(Run).where(Run.id == atlas.run_id)).one()
        layout = ArtifactsLayout.of_run(run.artifacts_dir, atlas.settings.data_dir)
    assert reading is not None
    # The prediction is the fc layer's reading (its pooled activation is the logits), and each percentile is the
    # share of the 24 probe images below the image's activation (ties half).
    fc = torch.tensor(reading["layers"]["fc"]["activations"])
    assert int(fc.argmax()) == prediction[0]["class_index"]
    stored = load_layer_activations(layout, "layer4", 24)
    activation = torch.tensor(reading["layers"]["layer4"]["activations"])
    expected = 100 * ((stored < activation).sum(0) + 0.5 * (stored == activation).sum(0)) / 24
    assert torch.allclose(torch.tensor(reading["layers"]["layer4"]["percentiles"]), expected, atol=1e-3)

    page = atlas.client(None).get(body["url"])
    assert page.status_code == 200 and "Why this prediction" in page.text and prediction[0]["class_name"] in page.text
    assert "Units that fire unusually" in page.text and 'hx-trigger="every 1s"' not in page.text
    assert 'name="image"' not in page.text  # visitors get no upload form
    assert atlas.client(None).get(view["image_url"]).content == data  # the upload is served while its row exists
    assert 'name="image"' in atlas.client().get(body["url"]).text


def test_an_image_is_read_without_the_runs_probe_folder(atlas: Atlas) -> None:
    with Session(atlas.engine) as session:
        probe = Path(RunRecord.from_json(session.get(Run, atlas.run_id).settings).config.probe)  # type: ignore[union-attr]
    moved = probe.with_name("probe-moved-away")
    probe.rename(moved)  # one image needs the model and the stored activations, not the probe images
    try:
        created = upload(atlas, png_bytes(seed=7))
        assert created.status_code == 202, created.text
        assert atlas.work_once() == 1
        view = atlas.client(None).get(f"/api/v1/runs/{atlas.run_id}/uploads/{created.json()['id']}").json()
    finally:
        moved.rename(probe)
    assert view["status"] == "succeeded", view.get("error")
    assert view["prediction"] and all(not layer["unavailable"] for layer in view["layers"])
    with Session(atlas.engine) as session:
        reading = session.scalars(select(RunImage.result).where(RunImage.id == created.json()["id"])).one()
    assert reading is not None and reading["n_probe_images"] == 24


def test_an_identical_upload_reuses_the_image_and_its_job(atlas: Atlas) -> None:
    data = png_bytes(seed=7)
    first = upload(atlas, data).json()
    before = atlas.stored()
    assert upload(atlas, data).json() == first
    assert atlas.stored() == before
    other = upload(atlas, png_bytes(seed=8)).json()
    assert other["id"] != first["id"] and other["job_id"] != first["job_id"]


def test_the_run_page_lists_uploads_and_offers_editors_the_form(atlas: Atlas) -> None:
    panel = atlas.client().get(f"/runs/{atlas.run_id}/uploads", headers=HX)
    assert panel.status_code == 200 and 'id="run-uploads"' in panel.text and 'name="image"' in panel.text
    anonymous = atlas.client(None).get(f"/runs/{atlas.run_id}/uploads", headers=HX).text
    assert "/uploads/" in anonymous and 'name="image"' not in anonymous
    assert f'hx-get="/runs/{atlas.run_id}/uploads"' in atlas.client(None).get(f"/runs/{atlas.run_id}").text


def test_the_form_queues_the_image_and_opens_its_page(atlas: Atlas) -> None:
    answer = atlas.client().post(
        f"/runs/{atlas.run_id}/uploads",
        files={"image": ("form.png", png_bytes(seed=11), "image/png")},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"].startswith(f"/runs/{atlas.run_id}/uploads/")


def truncated_png() -> bytes:
    """Return the first two thirds of a PNG (Pillow's verify finds its chunks cut)."""
    data = png_bytes(200, 200)
    return data[: len(data) * 2 // 3]


def truncated_jpeg() -> bytes:
    """Return the first two thirds of a JPEG (its header reads; only a full decode finds the pixels missing)."""
    buffer = io.BytesIO()
    Image.open(io.BytesIO(png_bytes(200, 200))).save(buffer, format="JPEG")
    data = buffer.getvalue()
    return data[: len(data) * 2 // 3]


@pytest.mark.parametrize(
    ("data", "overrides", "status", "named"),
    [
        (b"hello, not an image", {}, 422, "not an image Pillow can read"),
        (b"", {}, 422, "empty"),
        (truncated_png(), {}, 422, "not an image Pillow can read"),
        (truncated_jpeg(), {}, 422, "damaged"),
        (bomb_png(), {}, 422, "more than 40,000,000 pixels"),
        (png_bytes(400, 400), {"image_max_bytes": 4096}, 413, "NEURON_ATLAS_IMAGE_MAX_MB"),
        (b"GIF87a" + b"\x00" * 100, {}, 422, "not an image Pillow can read"),
    ],
    ids=["not-an-image", "empty", "truncated-png", "truncated-jpeg", "bomb", "oversized", "broken-gif"],
)
def test_hostile_uploads_get_a_clear_error_and_store_nothing(
    atlas: Atlas, data: bytes, overrides: dict[str, Any], status: int, named: str
) -> None:
    before = atlas.stored()
    answer = upload(atlas, data, **overrides)
    assert answer.status_code == status, answer.text
    assert named in str(answer.json()), answer.json()
    assert atlas.stored() == before


def test_an_image_in_another_format_is_refused_with_the_formats_named(atlas: Atlas) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buffer, format="TIFF")
    before = atlas.stored()
    answer = upload(atlas, buffer.getvalue())
    assert answer.status_code == 422 and "PNG, JPEG, WebP or GIF" in answer.json()["detail"], answer.text
    assert atlas.stored() == before


def test_anonymous_gets_401_a_viewer_403_and_a_missing_field_422(atlas: Atlas) -> None:
    before = atlas.stored()
    assert upload(atlas, png_bytes(seed=3), name=None).status_code == 401
    assert upload(atlas, png_bytes(seed=3), name="vic").status_code == 403
    missing = atlas.client().post(f"/api/v1/runs/{atlas.run_id}/images", files={"other": ("a.png", b"x")})
    assert missing.status_code == 422 and "`image`" in missing.json()["detail"]
    assert atlas.stored() == before


def test_an_unknown_run_or_image_is_404(atlas: Atlas) -> None:
    assert upload_to(atlas, 999, png_bytes(seed=5)).status_code == 404
    assert atlas.client(None).get(f"/api/v1/runs/{atlas.run_id}/uploads/999").status_code == 404


def upload_to(atlas: Atlas, run_id: int, data: bytes) -> Any:
    return atlas.client().post(f"/api/v1/runs/{run_id}/images", files={"image": ("x.png", data, "image/png")})


def test_uploaded_files_count_as_referenced_media_for_gc(atlas: Atlas) -> None:
    assert upload(atlas, png_bytes(seed=13)).status_code == 202
    with Session(atlas.engine) as session:
        files = set(session.scalars(select(RunImage.file)))
        referenced = referenced_media(session, atlas.settings.media_dir)
    assert files and files <= referenced
