"""What a stored run keeps for scoring concepts typed later: image embeddings, log normalisers, its concept set,
each layer's top image indices and each image's carry bar, read from its artifacts folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from app.core.errors import AtlasError
from app.persistence.store.layout import ArtifactsLayout
from app.read.artifacts.tensors import damaged_artifact, load_artifact_tensor

NO_TYPED_CONCEPTS = "typed concepts cannot be scored"
RUN = "This run"


class ConceptSearchUnavailable(AtlasError):
    """The run lacks what concept search needs; the message says what and how to get it."""


@dataclass(frozen=True)
class ScoringArtifacts:
    """What a run stored for scoring concepts typed later."""

    image_embeddings: torch.Tensor  # [N, D] float32
    log_normalisers: torch.Tensor  # [N]
    #: The run's own concepts: their terms are already inside `log_normalisers`.
    vocabulary: frozenset[str] = frozenset()


def _load(path: Path, what: str, ndim: int) -> torch.Tensor:
    return load_artifact_tensor(path, what, ndim, NO_TYPED_CONCEPTS, ConceptSearchUnavailable)


def _damaged(path: Path, what: str, problem: str) -> AtlasError:
    return damaged_artifact(path, what, problem, NO_TYPED_CONCEPTS, ConceptSearchUnavailable)


def read_concepts(layout: ArtifactsLayout) -> list[str] | None:
    """Return the run's concept set as stored with its artifacts (one per line), or None for a run stored without."""
    if not layout.concepts.is_file():
        return None
    lines = layout.concepts.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip()]


def load_scoring_artifacts(layout: ArtifactsLayout) -> ScoringArtifacts:
    """Return the run's embeddings, normalisers and vocabulary, or raise ConceptSearchUnavailable saying what lacks."""
    embeddings = _load(layout.image_embeddings, RUN, ndim=2)
    if not layout.log_normalisers.is_file():
        raise ConceptSearchUnavailable(
            f"{RUN} has no stored {layout.log_normalisers.name}: only soft-WPMI and WPMI runs store them. "
            "Dissect with --similarity soft_wpmi to search typed concepts."
        )
    normalisers = _load(layout.log_normalisers, RUN, ndim=1)
    if normalisers.shape[0] != embeddings.shape[0]:
        problem = f"{normalisers.shape[0]} values for {embeddings.shape[0]} stored images"
        raise _damaged(layout.log_normalisers, RUN, problem)
    return ScoringArtifacts(
        image_embeddings=embeddings.float(),
        log_normalisers=normalisers,
        vocabulary=frozenset(read_concepts(layout) or ()),
    )


def load_top_indices(layout: ArtifactsLayout, layer: str, n_images: int) -> torch.Tensor:
    """Return the layer's [K, top_k] top image indices, or raise ConceptSearchUnavailable (also when they are not
    indices of the `n_images` stored images)."""
    path = layout.top_indices(layer)
    what = f"Layer '{layer}' of this run"
    top = _load(path, what, ndim=2)
    if top.is_floating_point() or (top.numel() and not 0 <= int(top.min()) <= int(top.max()) < n_images):
        raise _damaged(path, what, f"its entries are not indices of the {n_images} stored images")
    return top


def load_carry_cosines(layout: ArtifactsLayout, n_images: int) -> torch.Tensor | None:
    """Return each of the `n_images` images' carry bar [images] as float32, or None for a run stored before they
    were kept; raise ConceptSearchUnavailable when the file is damaged."""
    path = layout.carry_cosines
    if not path.is_file():
        return None
    bars = _load(path, RUN, ndim=1)
    if bars.shape[0] != n_images:
        raise _damaged(path, RUN, f"{bars.shape[0]} values for {n_images} stored images")
    return bars.float()


def load_reference_spreads(layout: ArtifactsLayout) -> torch.Tensor | None:
    """Return the vocabulary's sorted reference spreads [R] as float32 (dissect_core.analysis.coverage), or None
    for a run stored before they were kept; raise ConceptSearchUnavailable when the file is damaged."""
    path = layout.reference_spreads
    if not path.is_file():
        return None
    return _load(path, RUN, ndim=1).float()
