"""Issue #27, item 7: a deleted run's images answer 404 at once (the real server serves a media file only while
something stored references it), `gc` removes the media nothing references and the folders of uploads interrupted
while unpacked, and a start removes those folders too, never one an upload in progress holds."""

from __future__ import annotations

import io
import os
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.cli.main import main
from app.core.config import Settings
from app.jobs.catalogue.sets import store_uploaded_probe_set
from app.persistence.cleanup import ORPHAN_GRACE_S
from app.persistence.db import write_session
from app.persistence.media import ALIAS_FOLDER, MediaStore
from app.persistence.models import Layer, Neuron, ProbeImage, Run, TopImage
from app.persistence.staging import LOCK_NAME, STAGING_PREFIX, staging_folder
from app.read.catalogue.sets import list_probe_sets
from tests.integration.upload_helpers import png_bytes, zip_bytes
from tests.support.dashboard_seed import Dashboard, build_dashboard
from tests.support.served import served

#: Old enough for gc: older than its grace for files a store in progress may still be about to reference.
AGED_S = ORPHAN_GRACE_S + 60


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Dashboard]:
    seeded = build_dashboard(tmp_path / "data")
    yield seeded
    seeded.engine.dispose()


def add_probe_set(dashboard: Dashboard) -> list[str]:
    """Upload a probe set; return its thumbnails' media URLs."""
    images: list[tuple[zipfile.ZipInfo | str, bytes]] = [
        (f"p{index}.png", png_bytes(color=(9, 40 * index, 90))) for index in range(3)
    ]
    store_uploaded_probe_set(dashboard.engine, dashboard.settings, "pets", io.BytesIO(zip_bytes(images)))
    with Session(dashboard.engine) as session:
        return next(view.thumbnails for view in list_probe_sets(session) if view.name == "pets")


def age(*paths: Path) -> None:
    """Make files and folders look written AGED_S ago."""
    then = time.time() - AGED_S
    for path in paths:
        os.utime(path, (then, then))


def interrupted_upload(settings: Settings, name: str, *, locked: bool = True) -> Path:
    """Leave a staging folder as a server killed while unpacking an archive does (its lock released)."""
    folder = settings.probe_sets_dir / f"{STAGING_PREFIX}{name}"
    (folder / "images" / "cats").mkdir(parents=True)
    (folder / "images" / "cats" / "a.png").write_bytes(png_bytes())
    if locked:
        (folder / LOCK_NAME).touch()
    return folder


def media_status(url: str, path: str) -> int:
    return httpx.get(f"{url}/media/{path}", timeout=30).status_code


def test_a_deleted_runs_media_answer_404_at_once_on_the_real_server(fresh: Dashboard, tmp_path: Path) -> None:
    thumbnails = add_probe_set(fresh)
    fresh.engine.dispose()
    view, crop, heatmap = fresh.older.media_files[:3]  # both seeded runs show the same images
    env = {"NEURON_ATLAS_DATA_DIR": str(fresh.settings.data_dir)}
    with served(env, tmp_path / "server.log") as server:
        server.wait_until_up(90)
        admin = fresh.admin_headers
        assert [media_status(server.url, path) for path in (view, crop, heatmap)] == [200, 200, 200]
        older = httpx.delete(f"{server.url}/api/v1/runs/{fresh.older.run_id}", headers=admin, timeout=30)
        assert older.status_code == 204
        assert [media_status(server.url, path) for path in (view, crop, heatmap)] == [200, 200, 200]  # still shown
        newer = httpx.delete(f"{server.url}/api/v1/runs/{fresh.newer.run_id}", headers=admin, timeout=30)
        assert newer.status_code == 204
        gone = httpx.get(f"{server.url}/media/{view}", timeout=30)
        assert [media_status(server.url, path) for path in (crop, heatmap)] == [404, 404]
        thumbnail = httpx.get(f"{server.url}{thumbnails[0]}", timeout=30)
    assert gone.status_code == 404 and "belonged to a run or probe set that was deleted" in gone.text
    assert thumbnail.status_code == 200  # a probe set's thumbnails stay while the set does
    assert (fresh.settings.media_dir / view).is_file()  # 404 at once, though only gc removes the file


def shown_by(dashboard: Dashboard, run_id: int) -> set[str]:
    """Return the media files a run's pages show: its probe images' views, its top images' crops and heatmaps."""
    with Session(dashboard.engine) as session:
        views = session.scalars(select(ProbeImage.view_file).where(ProbeImage.run_id == run_id))
        tops = session.execute(
            select(TopImage.crop_file, TopImage.heatmap_file)
            .join(Neuron, Neuron.id == TopImage.neuron_id)
            .join(Layer, Layer.id == Neuron.layer_id)
            .where(Layer.run_id == run_id)
        )
        return {*views, *(path for row in tops for path in row if path)}


def run_gc(settings: Settings) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NEURON_ATLAS_DATA_DIR", str(settings.data_dir))
        patch.setenv("NEURON_ATLAS_DATABASE_URL", settings.database_url)
        assert main(["gc"]) == 0


def test_gc_removes_unreferenced_media_and_interrupted_uploads(fresh: Dashboard, capsys: pytest.CaptureFixture) -> None:
    settings = fresh.settings
    thumbnails = [url.removeprefix("/media/") for url in add_probe_set(fresh)]
    store = MediaStore(settings.media_dir)
    orphan, young, aliased = (store.put(f"{name}".encode(), ".jpg") for name in ("orphan", "young", "aliased"))
    aliases = settings.media_dir / ALIAS_FOLDER
    store.set_alias(f"{fresh.newer.artifacts_dir.name}/fc/0-0-crop", aliased)  # a live run's cut crop
    store.set_alias(f"{fresh.older.artifacts_dir.name}/fc/0-0-crop", orphan)  # a deleted run's
    dead = interrupted_upload(settings, "killed")
    unlocked_old = interrupted_upload(settings, "before-locks", locked=False)
    unlocked_young = interrupted_upload(settings, "just-made", locked=False)
    age(unlocked_old)
    with TestClient(fresh.app(), headers=fresh.admin_headers) as client:
        assert client.delete(f"/api/v1/runs/{fresh.older.run_id}").status_code == 204
    media = [path for path in settings.media_dir.rglob("*") if path.is_file() and ALIAS_FOLDER not in path.parts]
    age(*(path for path in media if path.name != Path(young).name))
    with staging_folder(settings.probe_sets_dir) as in_progress:  # an upload being unpacked right now
        run_gc(settings)
        assert in_progress.is_dir()
    out = capsys.readouterr().out
    for removed in (settings.media_dir / orphan, aliases / fresh.older.artifacts_dir.name, dead, unlocked_old):
        assert not removed.exists(), removed
        assert f"removed {removed}" in out
    shown = shown_by(fresh, fresh.newer.run_id)
    assert [path for path in [young, aliased, *thumbnails, *shown] if not (settings.media_dir / path).is_file()] == []
    unshown = set(fresh.newer.media_files) - shown  # drawn by the seed, but no top image of either run shows them
    assert unshown and not any((settings.media_dir / path).exists() for path in unshown)
    assert unlocked_young.is_dir() and (aliases / fresh.newer.artifacts_dir.name).is_dir()

    with write_session(fresh.engine) as session:  # the last run goes: its images are nobody's now
        session.execute(delete(Run))
    run_gc(settings)
    assert not any((settings.media_dir / path).exists() for path in fresh.newer.media_files)
    assert all((settings.media_dir / path).is_file() for path in thumbnails)
    assert not (aliases / fresh.newer.artifacts_dir.name).exists() and not (settings.media_dir / aliased).exists()


def test_a_start_removes_interrupted_uploads_but_not_one_in_progress(fresh: Dashboard, tmp_path: Path) -> None:
    settings = fresh.settings
    fresh.engine.dispose()
    dead = interrupted_upload(settings, "killed")
    env = {"NEURON_ATLAS_DATA_DIR": str(settings.data_dir)}
    with staging_folder(settings.probe_sets_dir) as in_progress, served(env, tmp_path / "server.log") as server:
        server.wait_until_up(90)
        assert in_progress.is_dir()
    assert not dead.exists()
    assert f"removed {dead}: an upload interrupted while it was unpacked" in (tmp_path / "server.log").read_text()
