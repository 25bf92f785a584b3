"""Bounded and conformant: jobs keep a hash of their params and a log of their attempts; paths under the data
folder are stored relative to it.

Revision ID: 0004
Revises: 0003
Create Date: 2025-03-01 00:00:00
"""

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Job params naming files the job reads.
PATH_PARAMS = ("checkpoint", "concepts")


def _relative(value: object, data_dir: Path) -> object:
    """Return a path string under `data_dir` made relative to it; anything else unchanged."""
    if not isinstance(value, str) or not value.startswith("/"):
        return value
    try:
        return Path(value).relative_to(data_dir).as_posix()
    except ValueError:
        return value


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("params_sha256", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("history", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))
        batch_op.create_index("ix_jobs_params_sha256", ["params_sha256"])
    data_dir = op.get_context().config.attributes.get("data_dir") if op.get_context().config else None
    connection = op.get_bind()
    jobs = sa.table("jobs", sa.column("id", sa.Integer), sa.column("params", sa.JSON), sa.column("params_sha256"))
    for job_id, params in connection.execute(sa.select(jobs.c.id, jobs.c.params)).all():
        if isinstance(params, dict) and data_dir is not None:
            params = {key: _relative(value, data_dir) if key in PATH_PARAMS else value for key, value in params.items()}
        digest = hashlib.sha256(json.dumps(params, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        connection.execute(jobs.update().where(jobs.c.id == job_id).values(params=params, params_sha256=digest))
    if data_dir is None:
        return
    for table, column in (("runs", "artifacts_dir"), ("models", "checkpoint_file")):
        rows = sa.table(table, sa.column("id", sa.Integer), sa.column(column, sa.Text))
        for row_id, value in connection.execute(sa.select(rows.c.id, rows.c[column])).all():
            relative = _relative(value, data_dir)
            if relative != value:
                connection.execute(rows.update().where(rows.c.id == row_id).values({column: relative}))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_index("ix_jobs_params_sha256")
        batch_op.drop_column("history")
        batch_op.drop_column("params_sha256")
