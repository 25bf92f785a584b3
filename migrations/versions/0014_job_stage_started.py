"""When a job's current stage started (#26, the job page's ETA from the stage's own rate); NULL for jobs recorded
before it and for queued ones.

Revision ID: 0014_job_stage_started
Revises: 0013_run_images
Create Date: 2026-12-07 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_job_stage_started"
down_revision: str | None = "0013_run_images"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("stage_started_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_column("stage_started_at")
