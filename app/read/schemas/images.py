"""The image view's answer: one probe image of a run and, per layer, the units it drives most."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.read.schemas.classes import Prediction, PredictionUnit
from dissect_core.evaluation.verdict import Verdict


class ImageUnit(BaseModel):
    """One unit an image drives: its label and score, and the image's activation, percentile and z-score on it."""

    unit: int
    label: str
    score: float
    low_confidence: bool
    reliable: bool | None = Field(
        description="whether the label has the top grade (verdict explains); None when not evaluated"
    )
    verdict: Verdict | None = Field(
        None, description="the label's grade: explains, weak or no label; None when not graded"
    )
    activation: float = Field(description="the image's pooled activation of the unit")
    percentile: float = Field(description="share (0–100) of probe images the unit fires on less (ties count half)")
    z_score: float = Field(description="(activation − the unit's mean) / its standard deviation over the probe set")
    neuron_url: str


class ImageLayerUnits(BaseModel):
    """One layer's units this image drives most: by activation, and by how unusual the image is for the unit."""

    layer: str
    kind: str
    n_units: int
    by_activation: list[ImageUnit]
    by_unusualness: list[ImageUnit]
    unavailable: str | None = Field(
        default=None, description="why the layer's units cannot be ranked (its activations were not stored)"
    )


class ImageView(BaseModel):
    """One probe image of a run: its stored view, its neighbours and the units it drives most in each layer."""

    run_id: int
    model_name: str
    image_index: int
    n_images: int
    file_name: str = Field(description="the probe image's file name (never its folder)")
    view_url: str | None
    previous_image: int | None
    next_image: int | None
    permalink: str
    layers: list[ImageLayerUnits]
    prediction: list[Prediction] = Field(
        default=[], description="the model's top-5 classes with probabilities (recorded in the probe pass)"
    )
    why: list[PredictionUnit] = Field(
        default=[], description="for the top class: the units with the largest W[c, j] × feature j on this image"
    )
