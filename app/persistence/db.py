"""Database engines, sessions and write transactions for SQLite and PostgreSQL, plus Alembic migrations."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import Settings
from app.core.errors import AtlasError

if TYPE_CHECKING:
    from alembic.config import Config

REPO_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = REPO_ROOT / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Any constant works; it only has to be the same in every process that migrates this database.
MIGRATION_LOCK_KEY = 7_245_311


def create_db_engine(url: str) -> Engine:
    """Return an engine for any SQLAlchemy URL; SQLite gets WAL, a busy timeout and foreign keys on."""
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite":
            return create_engine(parsed, pool_pre_ping=True)
    except (ArgumentError, NoSuchModuleError) as error:
        raise AtlasError(
            f"database URL {url!r} is not usable ({error}); set NEURON_ATLAS_DATABASE_URL to e.g. "
            "sqlite:////path/atlas.db or postgresql+psycopg://user@host/dbname"
        ) from None
    if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed)
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine


def _configure_sqlite_connection(dbapi_connection: object, _record: object) -> None:
    # Autocommit at the driver level so that SQLAlchemy's "begin" event decides how each transaction
    # starts (pysqlite would otherwise defer BEGIN until the first write, breaking isolation).
    dbapi_connection.isolation_level = None  # type: ignore[attr-defined]
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    _enable_wal(cursor)
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _enable_wal(cursor: Any) -> None:
    """Switch the database to WAL, retrying while another process holds the lock the switch needs."""
    # SQLite answers "database is locked" at once here, without its busy handler, when two processes open a new
    # database together (both switching it); the mode is kept in the file, so a retry soon finds it set.
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _disable_sqlite_foreign_keys(dbapi_connection: object, _record: object) -> None:
    dbapi_connection.execute("PRAGMA foreign_keys = OFF")  # type: ignore[attr-defined]


def _check_sqlite_foreign_keys(connection: Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise AtlasError(
            f"the migration left {len(broken)} rows pointing at missing rows (first: table {broken[0][0]!r}, "
            f"row {broken[0][1]}, missing in {broken[0][2]!r}); it was rolled back, so report this with the revision"
        )


def _begin_sqlite_transaction(connection: Connection) -> None:
    mode = "IMMEDIATE" if connection.get_execution_options().get("sqlite_immediate") else "DEFERRED"
    connection.exec_driver_sql(f"BEGIN {mode}")


def is_sqlite(engine: Engine | Connection) -> bool:
    """Return True when the engine or connection talks to SQLite."""
    return engine.dialect.name == "sqlite"


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory whose objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def writer_engine(engine: Engine) -> Engine:
    """Return a view of `engine` whose transactions take SQLite's write lock at BEGIN (no-op elsewhere).

    A read-then-write transaction on SQLite must lock at BEGIN: a deferred one that reads first fails
    with "database is locked" instead of waiting when another writer got in between.
    """
    return engine.execution_options(sqlite_immediate=True) if is_sqlite(engine) else engine


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """Yield a session in one write transaction, committed on success and rolled back on any error."""
    with Session(writer_engine(engine), expire_on_commit=False) as session, session.begin():
        yield session


def alembic_config(url: str | None = None) -> Config:
    """Return the Alembic configuration of this repository's migrations folder."""
    from alembic.config import Config  # alembic is imported only by code that migrates

    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_database(settings: Settings, revision: str = "head") -> str | None:
    """Migrate the settings' database up to `revision` (default: latest); return the new revision."""
    return _migrate(settings, "upgrade", revision)


def downgrade_database(settings: Settings, revision: str) -> str | None:
    """Migrate the settings' database down to `revision` (`base` drops every table)."""
    return _migrate(settings, "downgrade", revision)


def current_revision(settings: Settings) -> str | None:
    """Return the database's migration revision, or None when it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    engine = create_db_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str | None:
    """Return the newest migration revision in the repository."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _migrate(settings: Settings, direction: str, revision: str) -> str | None:
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    config = alembic_config()
    engine = create_db_engine(settings.database_url)
    if is_sqlite(engine):
        # SQLite's batch migrations copy a table and drop the original: with foreign keys enforced, that
        # drop would cascade-delete every child row (layers of a run, ...). SQLite's own recipe for schema
        # changes: enforcement off for the migrating connection (it is disposed after), then a check.
        event.listen(engine, "connect", _disable_sqlite_foreign_keys)
    try:
        # One transaction holding the write lock (SQLite) or an advisory lock (PostgreSQL): a server and
        # a worker starting together migrate one after the other, and the second finds nothing to do.
        with writer_engine(engine).begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            config.attributes["connection"] = connection
            config.attributes["data_dir"] = settings.data_dir.resolve()  # 0004 stores paths relative to it
            if direction == "upgrade":
                command.upgrade(config, revision)
            else:
                command.downgrade(config, revision)
            if is_sqlite(connection):
                _check_sqlite_foreign_keys(connection)
            return MigrationContext.configure(connection).get_current_revision()
    except Exception as error:
        if "Can't locate revision" in str(error) or "No such revision" in str(error):
            raise AtlasError(
                f"unknown migration revision {revision!r}; use 'head', 'base', a relative step such as "
                f"'-1', or a revision id (latest is {head_revision()!r})"
            ) from None
        raise
    finally:
        engine.dispose()
