"""Paths relative to the data folder everywhere: run settings, the rest of job params, catalogued probe folders and
concept files (0004 did runs' artifacts, models' checkpoints and jobs' checkpoint and concepts).

The migration knows the data folder when the app runs it (`neuron-atlas migrate`, `serve`, `worker`): then every
absolute path under that folder is rewritten relative to it. Run by the plain `alembic` command it does not, and
rewrites nothing; the app reads both forms, so such a database keeps working where it is.

Revision ID: 0005
Revises: 0004
Create Date: 2025-03-08 00:00:00
"""

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Run settings that may name a file or folder (as of this revision).
RUN_PATH_SETTINGS = ("probe", "concepts", "checkpoint", "labels_file", "model")
#: Job params 0004 left absolute.
JOB_PATH_PARAMS = ("probe", "labels_file", "model")
#: Values of those settings that name no file (as of this revision): built-in sets, never paths.
BUILT_IN = {"probe": {"cifar100"}, "concepts": {"20k", "wordfreq-20k", "clip-dissect-20k", "imagenet", "cifar100"}}
TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript")
#: Catalogue tables and their path column.
CATALOGUE_PATHS = (("catalog_probe_sets", "folder"), ("catalog_concept_sets", "file"))

Convert = Callable[[str, object, Path], object]


def _names_a_path(key: str, value: object) -> bool:
    if not isinstance(value, str) or not value.strip() or value.strip() in BUILT_IN.get(key, set()):
        return False
    return key != "model" or value.lower().endswith(TORCHSCRIPT_SUFFIXES)


def _relative(key: str, value: object, data_dir: Path) -> object:
    """Return an absolute path under `data_dir` made relative to it; anything else unchanged."""
    if not _names_a_path(key, value) or not str(value).startswith("/"):
        return value
    try:
        return Path(str(value)).relative_to(data_dir).as_posix()
    except ValueError:
        return value


def _absolute(key: str, value: object, data_dir: Path) -> object:
    """Return a relative path of something under `data_dir` made absolute (as the revisions before this one stored
    it); anything else (a name that is no path, a file since deleted) unchanged."""
    if not _names_a_path(key, value) or str(value).startswith("/") or not (data_dir / str(value)).exists():
        return value
    return str(data_dir / str(value))


def _data_dir() -> Path | None:
    config = op.get_context().config
    return config.attributes.get("data_dir") if config is not None else None


def _convert_json(table: str, column: str, keys: Sequence[str], convert: Convert, data_dir: Path) -> None:
    """Rewrite the path keys of a JSON column; jobs' params keep their hash in step."""
    connection = op.get_bind()
    columns = [sa.column("id", sa.Integer), sa.column(column, sa.JSON)]
    if table == "jobs":
        columns.append(sa.column("params_sha256", sa.String))
    rows = sa.table(table, *columns)
    for row_id, values in connection.execute(sa.select(rows.c.id, rows.c[column])).all():
        if not isinstance(values, dict):
            continue
        changed = {key: convert(key, value, data_dir) if key in keys else value for key, value in values.items()}
        if changed == values:
            continue
        update = {column: changed}
        if table == "jobs":
            canonical = json.dumps(changed, sort_keys=True, separators=(",", ":"))
            update["params_sha256"] = hashlib.sha256(canonical.encode()).hexdigest()
        connection.execute(rows.update().where(rows.c.id == row_id).values(update))


def _convert_catalogue(convert: Convert, data_dir: Path) -> None:
    """Rewrite the catalogued probe folders and concept files."""
    connection = op.get_bind()
    for table, column in CATALOGUE_PATHS:
        rows = sa.table(table, sa.column("id", sa.Integer), sa.column(column, sa.Text))
        for row_id, value in connection.execute(sa.select(rows.c.id, rows.c[column])).all():
            changed = convert("folder", value, data_dir)
            if changed != value:
                connection.execute(rows.update().where(rows.c.id == row_id).values({column: changed}))


def _convert_all(convert: Convert) -> None:
    data_dir = _data_dir()
    if data_dir is None:  # the plain `alembic` command: nothing is rewritten, both forms are read
        return
    _convert_json("runs", "settings", RUN_PATH_SETTINGS, convert, data_dir)
    _convert_json("jobs", "params", JOB_PATH_PARAMS, convert, data_dir)
    _convert_catalogue(convert, data_dir)


def upgrade() -> None:
    _convert_all(_relative)


def downgrade() -> None:
    _convert_all(_absolute)
