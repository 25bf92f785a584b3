"""Initial schema: models, probe and concept sets, runs, probe images, layers, neurons, top images, jobs.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("architecture", sa.String(200), nullable=False),
        sa.Column("weights", sa.String(200), nullable=True),
        sa.Column("checkpoint_sha256", sa.String(64), nullable=True),
        sa.Column("checkpoint_file", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_models"),
    )
    op.create_index("ix_models_name", "models", ["name"])

    op.create_table(
        "probe_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("n_images", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_probe_sets"),
        sa.UniqueConstraint("content_hash", name="uq_probe_sets_content_hash"),
    )

    op.create_table(
        "concept_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("n_concepts", sa.Integer(), nullable=False),
        sa.Column("file", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_concept_sets"),
        sa.UniqueConstraint("content_hash", name="uq_concept_sets_content_hash"),
    )

    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("probe_set_id", sa.Integer(), nullable=False),
        sa.Column("concept_set_id", sa.Integer(), nullable=False),
        sa.Column("encoder", sa.String(500), nullable=False),
        sa.Column("similarity", sa.String(50), nullable=False),
        sa.Column("similarity_params", sa.JSON(), nullable=False),
        sa.Column("pooling", sa.String(10), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("code_version", sa.String(50), nullable=False),
        sa.Column("artifacts_dir", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name="fk_runs_model_id_models"),
        sa.ForeignKeyConstraint(["probe_set_id"], ["probe_sets.id"], name="fk_runs_probe_set_id_probe_sets"),
        sa.ForeignKeyConstraint(
            ["concept_set_id"], ["concept_sets.id"], name="fk_runs_concept_set_id_concept_sets"
        ),
    )
    op.create_index("ix_runs_model_id", "runs", ["model_id"])

    op.create_table(
        "probe_images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("source_path", sa.Text(), nullable=False),
        sa.Column("view_file", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_probe_images"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_probe_images_run_id_runs", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("run_id", "index", name="uq_probe_images_run_id_index"),
    )

    op.create_table(
        "layers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("n_units", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_layers"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_layers_run_id_runs", ondelete="CASCADE"),
        sa.UniqueConstraint("run_id", "name", name="uq_layers_run_id_name"),
    )
    op.create_index("ix_layers_run_id", "layers", ["run_id"])

    op.create_table(
        "neurons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("layer_id", sa.Integer(), nullable=False),
        sa.Column("unit", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(500), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("runners_up", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_neurons"),
        sa.ForeignKeyConstraint(
            ["layer_id"], ["layers.id"], name="fk_neurons_layer_id_layers", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("layer_id", "unit", name="uq_neurons_layer_id_unit"),
    )
    op.create_index("ix_neurons_layer_score", "neurons", ["layer_id", "score"])
    op.create_index("ix_neurons_layer_label", "neurons", ["layer_id", "label"])

    op.create_table(
        "top_images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("neuron_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("image_index", sa.Integer(), nullable=False),
        sa.Column("image_hash", sa.String(64), nullable=False),
        sa.Column("activation", sa.Float(), nullable=False),
        sa.Column("box_x0", sa.Float(), nullable=False),
        sa.Column("box_y0", sa.Float(), nullable=False),
        sa.Column("box_x1", sa.Float(), nullable=False),
        sa.Column("box_y1", sa.Float(), nullable=False),
        sa.Column("crop_file", sa.Text(), nullable=False),
        sa.Column("view_file", sa.Text(), nullable=False),
        sa.Column("heatmap_file", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_top_images"),
        sa.ForeignKeyConstraint(
            ["neuron_id"], ["neurons.id"], name="fk_top_images_neuron_id_neurons", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("neuron_id", "rank", name="uq_top_images_neuron_id_rank"),
    )

    op.create_table(
        "typed_concepts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.String(500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_typed_concepts"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_typed_concepts_run_id_runs", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("run_id", "text", name="uq_typed_concepts_run_id_text"),
    )
    op.create_index("ix_typed_concepts_run_id", "typed_concepts", ["run_id"])

    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("stage", sa.String(100), nullable=True),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.String(200), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name="fk_jobs_run_id_runs", ondelete="SET NULL"),
    )
    op.create_index("ix_jobs_status_created", "jobs", ["status", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_status_created", table_name="jobs")
    op.drop_table("jobs")
    op.drop_index("ix_typed_concepts_run_id", table_name="typed_concepts")
    op.drop_table("typed_concepts")
    op.drop_table("top_images")
    op.drop_index("ix_neurons_layer_label", table_name="neurons")
    op.drop_index("ix_neurons_layer_score", table_name="neurons")
    op.drop_table("neurons")
    op.drop_index("ix_layers_run_id", table_name="layers")
    op.drop_table("layers")
    op.drop_table("probe_images")
    op.drop_index("ix_runs_model_id", table_name="runs")
    op.drop_table("runs")
    op.drop_table("concept_sets")
    op.drop_table("probe_sets")
    op.drop_index("ix_models_name", table_name="models")
    op.drop_table("models")
