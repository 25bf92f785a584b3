"""Images uploaded to a run (#23, "your own image"): the stored file, its sha256 (an identical upload to the same
run reuses the row), its size, its job and, once the job ran, its reading as JSON.

Revision ID: 0013_run_images
Revises: 0012_interventions
Create Date: 2026-12-07 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_run_images"
down_revision: str | None = "0012_interventions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run_images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("file", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_run_images_run_id_runs", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name="fk_run_images_owner_id_users", ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_run_images_job_id_jobs", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_run_images"),
    )
    op.create_index("ix_run_images_run_sha256", "run_images", ["run_id", "sha256"])
    op.create_index("ix_run_images_job_id", "run_images", ["job_id"])
    op.create_index("ix_run_images_owner_id", "run_images", ["owner_id"])
    op.create_index("ix_run_images_file", "run_images", ["file"])


def downgrade() -> None:
    for index in ("ix_run_images_file", "ix_run_images_owner_id", "ix_run_images_job_id", "ix_run_images_run_sha256"):
        op.drop_index(index, table_name="run_images")
    op.drop_table("run_images")
