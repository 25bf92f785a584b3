"""Label verdicts: each neuron's graded verdict and its reasons, its label's coverage (count, source, whether it can
be judged, whether the encoder is blind to it) and the label-free scores of its top images; NULL for runs stored
before them. Such runs keep `reliable` as they stored it (the significance decision); their pages say they were
not graded.

Revision ID: 0011
Revises: 0010
Create Date: 2025-05-01 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The neurons' new columns, all nullable: old runs keep NULLs.
NEURON_COLUMNS = (
    ("verdict", sa.String(20)),
    ("verdict_reasons", sa.JSON()),
    ("coverage_source", sa.String(20)),
    ("n_carrying", sa.Integer()),
    ("coverage_judgeable", sa.Boolean()),
    ("encoder_blind", sa.Boolean()),
    ("clarity", sa.Float()),
    ("polysemanticity", sa.Float()),
    ("redundancy", sa.Float()),
)


def upgrade() -> None:
    with op.batch_alter_table("neurons") as batch_op:
        for name, column_type in NEURON_COLUMNS:
            batch_op.add_column(sa.Column(name, column_type, nullable=True))
        batch_op.create_index("ix_neurons_layer_clarity", ["layer_id", "clarity"])
        batch_op.create_index("ix_neurons_layer_polysemanticity", ["layer_id", "polysemanticity"])


def downgrade() -> None:
    with op.batch_alter_table("neurons") as batch_op:
        batch_op.drop_index("ix_neurons_layer_polysemanticity")
        batch_op.drop_index("ix_neurons_layer_clarity")
        for name, _column_type in reversed(NEURON_COLUMNS):
            batch_op.drop_column(name)
