"""Alembic migrations: an empty database upgrades to exactly app.persistence.models' schema and downgrades again."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.jobs import queue
from app.persistence.db import create_db_engine, current_revision, downgrade_database, head_revision, upgrade_database
from app.persistence.models import Base, Job

SPAWN = multiprocessing.get_context("spawn")


def schema_differences(url: str) -> list:
    """Return what autogenerate would change to make the database match app.persistence.models (empty if identical)."""
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            return compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    """Return the database's table names."""
    engine = create_db_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_matches_models_and_downgrade_empties(tmp_path: Path, database_url: str) -> None:
    settings = Settings.for_data_dir(tmp_path, database_url=database_url)
    assert current_revision(settings) is None

    assert upgrade_database(settings) == head_revision()
    assert schema_differences(database_url) == []
    assert table_names(database_url) == set(Base.metadata.tables) | {"alembic_version"}

    assert downgrade_database(settings, "base") is None
    assert table_names(database_url) == {"alembic_version"}

    assert upgrade_database(settings) == head_revision()
    assert schema_differences(database_url) == []


def test_upgrade_again_keeps_data(tmp_path: Path, database_url: str) -> None:
    settings = Settings.for_data_dir(tmp_path, database_url=database_url)
    upgrade_database(settings)
    engine = create_db_engine(database_url)
    with Session(engine) as session:
        queue.enqueue(session, {"model": "resnet18"})
        session.commit()
    upgrade_database(settings)
    with Session(engine) as session:
        assert [job.params for job in session.query(Job)] == [{"model": "resnet18"}]
    engine.dispose()


def test_processes_starting_together_both_migrate(tmp_path: Path, database_url: str) -> None:
    settings = Settings.for_data_dir(tmp_path, database_url=database_url)
    processes = [SPAWN.Process(target=upgrade_database, args=(settings,)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    assert current_revision(settings) == head_revision()
    assert schema_differences(database_url) == []


def test_downgrading_past_the_accounts_keeps_every_run_and_its_rows(tmp_path: Path, database_url: str) -> None:
    from sqlalchemy import text

    from tests.support.dashboard_seed import seed_run

    settings = Settings.for_data_dir(tmp_path / "data", database_url=database_url)
    upgrade_database(settings)
    engine = create_db_engine(database_url)
    seed_run(engine, settings)
    tables = ("runs", "layers", "neurons", "top_images", "probe_images", "jobs")

    def counts() -> dict[str, int]:
        with engine.connect() as connection:
            return {table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() for table in tables}

    before = counts()
    assert before["layers"] == 3 and before["neurons"] > 0
    assert downgrade_database(settings, "0001") == "0001"
    assert counts() == before  # SQLite's batch copies did not cascade-delete a run's rows
    assert upgrade_database(settings) == head_revision()
    assert counts() == before and schema_differences(database_url) == []
    engine.dispose()
