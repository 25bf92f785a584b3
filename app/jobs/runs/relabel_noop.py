"""A relabel that would reproduce its parent run: the same concepts, encoder, similarity (and its params) and
pooling label every neuron as the parent already did, so it is refused before anything is queued."""

from __future__ import annotations

from collections.abc import Sequence

from app.core.errors import AtlasError
from dissect_core.config import DissectConfig

#: The settings besides the concept vocabulary that decide a run's labels.
LABELLING_SETTINGS = ("encoder", "similarity", "similarity_params", "pool")


class RelabelChangesNothing(AtlasError):
    """A relabel would reproduce its parent run (HTTP 422); the message names the parent and what to change."""


def reproduces_parent(
    parent: DissectConfig, parent_concepts: Sequence[str], relabel: DissectConfig, relabel_concepts: Sequence[str]
) -> bool:
    """Return whether a relabel labels as its parent does: the same concepts in the same order and the same
    encoder, similarity, similarity params and pooling."""
    same_settings = all(getattr(parent, name) == getattr(relabel, name) for name in LABELLING_SETTINGS)
    return same_settings and list(parent_concepts) == list(relabel_concepts)


def refuse_reproducing_relabel(
    parent_run_id: int,
    parent: DissectConfig,
    parent_concepts: Sequence[str],
    relabel: DissectConfig,
    relabel_concepts: Sequence[str],
) -> None:
    """Raise RelabelChangesNothing when the relabel would reproduce its parent run; else return."""
    if reproduces_parent(parent, parent_concepts, relabel, relabel_concepts):
        raise RelabelChangesNothing(
            f"This relabel would reproduce run #{parent_run_id}: change the concept set, similarity or pooling "
            "(every concept typed on it is in its vocabulary already; keep one it lacks)."
        )
