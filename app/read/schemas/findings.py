"""Read models of what a run found, layer by layer: its best-explained units and its most common labels."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from app.read.schemas.search import UnitHit


class LabelCount(BaseModel):
    """A label and how many of a layer's units carry it."""

    label: str
    count: int


class LayerFindings(BaseModel):
    """One layer's best units and most common labels."""

    layer: str
    position: int
    n_units: int
    ranked_by: Literal["r", "score"] = Field(
        description="what `best` is ranked by: the label's out-of-fold r, or for a layer stored before evaluations "
        "its similarity score"
    )
    best: list[UnitHit] = Field(description="the best units, best first; graded ones with a label that holds")
    common_labels: list[LabelCount] = Field(
        description="the labels most units carry, most first (labels graded `no label` are not counted)"
    )
    has_classes: bool = Field(description="the layer is the classifier's final layer: its units are named classes")
