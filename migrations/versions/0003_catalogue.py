"""Catalogue: probe and concept sets web users choose by name, and unique names for uploaded models.

Revision ID: 0003
Revises: 0002
Create Date: 2025-02-15 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = "kind IN ('builtin', 'folder', 'uploaded')"


def _owner_columns(table: str) -> tuple[sa.Column, sa.Column, sa.ForeignKeyConstraint]:
    """Return the owner (a user, NULL for the command line's), creation time and owner foreign key of a table."""
    return (
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=f"fk_{table}_owner_id_users", ondelete="SET NULL"),
    )


def upgrade() -> None:
    op.create_table(
        "catalog_probe_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("folder", sa.Text(), nullable=False),
        sa.Column("n_images", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("thumbnails", sa.JSON(), nullable=False),
        *_owner_columns("catalog_probe_sets"),
        sa.PrimaryKeyConstraint("id", name="pk_catalog_probe_sets"),
        sa.UniqueConstraint("name", name="uq_catalog_probe_sets_name"),
        sa.UniqueConstraint("content_hash", name="uq_catalog_probe_sets_content_hash"),
        sa.CheckConstraint(KINDS, name="ck_catalog_probe_sets_kind"),
    )
    op.create_index("ix_catalog_probe_sets_owner_id", "catalog_probe_sets", ["owner_id"])

    op.create_table(
        "catalog_concept_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("file", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("n_concepts", sa.Integer(), nullable=False),
        *_owner_columns("catalog_concept_sets"),
        sa.PrimaryKeyConstraint("id", name="pk_catalog_concept_sets"),
        sa.UniqueConstraint("name", name="uq_catalog_concept_sets_name"),
        sa.UniqueConstraint("content_hash", name="uq_catalog_concept_sets_content_hash"),
        sa.CheckConstraint(KINDS, name="ck_catalog_concept_sets_kind"),
    )
    op.create_index("ix_catalog_concept_sets_owner_id", "catalog_concept_sets", ["owner_id"])

    with op.batch_alter_table("models") as batch_op:
        batch_op.add_column(sa.Column("uploaded_name", sa.String(200), nullable=True))
        batch_op.create_unique_constraint("uq_models_uploaded_name", ["uploaded_name"])


def downgrade() -> None:
    with op.batch_alter_table("models") as batch_op:
        batch_op.drop_constraint("uq_models_uploaded_name", type_="unique")
        batch_op.drop_column("uploaded_name")
    op.drop_index("ix_catalog_concept_sets_owner_id", table_name="catalog_concept_sets")
    op.drop_table("catalog_concept_sets")
    op.drop_index("ix_catalog_probe_sets_owner_id", table_name="catalog_probe_sets")
    op.drop_table("catalog_probe_sets")
