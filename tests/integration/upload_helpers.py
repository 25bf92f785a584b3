"""Helpers of the catalogue and upload tests: checkpoints, images and archives to send, and the check that a
refused request leaves nothing behind (no file under the data dir, no row, no job)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import httpx
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.cli.main import main
from app.persistence.models import CatalogConceptSet, CatalogProbeSet, Job, Run, TargetModel
from app.web.main import create_app
from tests.support.dashboard_seed import Dashboard, TinyNet, fake_encoder_loader, tiny_catalog

DB_FILES = ("atlas.db", "atlas.db-wal", "atlas.db-shm", "atlas.db-journal")


def checkpoint_bytes() -> bytes:
    buffer = io.BytesIO()
    torch.save(TinyNet().state_dict(), buffer)
    return buffer.getvalue()


def upload(client: TestClient, *, filename: str = "tiny.pt", **fields: object) -> httpx.Response:
    data: dict[str, Any] = {"architecture": "tinynet", "layers": ["conv", "fc"], "probe": "cifar100"}
    data.update(fields)
    return client.post("/api/v1/uploads", data=data, files={"checkpoint": (filename, checkpoint_bytes())})


def png_bytes(
    size: tuple[int, int] = (16, 12), color: tuple[int, int, int] = (200, 40, 40), mode: str = "RGB"
) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color if mode == "RGB" else 1).save(buffer, format="PNG")
    return buffer.getvalue()


def zip_bytes(members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for info, data in members:
            archive.writestr(info, data)
    return buffer.getvalue()


def three_images() -> list[tuple[zipfile.ZipInfo | str, bytes]]:
    return [
        ("cats/a.png", png_bytes(color=(10, 20, 30))),
        ("cats/b.png", png_bytes(color=(40, 50, 60))),
        ("dogs/c.png", png_bytes(color=(70, 80, 90))),
        ("readme.txt", b"not an image: skipped"),
        ("__MACOSX/cats/._a.png", b"resource fork: skipped"),
    ]


def post_probe_set(client: TestClient, name: str, archive: bytes, filename: str = "probe.zip") -> httpx.Response:
    return client.post("/api/v1/probe-sets", data={"name": name}, files={"archive": (filename, archive)})


def stored_state(dashboard: Dashboard) -> tuple[set[str], dict[str, int]]:
    """Every file under the data dir (but the database) and the rows an upload could add."""
    root = dashboard.settings.data_dir
    files = {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file() and path.name not in DB_FILES}
    with Session(dashboard.engine) as session:
        rows = {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Job, TargetModel, CatalogProbeSet, CatalogConceptSet, Run)
        }
    return files, rows


@contextmanager
def nothing_stored(dashboard: Dashboard) -> Iterator[None]:
    """Assert the block adds no file under the data dir, no row and no job."""
    before = stored_state(dashboard)
    yield
    assert stored_state(dashboard) == before


@contextmanager
def bounded_client(dashboard: Dashboard, **bounds: Any) -> Iterator[TestClient]:
    """A client on an app over the same data whose settings carry other bounds."""
    app = create_app(
        replace(dashboard.settings, **bounds), encoder_loader=fake_encoder_loader(), catalog=tiny_catalog()
    )
    with TestClient(app, headers=dashboard.admin_headers) as client:
        yield client


def refused(response: httpx.Response, status: int, *words: str) -> str:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert all(word in detail for word in words), detail
    return detail


def cli(dashboard: Dashboard, *argv: str) -> int:
    """Run `neuron-atlas ARGV` on the dashboard's data folder; return its exit status."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NEURON_ATLAS_DATA_DIR", str(dashboard.settings.data_dir))
        patch.delenv("NEURON_ATLAS_DATABASE_URL", raising=False)
        return main(list(argv))
