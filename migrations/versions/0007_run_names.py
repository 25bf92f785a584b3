"""Run names, notes and lineage: a run's owner may name it and keep notes on it; a relabel (and the job that makes
it) points to its parent run, SET NULL when the parent is deleted. NULL for runs stored before them.

Revision ID: 0007
Revises: 0006
Create Date: 2025-04-02 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The longest run name (app.persistence.models.RUN_NAME_MAX).
NAME_LENGTH = 200
#: The tables that get a `parent_run_id`: the run itself, and the job that makes a relabel (it hands it on).
LINEAGE_TABLES = ("runs", "jobs")


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(NAME_LENGTH), nullable=True))
        batch_op.add_column(sa.Column("notes", sa.Text(), nullable=True))
    for table in LINEAGE_TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("parent_run_id", sa.Integer(), nullable=True))
            batch_op.create_foreign_key(
                f"fk_{table}_parent_run_id_runs", "runs", ["parent_run_id"], ["id"], ondelete="SET NULL"
            )
            batch_op.create_index(f"ix_{table}_parent_run_id", ["parent_run_id"])


def downgrade() -> None:
    for table in reversed(LINEAGE_TABLES):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_index(f"ix_{table}_parent_run_id")
            batch_op.drop_constraint(f"fk_{table}_parent_run_id_runs", type_="foreignkey")
            batch_op.drop_column("parent_run_id")
    with op.batch_alter_table("runs") as batch_op:
        batch_op.drop_column("notes")
        batch_op.drop_column("name")
