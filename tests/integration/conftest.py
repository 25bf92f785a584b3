"""Fixtures for the integration tests: settings on a fresh SQLite or PostgreSQL database."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from app.core.config import Settings
from app.persistence.db import create_db_engine, upgrade_database
from tests.support.dashboard_seed import Dashboard, build_dashboard

POSTGRES_ENV = "NEURON_ATLAS_TEST_POSTGRES_URL"
SKIP_POSTGRES = (
    f"{POSTGRES_ENV} is not set; start a throwaway server with "
    f'`export {POSTGRES_ENV}="$(scripts/start_postgres.sh)"` to run the PostgreSQL tests'
)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL on the test PostgreSQL server whose search_path is a fresh schema, dropped afterwards."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(SKIP_POSTGRES)
    schema = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_db_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database: a SQLite file, then (when configured) a PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'atlas.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings on a migrated empty database, with fast heartbeats for worker tests."""
    settings = Settings.for_data_dir(
        tmp_path / "data", database_url=database_url, heartbeat_interval_s=0.2, stale_timeout_s=1.5
    )
    settings.ensure_dirs()
    upgrade_database(settings)
    return settings


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    """An engine on the settings' database."""
    engine = create_db_engine(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """Two seeded runs of tinynet (one per test module); the newer has conv1 (64), blocks.3 (2,048) and fc (10)."""
    seeded = build_dashboard(tmp_path_factory.mktemp("dashboard") / "data")
    yield seeded
    seeded.engine.dispose()


@pytest.fixture(scope="module")
def client(dashboard: Dashboard) -> Iterator[TestClient]:
    """A client on the app over the seeded data, authenticated as the seeded admin."""
    with TestClient(dashboard.app(), headers=dashboard.admin_headers) as test_client:
        yield test_client
