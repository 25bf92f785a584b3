"""Read models of neurons: grid cards, lists and the neuron page's details."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.read.schemas.common import ListPage
from app.read.schemas.layers import LayerEvaluationView, LayerScoreStats
from app.read.schemas.runs import NeuronSort
from dissect_core.evaluation.verdict import CoverageSource, Verdict


class GridImage(BaseModel):
    """A top-activating image as a grid card shows it: the crop around the neuron's peak."""

    rank: int
    image_index: int
    activation: float
    crop_url: str


class TopImageView(GridImage):
    """One top-activating image in full: also the view with the peak's box and the optional heatmap."""

    box: tuple[float, float, float, float]
    view_url: str
    heatmap_url: str | None


class ConceptScoreView(BaseModel):
    """A concept and its score."""

    concept: str
    score: float


class WeightedConceptView(BaseModel):
    """One term of a multi-concept explanation: a concept and its weight."""

    concept: str
    weight: float


class NeuronSummary(BaseModel):
    """A neuron as one card of the layer grid; the evaluation fields are None for neurons stored before them."""

    unit: int
    label: str
    score: float
    low_confidence: bool
    score_fraction: float = Field(description="score placed in the layer's [min, max] range, 0..1")
    explained_r: float | None = Field(
        None, description="out-of-fold Pearson r between the label's simulated and the real activations"
    )
    p_value: float | None = Field(None, description="one-sided p of explained_r against a label that explains nothing")
    reliable: bool | None = Field(None, description="whether the label's verdict is the top grade, `explains`")
    stability: float | None = Field(None, description="share of folds whose training images chose this label")
    explanation: list[WeightedConceptView] | None = Field(
        None, description="a sparse non-negative weighted sum of up to five concepts, heaviest first"
    )
    explanation_r: float | None = Field(None, description="out-of-fold r of the explanation")
    ground_truth_r: float | None = Field(
        None, description="r between the activations and the probe set's own class column for the label"
    )
    verdict: Verdict | None = Field(None, description="the label's grade: explains, weak or no label")
    verdict_reasons: list[str] | None = Field(None, description="the grade's reasons, one sentence per rule")
    coverage_source: CoverageSource | None = Field(
        None, description="what counted the label's carrying images: the probe labels or the encoder"
    )
    n_carrying: int | None = Field(None, description="probe images carrying the label's concept")
    coverage_judgeable: bool | None = Field(None, description="whether the probe set covers the concept enough")
    encoder_blind: bool | None = Field(None, description="whether the encoder cannot recognise the concept")
    clarity: float | None = Field(None, description="mean pairwise cosine of the top images' embeddings")
    polysemanticity: float | None = Field(
        None, description="1 - cosine of the two k-means centres of the top images' embeddings"
    )
    redundancy: float | None = Field(
        None, description="highest cosine of the mean top-image embedding to another unit's in the layer"
    )
    top_images: list[GridImage]


class NeuronList(ListPage[NeuronSummary]):
    """One page of a layer's neurons (`items`; `total` of them match), with the grid state that produced it."""

    run_id: int
    layer: str
    n_units: int
    sort: NeuronSort
    q: str
    reliable: bool = Field(False, description="only neurons whose label is reliable (verdict explains)")
    verdict: Verdict | None = Field(None, description="only neurons whose label has this grade")
    stats: LayerScoreStats
    layer_evaluation: LayerEvaluationView | None = None


class NeuronDetail(NeuronSummary):
    """One neuron on its permalink page."""

    top_images: list[TopImageView]  # type: ignore[assignment]  # pydantic narrows the field; mypy sees list as invariant
    run_id: int
    model_name: str
    layer: str
    layer_kind: str
    n_units: int
    runners_up: list[ConceptScoreView]
    previous_unit: int | None
    next_unit: int | None
    stats: LayerScoreStats
    layer_evaluation: LayerEvaluationView | None = None
    permalink: str
    #: On a classifier's final layer, when the weights come with categories: the unit's class, and whether the
    #: label names it (or one of its comma-separated synonyms). None elsewhere.
    class_name: str | None = None
    label_matches_class: bool | None = None
