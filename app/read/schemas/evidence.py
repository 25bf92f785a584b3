"""The JSON shapes of concept evidence: the probe images an encoder rates highest for a concept on one neuron."""

from __future__ import annotations

from pydantic import BaseModel, Field

from dissect_core.evaluation.verdict import CoverageSource


class EvidenceImage(BaseModel):
    """One probe image the encoder rates high for the concept, and what the neuron does on it."""

    rank: int = Field(description="1 for the image the encoder rates highest for the concept")
    image_index: int
    cos: float = Field(description="cosine of the image's embedding with the concept's text embedding")
    activation: float | None = Field(description="the neuron's pooled activation; None when the run keeps none")
    hit: bool | None = Field(description="activation at or above the neuron's hit threshold; None without activations")
    carries: bool | None = Field(description="the concept is among the image's top concepts; None for older runs")
    view_url: str | None = Field(description="the image as the target model saw it (resize and centre crop)")
    image_url: str


class ConceptEvidence(BaseModel):
    """Whether a neuron fires on the probe images that carry a concept, and how many probe images carry it."""

    run_id: int
    layer: str
    unit: int
    concept: str
    is_label: bool = Field(description="the concept is the neuron's label")
    n_images: int = Field(description="stored probe images")
    hit_quantile: float = Field(description="the activation quantile over the probe set a hit must reach")
    hit_threshold: float | None = Field(description="the neuron's activation at that quantile")
    images: list[EvidenceImage]
    n_hits: int | None = Field(description="how many of the listed images are hits")
    carry_rank: int = Field(description="an image carries a concept that would be among its carry_rank top concepts")
    n_carrying: int | None = Field(description="probe images carrying the concept; None for runs stored before")
    scarce: bool = Field(
        description="the neuron cannot be judged on the concept: too few images carry it, or the encoder cannot see it"
    )
    coverage_source: CoverageSource | None = Field(
        None, description="what counted the carrying images: the probe labels or the encoder; None when not counted"
    )
    encoder_blind: bool = Field(False, description="the encoder rates every probe image about the same on the concept")
    notes: list[str] = Field(description="what could not be shown, and why")
