"""Issue #27, item 8: storage that refuses answers 503 with the reason and Retry-After, never a bare 500 — a database
that is full, locked past the wait, or on a read-only file system, and a full disk while an archive is unpacked —
and /healthz reports a data folder that cannot be written as degraded.

The read-only folder and the full disk are real: the server runs in a user and mount namespace (`unshare`) where
the data folder is bind-mounted read-only, or the probe sets' folder is a 256 KB tmpfs. The locked and the full
database are real SQLite files: one held by another connection's exclusive lock, one capped by max_page_count.
"""

from __future__ import annotations

import io
import shutil
import sqlite3
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import event

from app.persistence.writable import RETRY_AFTER_S
from tests.support.dashboard_seed import Dashboard, build_dashboard
from tests.support.served import served

SECRET = "s" * 40
RETRY_AFTER = str(RETRY_AFTER_S)


def can_unshare() -> bool:
    """Return whether this machine lets a process make its own user and mount namespace (as the tests need)."""
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rm", "true"], capture_output=True, check=False).returncode == 0


needs_unshare = pytest.mark.skipif(not can_unshare(), reason="needs `unshare -rm` (user and mount namespaces)")


def in_namespace(script: str, folder: Path) -> tuple[str, ...]:
    """Return a command prefix running `script` (with $0 the folder) in a new namespace, then its arguments."""
    return ("unshare", "-rm", "sh", "-c", f'{script} && exec "$@"', str(folder))


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Dashboard]:
    seeded = build_dashboard(tmp_path / "data")
    yield seeded
    seeded.engine.dispose()


@needs_unshare
def test_a_read_only_data_folder_is_degraded_on_healthz_and_answers_503_not_500(
    fresh: Dashboard, tmp_path: Path
) -> None:
    data = fresh.settings.data_dir
    fresh.engine.dispose()
    read_only = in_namespace('mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" "$0"', data)
    env = {"NEURON_ATLAS_DATA_DIR": str(data), "NEURON_ATLAS_SECRET_KEY": SECRET}
    log = tmp_path / "server.log"
    with served(env, log, prefix=read_only) as server:
        server.wait_until_up(90)
        health = httpx.get(f"{server.url}/healthz", timeout=30)
        token = httpx.get(f"{server.url}/api/v1/runs", headers=fresh.admin_headers, timeout=30)
        page = httpx.get(f"{server.url}/", timeout=30)
    assert health.status_code == 200 and health.json()["status"] == "degraded", health.text
    assert "Read-only file system" in health.json()["problem"] and str(data) not in health.json()["problem"]
    for answer in (token, page):  # SQLite cannot even read here: it needs its -shm file
        assert answer.status_code == 503 and answer.headers["retry-after"] == RETRY_AFTER, answer.text
        assert "unable to open database file" in answer.text
    started = log.read_text()
    assert "read-only:" in started and "Reads fail too" in started  # the start message no longer claims reads work


@needs_unshare
def test_a_full_disk_while_unpacking_an_archive_says_so_with_503(fresh: Dashboard, tmp_path: Path) -> None:
    data = fresh.settings.data_dir
    fresh.engine.dispose()
    fresh.settings.probe_sets_dir.mkdir()
    small_disk = in_namespace('mount -t tmpfs -o size=256k tmpfs "$0/probe-sets"', data)
    noise = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as packed:
        for index in range(6):  # about 200 KB each, incompressible: more than the disk holds
            image = io.BytesIO()
            Image.fromarray(np.roll(noise, index, axis=0)).save(image, format="PNG")
            packed.writestr(f"noise/{index}.png", image.getvalue())
    env = {"NEURON_ATLAS_DATA_DIR": str(data)}
    with served(env, tmp_path / "server.log", prefix=small_disk) as server:
        server.wait_until_up(90)
        files = {"archive": ("noise.zip", archive.getvalue())}
        answer = httpx.post(
            f"{server.url}/api/v1/probe-sets", data={"name": "noise"}, files=files, headers=fresh.admin_headers
        )
        listed = httpx.get(f"{server.url}/api/v1/probe-sets", timeout=30).json()["items"]
    assert answer.status_code == 503 and answer.headers["retry-after"] == RETRY_AFTER, answer.text
    detail = answer.json()["detail"]
    assert "the server's disk is full (No space left on device)" in detail and "free disk space" in detail
    assert "nothing was kept" in detail and str(data) not in detail
    assert "noise" not in [item["name"] for item in listed]


def typed_concept(client: TestClient, run_id: int, index: int) -> Any:  # the test client's own Response type
    text = f"{'striped ' * 20}{index}"
    return client.post(f"/api/v1/runs/{run_id}/typed-concepts", data={"text": text})


def test_a_database_locked_past_the_wait_answers_503_with_retry_after(
    fresh: Dashboard, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.persistence.db.SQLITE_BUSY_TIMEOUT_MS", 300)  # SQLite waits this long for the lock
    holder = sqlite3.connect(fresh.settings.data_dir / "atlas.db", isolation_level=None)
    with TestClient(fresh.app(), headers=fresh.admin_headers) as client:
        assert typed_concept(client, fresh.older.run_id, 0).status_code == 201
        holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        try:
            locked = typed_concept(client, fresh.older.run_id, 1)
            health = client.get("/healthz")
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        again = typed_concept(client, fresh.older.run_id, 1)
    assert locked.status_code == 503 and locked.headers["retry-after"] == RETRY_AFTER, locked.text
    assert "The database is busy (database is locked)" in locked.json()["detail"]
    assert "try again" in locked.json()["detail"]
    assert health.json() == {"status": "ok"}  # busy is not broken: reads and, soon, writes go on
    assert again.status_code == 201


def test_a_full_database_answers_503_with_the_reason(fresh: Dashboard) -> None:
    app = fresh.app()
    engine = app.state.engine

    @event.listens_for(engine, "connect")
    def no_more_pages(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.execute("PRAGMA max_page_count = 1")  # SQLite keeps it at the file's size: full now

    engine.dispose()
    answers: list[Any] = []
    with TestClient(app, headers=fresh.admin_headers) as client:
        started = time.monotonic()
        while not answers or answers[-1].status_code == 201:
            assert len(answers) < 200 and time.monotonic() - started < 60, "the database never filled"
            answers.append(typed_concept(client, fresh.older.run_id, len(answers)))
        pages = client.get(f"/runs/{fresh.older.run_id}")
    full = answers[-1]
    assert full.status_code == 503 and full.headers["retry-after"] == RETRY_AFTER, full.text
    assert "The database's disk is full (database or disk is full)" in full.json()["detail"]
    assert "free disk space" in full.json()["detail"]
    assert pages.status_code == 200  # reading goes on
