"""Whether the database and the data folder take writes, and the reason when they do not, naming the fix."""

from __future__ import annotations

import errno
import tempfile

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from app.core.config import Settings
from app.persistence.db import writer_engine

#: Words of the database drivers' refusals to write (SQLite's and PostgreSQL's).
READ_ONLY_MARKERS = ("readonly database", "read-only", "read only", "unable to open database", "disk i/o error")
UNWRITABLE_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC)


def database_write_problem(error: BaseException) -> str | None:
    """Return why the database refused a write (read-only, unwritable file, full disk), or None for other errors."""
    if not isinstance(error, DBAPIError):
        return None
    reason = str(error.orig or error).strip().splitlines()[0]
    if not any(marker in reason.lower() for marker in READ_ONLY_MARKERS):
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


def write_problem(settings: Settings, engine: Engine) -> str | None:
    """Return why the data folder or the database cannot be written now, or None when both take writes."""
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
        with writer_engine(engine).connect() as connection, connection.begin() as transaction:
            # A write that changes nothing, rolled back: refused by a read-only file, server or transaction.
            connection.execute(text("UPDATE alembic_version SET version_num = version_num"))
            transaction.rollback()
    except DBAPIError as error:
        return database_write_problem(error) or f"The database cannot be written ({error.orig or error})."
    return None


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
