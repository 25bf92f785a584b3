"""The JSON (and page) shape of a neuron's distribution evidence: histogram, quantile bands, similar neurons."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ActivationHistogram(BaseModel):
    """Equal-width bins of one neuron's activation over every stored probe image."""

    low: float = Field(description="the first bin's lower edge")
    high: float = Field(description="the last bin's upper edge (included in it)")
    counts: list[int] = Field(description="images per bin, lowest activations first")


class BandImage(BaseModel):
    """One probe image sampled from a quantile band, with the neuron's activation on it."""

    image_index: int
    activation: float
    view_url: str | None = Field(description="the probe image as the network saw it; None if it has no view")
    image_url: str = Field(description="the probe image's page")


class QuantileBand(BaseModel):
    """Images ranked [start, stop) by the neuron's activation (0 the highest), and a sample of them."""

    name: str = Field(description="'top 1%', '1–5%', '5–20%', '20–50%' or 'random sample'")
    start: int
    stop: int
    low: float | None = Field(description="the lowest activation in the band; None when it holds no image")
    high: float | None = Field(description="the highest activation in the band; None when it holds no image")
    images: list[BandImage]


class SimilarNeuron(BaseModel):
    """A unit whose activations over the probe set correlate with this neuron's (Pearson r)."""

    layer: str
    unit: int
    label: str | None = Field(description="its label; None if the unit is not labelled")
    r: float
    url: str = Field(description="the unit's neuron page")


class NeuronDistribution(BaseModel):
    """A neuron's activations over every stored probe image, from the run's stored activations; a run stored
    before activations were kept says so in `unavailable`, every other field empty."""

    run_id: int
    layer: str
    unit: int
    unavailable: str | None = Field(default=None, description="why the run has no such evidence, and the fix")
    n_images: int = 0
    constant: bool = Field(default=False, description="the activation is the same on every image: r is undefined")
    histogram: ActivationHistogram | None = None
    top_activations: list[float] = Field(default=[], description="the activations of the neuron's top images")
    bands: list[QuantileBand] = []
    similar_in_layer: list[SimilarNeuron] = Field(default=[], description="most correlated units of the same layer")
    similar_in_other_layers: list[SimilarNeuron] = Field(
        default=[], description="most correlated units of the run's other layers"
    )
