"""Settings from the environment, and the SQLite connection setup every engine gets."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.persistence.db import create_db_engine, upgrade_database
from app.persistence.models import Layer
from dissect_core.errors import DissectError


def test_settings_defaults_and_overrides(tmp_path: Path) -> None:
    settings = Settings.from_env({"NEURON_ATLAS_DATA_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'atlas.db'}"
    assert (settings.media_dir, settings.artifacts_dir, settings.cache_dir) == (
        tmp_path / "media",
        tmp_path / "runs",
        tmp_path / "cache",
    )
    custom = Settings.from_env(
        {
            "NEURON_ATLAS_DATA_DIR": str(tmp_path),
            "NEURON_ATLAS_DATABASE_URL": "postgresql+psycopg://u@h/db",
            "NEURON_ATLAS_UPLOAD_LIMIT_MB": "5",
            "NEURON_ATLAS_HEARTBEAT_S": "2",
            "NEURON_ATLAS_STALE_TIMEOUT_S": "30",
            "NEURON_ATLAS_MAX_ATTEMPTS": "4",
        }
    )
    assert custom.database_url == "postgresql+psycopg://u@h/db"
    assert (custom.upload_limit_bytes, custom.heartbeat_interval_s, custom.stale_timeout_s) == (5 << 20, 2.0, 30.0)
    assert custom.max_attempts == 4


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NEURON_ATLAS_HEARTBEAT_S": "soon"}, "is not a number"),
        ({"NEURON_ATLAS_MAX_ATTEMPTS": "0"}, "too small"),
        ({"NEURON_ATLAS_MAX_ATTEMPTS": "2.5"}, "whole number"),
        ({"NEURON_ATLAS_HEARTBEAT_S": "30", "NEURON_ATLAS_STALE_TIMEOUT_S": "40"}, "more than twice"),
    ],
)
def test_bad_settings_name_the_variable(tmp_path: Path, env: dict[str, str], message: str) -> None:
    with pytest.raises(DissectError, match=message):
        Settings.from_env({"NEURON_ATLAS_DATA_DIR": str(tmp_path), **env})


def test_bad_database_url_is_a_clear_error() -> None:
    with pytest.raises(DissectError, match="NEURON_ATLAS_DATABASE_URL"):
        create_db_engine("nosuchdb://x")


def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    settings = Settings.for_data_dir(tmp_path)
    upgrade_database(settings)
    engine = create_db_engine(settings.database_url)
    with engine.connect() as connection:
        pragma = connection.exec_driver_sql
        assert pragma("PRAGMA journal_mode").scalar() == "wal"
        assert pragma("PRAGMA foreign_keys").scalar() == 1
        assert pragma("PRAGMA busy_timeout").scalar() >= 1000
    with Session(engine) as session, pytest.raises(IntegrityError):
        session.add(Layer(run_id=12345, name="x", position=0, kind="conv", n_units=1))
        session.commit()
    engine.dispose()
