"""Read models shared by the HTML pages and the JSON API: what the dashboard shows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field

from app.read.evidence_schemas import ConceptEvidence


def as_utc(moment: datetime) -> datetime:
    """Return the moment in UTC; a naive one (as SQLite returns every stored time) is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


#: A stored time as the API answers it: in UTC, with its offset (`…Z`), whichever database it came from.
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


class LayerEvaluationView(BaseModel):
    """How a layer's labels were evaluated, and its null: out-of-fold r of a label that explains nothing."""

    n_folds: int
    simulation: str = Field(description="how a concept's similarities simulate the neuron's activations")
    false_discovery_rate: float = Field(description="the Benjamini–Hochberg level across the layer")
    n_images: int
    null_sd: float = Field(description="sd of an out-of-fold r under the null, about 1/sqrt(n_images - 1)")
    reliable_min_r: float | None = Field(description="the smallest r called reliable; None when none was")
    share_reliable: float


class LayerSummary(BaseModel):
    """A dissected layer of a run."""

    name: str
    position: int
    kind: str
    n_units: int
    #: None for layers stored before evaluations existed.
    evaluation: LayerEvaluationView | None = None


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


class LayerScoreStats(BaseModel):
    """The score distribution of a layer: range for the bars, the bottom quartile for low confidence."""

    score_min: float
    score_max: float
    low_confidence_below: float


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
    reliable: bool | None = Field(None, description="the Benjamini–Hochberg decision across the layer")
    stability: float | None = Field(None, description="share of folds whose training images chose this label")
    explanation: list[WeightedConceptView] | None = Field(
        None, description="a sparse non-negative weighted sum of up to five concepts, heaviest first"
    )
    explanation_r: float | None = Field(None, description="out-of-fold r of the explanation")
    ground_truth_r: float | None = Field(
        None, description="r between the activations and the probe set's own class column for the label"
    )
    top_images: list[GridImage]


class NeuronList(BaseModel):
    """One page of a layer's neurons, with the grid state that produced it."""

    run_id: int
    layer: str
    n_units: int
    total: int = Field(description="neurons matching q")
    offset: int
    limit: int
    sort: NeuronSort
    q: str
    reliable: bool = Field(False, description="only neurons whose label is reliable")
    stats: LayerScoreStats
    layer_evaluation: LayerEvaluationView | None = None
    neurons: list[NeuronSummary]


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


class SearchHit(BaseModel):
    """A neuron whose label matched a search."""

    layer: str
    unit: int
    label: str
    score: float


class SearchResult(BaseModel):
    """Labels matching a query across all layers of a run."""

    run_id: int
    q: str
    total: int
    hits: list[SearchHit]


class ConceptHit(BaseModel):
    """A neuron ranked by the score a typed concept would get."""

    rank: int
    unit: int
    score: float
    label: str = Field(description="the neuron's current label")
    label_score: float


class ConceptSearchResult(BaseModel):
    """A layer's neurons ranked by a typed concept's soft-WPMI score."""

    run_id: int
    layer: str
    concept: str
    n_units: int
    hits: list[ConceptHit]
    seconds: float


class NeuronConceptScore(BaseModel):
    """The score a typed concept gets on one neuron and that neuron's rank for it in the layer."""

    run_id: int
    layer: str
    unit: int
    concept: str
    score: float
    rank: int
    n_units: int
    label_score: float
    #: The probe images the encoder rates highest for the concept, hit or miss (the neuron-concept route fills it).
    evidence: ConceptEvidence | None = None


class TypedConceptView(BaseModel):
    """A concept typed on a run's pages and kept for a later relabel."""

    id: int
    text: str
    created_at: UtcDatetime


class JobView(BaseModel):
    """A queued dissection and its progress."""

    id: int
    kind: str
    status: str
    stage: str | None
    done: int
    total: int
    fraction: float | None
    error: str | None
    cancel_requested: bool
    run_id: int | None
    model: str | None
    layers: list[str]
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    finished: bool
    #: Who queued it; None for jobs queued from the command line.
    owner: str | None = None
    #: What each attempt came to, oldest first: {"attempt", "at", "worker", "status", "note"}.
    history: list[dict[str, Any]] = []


class UserView(BaseModel):
    """Who a request is authenticated as."""

    name: str
    role: str


class ProbeSetView(BaseModel):
    """A probe set web users may choose by name, with a few of its images (never where it lies on the server)."""

    name: str
    kind: str = Field(description="builtin, folder (registered by the operator) or uploaded")
    n_images: int
    thumbnails: list[str] = Field(description="media URLs of a few of its images")
    created_at: UtcDatetime | None


class ConceptSetView(BaseModel):
    """A concept set web users may choose by name."""

    name: str
    kind: str = Field(description="builtin or uploaded")
    n_concepts: int | None = Field(description="unknown for a built-in until a run uses it")
    created_at: UtcDatetime | None


class JobCreated(BaseModel):
    """The answer to a submission: the job's id and where to watch it."""

    job_id: int
    job_url: str
    api_url: str


class LayerOption(BaseModel):
    """A layer of an architecture that can be dissected."""

    name: str
    type: str
    n_units: int | None = None


RunDetail.model_rebuild()
