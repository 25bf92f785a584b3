"""Interventions (#23): one row per intervention asked for (the units, mode and factor, its job and, once it ran,
its result as JSON), and per unit the latest run-wide sweep's label–effect agreement and cost.

Revision ID: 0012_interventions
Revises: 0011
Create Date: 2026-12-07 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_interventions"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "interventions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("layer", sa.String(500), nullable=False),
        sa.Column("units", sa.JSON(), nullable=False),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("factor", sa.Float(), nullable=True),
        sa.Column("params_sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_interventions_run_id_runs", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_interventions_job_id_jobs", ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name="fk_interventions_owner_id_users", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_interventions"),
    )
    op.create_index("ix_interventions_run_layer", "interventions", ["run_id", "layer"])
    op.create_index("ix_interventions_params_sha256", "interventions", ["params_sha256"])
    op.create_index("ix_interventions_job_id", "interventions", ["job_id"])
    op.create_index("ix_interventions_owner_id", "interventions", ["owner_id"])
    op.create_table(
        "unit_sweeps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("layer", sa.String(500), nullable=False),
        sa.Column("unit", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(500), nullable=False),
        sa.Column("label_effect_cosine", sa.Float(), nullable=False),
        sa.Column("label_effect_z", sa.Float(), nullable=False),
        sa.Column("label_effect_p", sa.Float(), nullable=False),
        sa.Column("top_classes", sa.JSON(), nullable=False),
        sa.Column("predictions_changed", sa.Float(), nullable=False),
        sa.Column("n_images", sa.Integer(), nullable=False),
        sa.Column("sweep_seconds", sa.Float(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_unit_sweeps_run_id_runs", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_unit_sweeps_job_id_jobs", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name="pk_unit_sweeps"),
        sa.UniqueConstraint("run_id", "layer", "unit", name="uq_unit_sweeps_run_id_layer_unit"),
    )
    op.create_index("ix_unit_sweeps_run_layer_z", "unit_sweeps", ["run_id", "layer", "label_effect_z"])


def downgrade() -> None:
    op.drop_index("ix_unit_sweeps_run_layer_z", table_name="unit_sweeps")
    op.drop_table("unit_sweeps")
    for index in ("ix_interventions_owner_id", "ix_interventions_job_id", "ix_interventions_params_sha256"):
        op.drop_index(index, table_name="interventions")
    op.drop_index("ix_interventions_run_layer", table_name="interventions")
    op.drop_table("interventions")
