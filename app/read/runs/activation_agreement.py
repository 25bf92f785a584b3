"""How alike a unit fires in two runs: the Pearson r of its activations over the probe images both runs saw,
matched by content hash (so two runs over one folder, or over overlapping ones, compare image by image)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.persistence.models import ProbeImage
from app.read.artifacts.activations import ActivationsUnavailable
from app.read.artifacts.reader import ArtifactsReader
from app.read.runs.queries import get_run
from dissect_core.evaluation.correlation import pearson_columns

#: Fewer shared images than this give no correlation (r of two or fewer points says nothing).
MIN_SHARED_IMAGES = 3


def shared_image_positions(session: Session, run_id: int, other_id: int) -> tuple[list[int], list[int]]:
    """Return the positions, in each run's probe order, of the images both runs saw (one pair per content hash,
    in the first run's order)."""
    rows = session.execute(
        select(ProbeImage.run_id, ProbeImage.index, ProbeImage.content_hash)
        .where(ProbeImage.run_id.in_((run_id, other_id)))
        .order_by(ProbeImage.index)
    ).all()
    theirs: dict[str, int] = {}
    for owner, index, content_hash in rows:
        if owner == other_id:
            theirs.setdefault(content_hash, index)
    mine: list[int] = []
    matched: list[int] = []
    seen: set[str] = set()
    for owner, index, content_hash in rows:
        if owner == run_id and content_hash in theirs and content_hash not in seen:
            seen.add(content_hash)
            mine.append(index)
            matched.append(theirs[content_hash])
    return mine, matched


def _n_images(session: Session, run_id: int) -> int:
    return int(session.scalar(select(func.count(ProbeImage.id)).where(ProbeImage.run_id == run_id)) or 0)


def unit_activation_r(
    session: Session, reader: ArtifactsReader, run_id: int, other_id: int, layer: str, units: Sequence[int]
) -> dict[int, float] | None:
    """Return each of `units`' Pearson r between its activations in the two runs over their shared probe images;
    None when they share fewer than MIN_SHARED_IMAGES images or either run keeps no activations of the layer."""
    mine, theirs = shared_image_positions(session, run_id, other_id)
    if len(mine) < MIN_SHARED_IMAGES or not units:
        return None
    try:
        rows = reader.activation_rows(get_run(session, run_id).artifacts_dir, layer, _n_images(session, run_id))
        other_rows = reader.activation_rows(
            get_run(session, other_id).artifacts_dir, layer, _n_images(session, other_id)
        )
    except ActivationsUnavailable:
        return None
    listed = torch.tensor([unit for unit in units if unit < min(rows.shape[0], other_rows.shape[0])])
    if not len(listed):
        return None
    first = rows[listed][:, torch.tensor(mine)].T
    second = other_rows[listed][:, torch.tensor(theirs)].T
    return dict(zip(listed.tolist(), pearson_columns(first, second).tolist(), strict=True))
