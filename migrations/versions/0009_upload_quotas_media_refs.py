"""Upload quotas and media that answer only while referenced: the bytes of each uploaded probe and concept set (what
counts against its owner's quota), and indexes finding a media file's references by name (probe images' views,
and the crops and heatmaps of runs stored before they were cut on request).

The bytes of sets uploaded before this revision are counted from the data folder when the app runs the migration
(`neuron-atlas migrate`, `serve`, `worker`); run by the plain `alembic` command it does not know the folder and
leaves them NULL, which counts as nothing.

Revision ID: 0009
Revises: 0008
Create Date: 2025-04-21 00:00:00
"""

from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Catalogue tables and the column naming their files (a folder of images, a list).
CATALOGUE_FILES = (("catalog_probe_sets", "folder"), ("catalog_concept_sets", "file"))
#: What a top image's file column holds when it is cut on request (app.persistence.models.CUT_ON_REQUEST).
CUT_ON_REQUEST = "cut-on-request"
TOP_IMAGE_FILES = ("crop_file", "heatmap_file")


def _data_dir() -> Path | None:
    config = op.get_context().config
    return config.attributes.get("data_dir") if config is not None else None


def _bytes_on_disk(stored: str, data_dir: Path) -> int | None:
    """Return the bytes of a stored file, or of every file under a stored folder; None when it is gone."""
    path = Path(stored) if Path(stored).is_absolute() else data_dir / stored
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())
    return None


def _count_uploaded_bytes(table: str, column: str, data_dir: Path) -> None:
    connection = op.get_bind()
    columns = (sa.column("id", sa.Integer), sa.column(column, sa.Text), sa.column("kind", sa.String))
    rows = sa.table(table, *columns, sa.column("n_bytes", sa.BigInteger))
    uploaded = sa.select(rows.c.id, rows.c[column]).where(rows.c.kind == "uploaded")
    for row_id, stored in connection.execute(uploaded).all():
        counted = _bytes_on_disk(stored, data_dir)
        if counted is not None:
            connection.execute(sa.update(rows).where(rows.c.id == row_id).values(n_bytes=counted))


def upgrade() -> None:
    for table, _column in CATALOGUE_FILES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("n_bytes", sa.BigInteger(), nullable=True))
    data_dir = _data_dir()
    if data_dir is not None:
        for table, column in CATALOGUE_FILES:
            _count_uploaded_bytes(table, column, data_dir)
    op.create_index("ix_probe_images_view_file", "probe_images", ["view_file"])
    for column in TOP_IMAGE_FILES:
        condition = sa.text(f"{column} IS NOT NULL AND {column} != '{CUT_ON_REQUEST}'")
        op.create_index(
            f"ix_top_images_{column}", "top_images", [column], sqlite_where=condition, postgresql_where=condition
        )


def downgrade() -> None:
    for column in reversed(TOP_IMAGE_FILES):
        op.drop_index(f"ix_top_images_{column}", table_name="top_images")
    op.drop_index("ix_probe_images_view_file", table_name="probe_images")
    for table, _column in reversed(CATALOGUE_FILES):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("n_bytes")
