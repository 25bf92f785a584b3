"""Read models of runs: the list, one run's details and its per-layer overview."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field

from app.read.schemas.common import as_utc
from app.read.schemas.layers import LayerEvaluationView, LayerSummary

UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]


NeuronSort = Literal["unit", "-unit", "score", "-score", "label", "-label", "r", "-r"]


class RunSummary(BaseModel):
    """One run as listed on the home page."""

    id: int
    model_name: str
    architecture: str
    encoder: str
    similarity: str
    pooling: str
    probe_set: str
    n_images: int
    concept_set: str
    n_concepts: int
    n_layers: int
    n_neurons: int
    code_version: str
    created_at: UtcDatetime
    settings_summary: str
    #: Who stored it (the user whose job made it); None for runs stored from the command line.
    owner: str | None = None
    #: What its owner named it; None when unnamed.
    name: str | None = None
    #: How pages show it: its name, else "run #N · model".
    title: str = ""


class RunLink(BaseModel):
    """Another run a run's page points to (its parent, a child relabel): its id, how it is shown, its page."""

    id: int
    title: str
    url: str


class RunDetail(RunSummary):
    """One run with its pinned settings and its layers, its owner's notes and its lineage."""

    settings: dict[str, Any]
    similarity_params: dict[str, Any]
    layers: list[LayerSummary]
    notes: str | None = None
    parent: RunLink | None = Field(None, description="the run this one relabels; None for a fresh dissection")
    children: list[RunLink] = Field(default_factory=list, description="the relabels of this run, oldest first")


class RHistogram(BaseModel):
    """A layer's explained_r counted in equal bins over [low, high] (values outside in the end bins), per decision."""

    low: float
    high: float
    reliable: list[int]
    unreliable: list[int]


class LayerOverview(BaseModel):
    """A layer's labels at a glance: how much of its neurons they explain, how many are reliable, how many generic."""

    name: str
    position: int
    kind: str
    n_units: int
    n_evaluated: int = Field(description="neurons with an evaluation (0 for layers stored before evaluations)")
    share_generic: float = Field(description="share of labels that are image-meta or function words (photo, the)")
    share_reliable: float | None
    mean_explained_r: float | None
    mean_explanation_r: float | None
    histogram: RHistogram | None
    evaluation: LayerEvaluationView | None


RunDetail.model_rebuild()
