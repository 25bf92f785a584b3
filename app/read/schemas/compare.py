"""Read models of a comparison of two runs of one architecture: per layer the share of labels that changed, and a
page of one layer's neurons with both labels and scores."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from app.read.schemas.runs import RunLink

#: Orders of the compared neurons: by unit, by the change in score (`-` for descending), by its size, or the
#: neurons whose label changed first (then by the size of the change).
CompareSort = Literal["unit", "-unit", "delta", "-delta", "abs_delta", "-abs_delta", "changed"]


class ComparedNeuron(BaseModel):
    """One unit of a layer in both runs: its label and score in each, and how they changed."""

    unit: int
    label: str = Field(description="its label in the run")
    other_label: str = Field(description="its label in the other run")
    score: float
    other_score: float
    delta: float = Field(description="other_score − score")
    changed: bool = Field(description="the labels differ")
    url: str = Field(description="the neuron's page in the run")
    other_url: str = Field(description="the neuron's page in the other run")


class LayerChange(BaseModel):
    """How much a layer's labels changed between the runs, over the units both have."""

    name: str
    n_units: int = Field(description="units present in both runs")
    n_changed: int
    share_changed: float = Field(description="n_changed / n_units (0 for a layer without units)")
    mean_delta: float = Field(description="mean change in score over those units")


class RunComparison(BaseModel):
    """Two runs of one architecture compared: every layer both have, and one page of one layer's neurons."""

    run: RunLink
    other: RunLink
    architecture: str
    layers: list[LayerChange] = Field(description="the layers both runs have, in the run's forward order")
    layer: str | None = Field(description="the layer listed below; None when the runs share no layer")
    sort: CompareSort
    offset: int
    limit: int
    total: int = Field(description="how many units of the layer are compared")
    neurons: list[ComparedNeuron]
