"""Deterministic k-fold splits of a probe set by image content, so a fold never depends on file order."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch import Tensor

from dissect_core.errors import DissectError
from dissect_core.names import DEFAULT_N_FOLDS


def fold_of_images(
    image_ids: Sequence[str], n_folds: int = DEFAULT_N_FOLDS, labels: Sequence[str | None] | None = None
) -> Tensor:
    """Return each image's fold (long [N], values 0..n_folds-1), dealt round-robin in order of a salted hash.

    Dealing in hash order keeps the folds balanced (sizes differ by at most one) and makes an image's fold a
    function of the probe set's content alone: the same images in any order, or under other paths, get the
    same folds. With `labels` (one per image, None for an unlabelled image) the folds are stratified by class:
    the deal runs over the images ordered by (label, hash), unlabelled ones last, so a class of k images lands in
    min(k, n_folds) different folds and every fold trains on as many of its images as it can.
    """
    if n_folds < 2:
        raise DissectError(f"n_folds must be at least 2 to score labels on held-out images, not {n_folds}")
    if len(image_ids) < 2 * n_folds:
        raise DissectError(
            f"{len(image_ids)} probe images are too few for {n_folds} folds (each needs at least 2); use more "
            "probe images or fewer folds"
        )
    if labels is not None and len(labels) != len(image_ids):
        raise DissectError(
            f"{len(labels)} labels were given for {len(image_ids)} probe images; give one label (or None) per image"
        )
    salted = [_salted(image_id) for image_id in image_ids]
    if labels is None:
        order = sorted(range(len(image_ids)), key=lambda i: (salted[i], i))
    else:
        order = sorted(range(len(image_ids)), key=lambda i: (labels[i] is None, labels[i] or "", salted[i], i))
    folds = torch.empty(len(image_ids), dtype=torch.long)
    for position, image in enumerate(order):
        folds[image] = position % n_folds
    return folds


def _salted(image_id: str) -> str:
    """Return a hash of the image id, so folds are not simply the ids' alphabetical order."""
    return hashlib.sha256(f"neuron-atlas-fold:{image_id}".encode()).hexdigest()
