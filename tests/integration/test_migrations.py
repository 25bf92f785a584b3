"""Alembic migrations: an empty database upgrades to exactly app.persistence.models' schema and downgrades again."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.jobs.queue import jobs as queue
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


def test_0005_stores_paths_under_the_data_folder_relative_to_it_and_back(tmp_path: Path, database_url: str) -> None:
    from sqlalchemy import JSON, bindparam, text

    from tests.support.dashboard_seed import seed_run

    settings = Settings.for_data_dir(tmp_path / "data", database_url=database_url)
    data = str(settings.data_dir)
    upgrade_database(settings)
    engine = create_db_engine(database_url)
    seed_run(engine, settings)  # its settings name the probe folder under the data folder, absolute
    assert downgrade_database(settings, "0004") == "0004"  # as 0004 left them
    outside = str(tmp_path / "elsewhere")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO catalog_probe_sets (name, kind, folder, n_images, content_hash, thumbnails, created_at) "
                "VALUES ('pets', 'uploaded', :inside, 3, 'a', '[]', CURRENT_TIMESTAMP), "
                "('street', 'folder', :outside, 3, 'b', '[]', CURRENT_TIMESTAMP)"
            ),
            {"inside": f"{data}/probe-sets/ab12", "outside": outside},
        )
        (settings.data_dir / "probe-sets" / "ab12").mkdir(parents=True)
        (settings.data_dir / "probe").mkdir()
        params = {"model": "tinynet", "probe": f"{data}/probe-sets/ab12", "concepts": "20k"}
        insert_job = text(
            "INSERT INTO jobs (kind, params, params_sha256, status, done, total, attempts, cancel_requested, "
            "created_at) VALUES ('dissect', :params, :digest, 'queued', 0, 0, 0, false, CURRENT_TIMESTAMP) RETURNING id"
        ).bindparams(bindparam("params", type_=JSON))
        job_id = connection.execute(insert_job, {"params": params, "digest": queue.params_sha256(params)}).scalar_one()

    def stored() -> tuple[object, ...]:
        with engine.connect() as connection:  # plain SQL: the models may be ahead of the revision read
            settings_json = connection.execute(text("SELECT settings FROM runs")).scalar_one()
            params, digest = connection.execute(
                text("SELECT params, params_sha256 FROM jobs WHERE id = :id"), {"id": job_id}
            ).one()
            folders = dict(connection.execute(text("SELECT name, folder FROM catalog_probe_sets")).tuples().all())
        pinned, params = (value if isinstance(value, dict) else json.loads(value) for value in (settings_json, params))
        return pinned["probe"], pinned["concepts"], params["probe"], digest, folders

    assert upgrade_database(settings) == head_revision()
    probe, concepts, job_probe, digest, folders = stored()
    assert (probe, concepts, job_probe) == ("probe", "seed-words", "probe-sets/ab12")
    assert folders == {"pets": "probe-sets/ab12", "street": outside}
    assert digest == queue.params_sha256({"model": "tinynet", "probe": "probe-sets/ab12", "concepts": "20k"})
    assert downgrade_database(settings, "0004") == "0004"
    probe, concepts, job_probe, _digest, folders = stored()
    assert (probe, job_probe) == (f"{data}/probe", f"{data}/probe-sets/ab12") and concepts == "seed-words"
    assert folders == {"pets": f"{data}/probe-sets/ab12", "street": outside}
    engine.dispose()


def test_0010_drops_the_run_columns_its_record_holds_and_gives_them_back(tmp_path: Path, database_url: str) -> None:
    from sqlalchemy import text

    import dissect_core
    from app.persistence.store import store_run
    from tests.support.dashboard_seed import SOFTMAX_A, TOP_K, seed_run
    from tests.support.fakes import fake_result, make_images

    settings = Settings.for_data_dir(tmp_path / "data", database_url=database_url)
    upgrade_database(settings)
    engine = create_db_engine(database_url)
    store_run(engine, settings, fake_result(make_images(tmp_path / "probe", 4)))  # its record
    seed_run(engine, settings)  # the flat settings of a run stored before the record
    assert downgrade_database(settings, "0009") == "0009"
    query = text("SELECT encoder, similarity, similarity_params, pooling, code_version FROM runs ORDER BY id")
    with engine.connect() as connection:
        rows = [
            (encoder, similarity, params if isinstance(params, dict) else json.loads(params), pooling, version)
            for encoder, similarity, params, pooling, version in connection.execute(query)
        ]
    assert rows == [
        ("tiny_clip:none", "soft_wpmi", {"top_k": 3}, "avg", dissect_core.__version__),
        ("fake:encoder", "soft_wpmi", {"top_k": TOP_K, "a": SOFTMAX_A}, "avg", "0.1.0"),
    ]
    assert upgrade_database(settings) == head_revision()
    assert schema_differences(database_url) == []
    engine.dispose()
