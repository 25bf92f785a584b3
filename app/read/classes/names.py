"""A classifier's final layer: the class name a unit stands for (pinned from the weights) and whether its label
matches it."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from app.core.cache_bounds import CacheBounds
from app.read.schemas.runs import RunDetail
from dissect_core.data.vocabulary import lemma
from dissect_core.evaluation.evaluate import normalise_class_name
from dissect_core.run_record import RunRecord


@lru_cache(maxsize=CacheBounds.compared_names)
def comparable(name: str) -> str:
    """Return a label or class name as compared: lower case, `_` as spaces, each word lemmatised (`Camels` ->
    `camel`)."""
    return " ".join(lemma(word) for word in normalise_class_name(name).split())


def label_matches_class(label: str, class_name: str) -> bool:
    """Return whether the label equals the class name or one of its comma-separated synonyms (any case, any
    inflection)."""
    wanted = comparable(label)
    return bool(wanted) and any(comparable(synonym) == wanted for synonym in class_name.split(",") if synonym.strip())


def unit_class_name(class_names: Sequence[str] | None, n_units: int, unit: int) -> str | None:
    """Return the class name of a unit of a layer whose units are the run's classes, else None.

    The run's record keeps its weights' class names (`identities.class_names`); a layer with as many units as
    there are classes is the classifier's final layer. Random initialisations and runs stored before class names
    were kept have none.
    """
    if not class_names or len(class_names) != n_units or not 0 <= unit < n_units:
        return None
    return str(class_names[unit])


def class_fields(class_names: Sequence[str] | None, n_units: int, unit: int, label: str) -> dict[str, Any]:
    """Return a neuron's `class_name` and `label_matches_class` (both None off a classifier's final layer)."""
    name = unit_class_name(class_names, n_units, unit)
    return {"class_name": name, "label_matches_class": None if name is None else label_matches_class(label, name)}


def run_class_names(run: RunDetail) -> tuple[str, ...] | None:
    """Return the class names the run's record keeps (None without them, or for a RunDetail built without
    settings)."""
    settings = getattr(run, "settings", None)
    return RunRecord.from_json(settings).identities.class_names if settings else None


def run_unit_class_name(run: RunDetail, n_units: int, unit: int) -> str | None:
    """Return the class name of a unit of one of the run's layers (None off its classifier's final layer)."""
    return unit_class_name(run_class_names(run), n_units, unit)


def class_name_or_index(class_names: Sequence[str] | None, class_index: int) -> str:
    """Return a class's name, or `class N` for a model whose weights name no classes."""
    if class_names and 0 <= class_index < len(class_names):
        return str(class_names[class_index])
    return f"class {class_index}"
