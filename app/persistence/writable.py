"""Whether the database and the data folder take writes, and the reason when they do not, naming the fix."""

from __future__ import annotations

import errno
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from app.core.config import Settings
from app.persistence.db import SQLITE_BUSY_TIMEOUT_MS, create_db_engine, is_sqlite, writer_engine

#: Words of the database drivers' refusals to write (SQLite's and PostgreSQL's): a read-only or unopenable
#: database, a full disk, and a write lock another process held past the wait (busy).
READ_ONLY_MARKERS = ("readonly database", "read-only", "read only", "unable to open database", "disk i/o error")
FULL_MARKERS = ("database or disk is full", "no space left on device", "could not extend file", "disk full")
BUSY_MARKERS = ("database is locked", "database table is locked", "lock timeout", "deadlock detected")
UNWRITABLE_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT)
#: Seconds a client is told to wait (Retry-After) before trying a change the storage refused again.
RETRY_AFTER_S = 30
#: How long the health check waits for SQLite's write lock before calling the database busy (not unwritable).
HEALTH_LOCK_WAIT_MS = 1000
#: How long the health check's answer is kept: a flood of /healthz costs a write check this often at most.
HEALTH_CHECK_INTERVAL_S = 5.0


def _reason(error: DBAPIError) -> str:
    return str(error.orig or error).strip().splitlines()[0]


def database_is_busy(error: BaseException) -> bool:
    """Return whether the database refused for now only: another process held its write lock too long."""
    return isinstance(error, DBAPIError) and any(marker in _reason(error).lower() for marker in BUSY_MARKERS)


def database_write_problem(error: BaseException) -> str | None:
    """Return why the database refused a write (read-only, unwritable file, full disk, locked too long), or None for
    other errors."""
    if not isinstance(error, DBAPIError):
        return None
    reason = _reason(error)
    lowered = reason.lower()
    if any(marker in lowered for marker in FULL_MARKERS):
        return (
            f"The database's disk is full ({reason}); free disk space on the server (or move the database to a "
            "larger disk), then try again."
        )
    if database_is_busy(error):
        return (
            f"The database is busy ({reason}): another process held its write lock longer than "
            f"{SQLITE_BUSY_TIMEOUT_MS / 1000:g} s (a long store or migration); try again in a minute."
        )
    if not any(marker in lowered for marker in READ_ONLY_MARKERS):
        return None
    return (
        f"The database refused the write ({reason}); make the database (and its folder, for SQLite) writable by the "
        "server's user, or point NEURON_ATLAS_DATABASE_URL at a writable database, then try again."
    )


def folder_write_problem(error: BaseException) -> str | None:
    """Return why a file could not be written in the data folder (read-only, no permission, full disk), or None."""
    if not isinstance(error, OSError) or error.errno not in UNWRITABLE_ERRNOS:
        return None
    where = f" at {error.filename}" if error.filename else ""
    return (
        f"The data folder cannot be written{where} ({error.strerror}); make NEURON_ATLAS_DATA_DIR writable by the "
        "server's user (or free disk space), then try again."
    )


def write_problem(settings: Settings, engine: Engine, *, lock_wait_ms: int | None = None) -> str | None:
    """Return why the data folder or the database cannot be written now, or None when both take writes.

    With `lock_wait_ms`, SQLite's write lock is waited for that long only, and a database another process keeps
    locked meanwhile counts as writable (busy, not broken).
    """
    for folder in (settings.data_dir, settings.artifacts_dir, settings.media_dir):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
                pass
        except OSError as error:
            if error.filename is None:
                error.filename = str(folder)
            return folder_write_problem(error) or f"The data folder {folder} cannot be written ({error})."
    try:
        with (
            writer_engine(engine).connect() as connection,
            _lock_wait(connection, lock_wait_ms),
            connection.begin() as transaction,
        ):
            # A write that changes nothing, rolled back: refused by a read-only file, server or transaction.
            connection.execute(text("UPDATE alembic_version SET version_num = version_num"))
            transaction.rollback()
    except DBAPIError as error:
        if lock_wait_ms is not None and database_is_busy(error):
            return None
        return database_write_problem(error) or f"The database cannot be written ({error.orig or error})."
    return None


@contextmanager
def _lock_wait(connection: Connection, wait_ms: int | None) -> Iterator[None]:
    """Make a SQLite connection wait `wait_ms` for the write lock (None: as configured) while the block runs."""
    if wait_ms is None or not is_sqlite(connection):
        yield
        return
    driver = connection.connection.driver_connection  # set before BEGIN: a statement here would begin one
    driver.execute(f"PRAGMA busy_timeout = {int(wait_ms)}")  # type: ignore[union-attr]
    try:
        yield
    finally:
        driver.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")  # type: ignore[union-attr]


class StorageHealth:
    """What /healthz reports: why the data folder or the database refuses writes, checked at most every
    HEALTH_CHECK_INTERVAL_S seconds (one per app; thread-safe)."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self._lock = threading.Lock()
        self._checked_at = -HEALTH_CHECK_INTERVAL_S
        self._problem: str | None = None

    def problem(self) -> str | None:
        """Return why writes are refused now (a recent answer), or None when the folder and the database take them."""
        with self._lock:
            if time.monotonic() - self._checked_at >= HEALTH_CHECK_INTERVAL_S:
                self._problem = write_problem(self.settings, self.engine, lock_wait_ms=HEALTH_LOCK_WAIT_MS)
                self._checked_at = time.monotonic()
            return self._problem


def read_only_consequence(settings: Settings) -> str:
    """Return what a server that cannot write still does: read (pages and the API answer), or, when the database
    cannot even be read (SQLite on a read-only file system without its -shm file), nothing but 503s."""
    engine = create_db_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except DBAPIError as error:
        return (
            f"Reads fail too ({_reason(error)}): every page answers 503 until the database can be opened (on a "
            "read-only file system, SQLite needs its folder writable for the -wal and -shm files)."
        )
    finally:
        engine.dispose()
    return "Pages and the API read; every change answers 503 with this reason."


def start_problem(settings: Settings) -> str | None:
    """Create the data folders and migrate the database; return why either cannot be written, or None."""
    from app.persistence.db import create_db_engine, upgrade_database

    try:
        settings.ensure_dirs()
        upgrade_database(settings)
    except OSError as error:
        problem = folder_write_problem(error)
        if problem is None:
            raise
        return problem
    except DBAPIError as error:
        problem = database_write_problem(error)
        if problem is None:
            raise
        return problem
    engine = create_db_engine(settings.database_url)
    try:
        return write_problem(settings, engine)
    finally:
        engine.dispose()
