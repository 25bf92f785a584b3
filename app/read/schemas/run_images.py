"""An image uploaded to a run ("your own image"): the answer to its upload, and its view once the model read it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.read.schemas.classes import Prediction, PredictionUnit
from app.read.schemas.images import ImageLayerUnits
from dissect_core.evaluation.verdict import Verdict


class RunImageCreated(BaseModel):
    """An upload accepted: its id, the job reading it and its page (an identical upload's, when one exists)."""

    id: int
    job_id: int | None
    url: str = Field(description="the image's page: its prediction and the units it drives")


class RunImageSummary(BaseModel):
    """An image uploaded to a run, as its run's list shows it."""

    id: int
    url: str
    status: str
    image_url: str | None
    width: int
    height: int
    created_at: datetime
    top_class: str | None = Field(description="the model's most probable class on it, once read")


class UnusualUnit(BaseModel):
    """A labelled unit the image drives harder than nearly all probe images (percentile at or above the bound)."""

    layer: str
    unit: int
    label: str
    verdict: Verdict | None = Field(None, description="the label's grade: explains, weak or no label; None ungraded")
    reliable: bool | None
    activation: float
    percentile: float = Field(description="share (0–100) of probe images the unit fires on less (ties count half)")
    z_score: float
    neuron_url: str


class RunImageView(BaseModel):
    """An uploaded image of a run: its status and, once read, the prediction, per layer the units it drives most
    (standardised against the probe set as a probe image's view is) and the labelled units that fire unusually."""

    id: int
    run_id: int
    model_name: str
    url: str
    status: str
    job_id: int | None
    job_url: str | None
    error: str | None = Field(description="why the reading failed (when it did)")
    image_url: str | None = Field(description="the uploaded file")
    width: int
    height: int
    sha256: str
    created_at: datetime
    finished_at: datetime | None
    n_probe_images: int | None = Field(description="how many probe images the percentiles compare with")
    prediction: list[Prediction] = Field(default=[], description="the model's top-5 classes with probabilities")
    why: list[PredictionUnit] = Field(
        default=[], description="for the top class: the units with the largest W[c, j] × feature j on this image"
    )
    layers: list[ImageLayerUnits] = Field(default=[], description="per dissected layer, the units it drives most")
    unusual_percentile: float = Field(description="the percentile at or above which a unit fires unusually")
    unusual: list[UnusualUnit] = Field(
        default=[], description="labelled units at or above `unusual_percentile`, most unusual (z) first"
    )
    n_unusual: int = Field(0, description="how many labelled units fire unusually (the list shows the first ones)")
