"""Evaluation: each neuron's out-of-fold r, p-value, reliability, stability and multi-concept explanation, and each
layer's evaluation settings and null; NULL for runs stored before them.

Revision ID: 0006
Revises: 0005
Create Date: 2025-03-20 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The neurons' new columns, all nullable: old runs keep NULLs.
NEURON_COLUMNS = (
    ("explained_r", sa.Float),
    ("p_value", sa.Float),
    ("reliable", sa.Boolean),
    ("stability", sa.Float),
    ("explanation", sa.JSON),
    ("explanation_r", sa.Float),
    ("ground_truth_r", sa.Float),
)


def upgrade() -> None:
    with op.batch_alter_table("layers") as batch_op:
        batch_op.add_column(sa.Column("evaluation", sa.JSON(), nullable=True))
    with op.batch_alter_table("neurons") as batch_op:
        for name, column_type in NEURON_COLUMNS:
            batch_op.add_column(sa.Column(name, column_type(), nullable=True))
        batch_op.create_index("ix_neurons_layer_explained_r", ["layer_id", "explained_r"])


def downgrade() -> None:
    with op.batch_alter_table("neurons") as batch_op:
        batch_op.drop_index("ix_neurons_layer_explained_r")
        for name, _column_type in reversed(NEURON_COLUMNS):
            batch_op.drop_column(name)
    with op.batch_alter_table("layers") as batch_op:
        batch_op.drop_column("evaluation")
