"""The run's typed record: a run row keeps columns only for what is filtered or sorted on, and a job names the model
row its run joins.

`runs.encoder`, `similarity`, `similarity_params`, `pooling` and `code_version` go: the run's `settings` (its record,
dissect_core.run_record, or the flat settings of runs stored before it) hold each of them, and nothing filters or
sorts on them. `jobs.target_model_id` names the model row a job's run joins (an upload's, added when it is queued;
a relabel's parent's), so the worker never hashes a checkpoint again to find it; SET NULL when the model is
deleted, NULL for jobs queued before it (their runs find their model row by its identity, as they did).

Revision ID: 0010
Revises: 0009
Create Date: 2025-04-22 00:00:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The run columns the record replaces, as revision 0001 made them.
RUN_COLUMNS = (
    ("encoder", sa.String(500)),
    ("similarity", sa.String(50)),
    ("similarity_params", sa.JSON()),
    ("pooling", sa.String(10)),
    ("code_version", sa.String(50)),
)


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch_op:
        for name, _ in RUN_COLUMNS:
            batch_op.drop_column(name)
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("target_model_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_jobs_target_model_id_models", "models", ["target_model_id"], ["id"], ondelete="SET NULL"
        )


def _columns_of(settings: Any) -> dict[str, Any]:
    """Return the dropped columns' values as a run's settings hold them: a record (the config's settings with
    `resolved` and `identities` beside them) or the flat settings of runs stored before it."""
    settings = settings if isinstance(settings, dict) else {}
    resolved = settings.get("resolved") if isinstance(settings.get("resolved"), dict) else settings
    identities = settings.get("identities") if isinstance(settings.get("identities"), dict) else settings
    return {
        "encoder": str(settings.get("encoder") or "")[:500],
        "similarity": str(settings.get("similarity") or "")[:50],
        "similarity_params": resolved.get("similarity_params") or {},
        "pooling": str(settings.get("pool") or settings.get("pooling") or "avg")[:10],
        "code_version": str(identities.get("code_version") or "unknown")[:50],
    }


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_constraint("fk_jobs_target_model_id_models", type_="foreignkey")
        batch_op.drop_column("target_model_id")
    with op.batch_alter_table("runs") as batch_op:
        for name, column_type in RUN_COLUMNS:
            batch_op.add_column(sa.Column(name, column_type, nullable=True))
    runs = sa.table(
        "runs",
        sa.column("id", sa.Integer),
        sa.column("settings", sa.JSON),
        *(sa.column(name, column_type) for name, column_type in RUN_COLUMNS),
    )
    connection = op.get_bind()
    for run_id, settings in connection.execute(sa.select(runs.c.id, runs.c.settings)).all():
        connection.execute(sa.update(runs).where(runs.c.id == run_id).values(**_columns_of(settings)))
    with op.batch_alter_table("runs") as batch_op:
        for name, column_type in RUN_COLUMNS:
            batch_op.alter_column(name, existing_type=column_type, nullable=False)
