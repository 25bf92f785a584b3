"""Read models of runs: the list, one run's details and its per-layer overview."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field

from app.read.schemas.common import as_utc
from app.read.schemas.layers import LayerEvaluationView, LayerSummary

UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]


NeuronSort = Literal[
    "unit", "-unit", "score", "-score", "label", "-label", "r", "-r",
    "clarity", "-clarity", "polysemanticity", "-polysemanticity",
]  # fmt: skip
#: The layer grid's order when the URL names none: best-explained labels first (units without an r, as in a layer
#: stored before evaluations, follow in unit order). The JSON list of a layer's neurons keeps unit order.
GRID_SORT: NeuronSort = "-r"


class WeightsView(BaseModel):
    """Which weights a run used (#26): where they came from and what identifies them."""

    kind: Literal["pretrained", "random", "checkpoint", "torchscript", "in_memory", "unrecorded"] = Field(
        description="named weights (`DEFAULT`), a seeded random initialisation, a checkpoint or TorchScript file, a "
        "network handed to the library in memory (a notebook run), or a run stored before it was recorded"
    )
    name: str | None = Field(
        default=None,
        description="the weights' name (`DEFAULT`), the uploaded model's name, or the in-memory network's class",
    )
    seed: int | None = Field(default=None, description="the random initialisation's seed (`none@SEED`)")
    sha256: str | None = Field(
        default=None,
        description="the sha256 of the checkpoint or TorchScript file, or of an in-memory network's state dict",
    )
    file_name: str | None = Field(
        default=None, description="the checkpoint or TorchScript file's name, without its folder"
    )


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
    #: How pages name the probe set: `cifar10-test (200 images)`, or `cifar10-test (sample of 200 of 10,000)`.
    probe_set_display_name: str
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
    #: Which weights it used (None only where a caller built a summary without them).
    weights: WeightsView | None = None
    #: The weights in one line: `DEFAULT weights`, `random (none@0)`, `checkpoint lite0.pt · sha256 1a2b…`.
    weights_label: str = ""


class RunPushed(BaseModel):
    """The answer to a pushed run: its id, its page and its API twin (absolute URLs, to print or open)."""

    run_id: int
    url: str
    api_url: str


class RunLink(BaseModel):
    """Another run a run's page points to (its parent, a child relabel): its id, how it is shown, its page."""

    id: int
    title: str
    url: str
    #: The weights it used in one line, where the link stands for a run being compared; None elsewhere.
    weights_label: str | None = None


class AgreementPoint(BaseModel):
    """The mean label–class-name cosine of the k largest weights."""

    k: int
    mean_similarity: float


class WeightConceptAgreementView(BaseModel):
    """The paper's weight finding (CLIP-Dissect Section 4.1, Fig. 5) on one weight-joined layer pair with classes."""

    from_layer: str
    to_layer: str
    pearson_r: float = Field(description="r between every weight and its pair's label–class-name cosine")
    p_value: float = Field(description="one-sided share of row-shuffled weight matrices reaching that r")
    top_unit_r: float = Field(description="r between each upstream unit's label score and its largest outgoing weight")
    all_pairs_mean: float = Field(description="the mean cosine over all pairs")
    curve: list[AgreementPoint] = Field(description="the mean cosine of the top-k weighted pairs, k = 4, 8, 16, …")


class RunDetail(RunSummary):
    """One run with its pinned settings and its layers, its owner's notes and its lineage."""

    settings: dict[str, Any] = Field(
        description="the run's record (dissect_core.run_record): its config's settings, and beside them what the run "
        "resolved (`resolved`), its inputs' identities (`identities`) and what it found (`facts`); server paths "
        "shown by name"
    )
    similarity_params: dict[str, Any]
    layers: list[LayerSummary]
    notes: str | None = None
    parent: RunLink | None = Field(None, description="the run this one relabels; None for a fresh dissection")
    children: list[RunLink] = Field(default_factory=list, description="the relabels of this run, oldest first")
    weight_concept_agreement: list[WeightConceptAgreementView] = Field(
        default_factory=list,
        description="the paper's weight finding per weight-joined pair whose downstream units are named classes "
        "(filled on the run's own answer; [] for a run stored without it)",
    )
    overview: list[LayerOverview] = Field(
        default_factory=list,
        description="per layer, what its labels are worth: counts per grade and the causes of the weak ones, the "
        "share at the top grade, mean r, the r histogram and the label-free means (filled on the run's own answer)",
    )


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
    share_reliable: float | None = Field(description="share of evaluated labels with the top grade (explains)")
    verdict_counts: dict[str, int] | None = Field(
        None, description="graded labels per grade (explains, weak, no label); None for runs stored before grades"
    )
    weak_causes: dict[str, int] | None = Field(
        None,
        description="weak labels per top-grade rule they miss: uncovered (the concept's coverage cannot be judged), "
        "unstable (fewer folds chose it than the grade needs), floor only (neither: r is under the effect-size "
        "floor); a label can miss two; None when no label is weak",
    )
    mean_clarity: float | None = Field(None, description="mean clarity of the units' top images (label-free)")
    mean_polysemanticity: float | None = Field(None, description="mean polysemanticity of the units' top images")
    mean_explained_r: float | None
    mean_explanation_r: float | None
    histogram: RHistogram | None
    evaluation: LayerEvaluationView | None


RunDetail.model_rebuild()
