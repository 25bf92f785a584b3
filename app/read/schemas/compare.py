"""Read models of a comparison of two runs of one architecture: per layer the share of labels that changed, and a
page of one layer's neurons with both labels and scores."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from app.read.schemas.common import ListPage
from app.read.schemas.neurons import GridImage
from app.read.schemas.runs import RunLink
from dissect_core.evaluation.verdict import Verdict

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
    explained_r: float | None = Field(None, description="its label's out-of-fold r in the run; None unevaluated")
    other_explained_r: float | None = Field(None, description="its label's out-of-fold r in the other run")
    verdict: Verdict | None = Field(None, description="its label's grade in the run; None when not graded")
    other_verdict: Verdict | None = Field(None, description="its label's grade in the other run")
    top_images: list[GridImage] = Field(default_factory=list, description="its first top images in the run")
    other_top_images: list[GridImage] = Field(default_factory=list, description="its first top images in the other")
    activation_r: float | None = Field(
        default=None,
        description="Pearson r of its activations in the two runs over the probe images both saw (matched by content "
        "hash); None when they share fewer than 3 images or a run keeps no activations of the layer",
    )
    url: str = Field(description="the neuron's page in the run")
    other_url: str = Field(description="the neuron's page in the other run")


class LayerChange(BaseModel):
    """How much a layer's labels changed between the runs, over the units both have."""

    name: str
    n_units: int = Field(description="units present in both runs")
    n_changed: int
    share_changed: float = Field(description="n_changed / n_units (0 for a layer without units)")
    mean_delta: float = Field(description="mean change in score over those units")
    mean_r: float | None = Field(default=None, description="the run's mean explained_r of the layer; None unevaluated")
    other_mean_r: float | None = Field(default=None, description="the other run's mean explained_r of the layer")
    verdict_shares: dict[str, float] | None = Field(
        default=None,
        description="share of the run's graded labels at each grade (explains, weak, no label); None ungraded",
    )
    other_verdict_shares: dict[str, float] | None = Field(default=None, description="the same in the other run")


class RunComparison(ListPage[ComparedNeuron]):
    """Two runs of one architecture compared: every layer both have, and one page of one layer's neurons (`items`;
    `total`: how many units of the layer are compared)."""

    run: RunLink
    other: RunLink
    architecture: str
    layers: list[LayerChange] = Field(description="the layers both runs have, in the run's forward order")
    layer: str | None = Field(description="the layer listed below; None when the runs share no layer")
    sort: CompareSort
