"""Read models of interventions (#23): one intervention and its effect, the answer to queuing one, a unit's latest
interventions, and a layer's sweep results."""

from __future__ import annotations

from pydantic import BaseModel

from app.read.schemas.common import ListPage
from app.read.schemas.runs import UtcDatetime


class ClassEffectView(BaseModel):
    """One class's mean change over the images: of its logit and of its probability."""

    class_index: int
    class_name: str | None
    mean_delta_logit: float
    mean_delta_probability: float


class DownstreamEffectView(BaseModel):
    """A unit of a later dissected layer whose mean activation changed, with its label and its page."""

    layer: str
    unit: int
    label: str | None
    mean_delta_activation: float
    url: str


class LabelEffectAgreementView(BaseModel):
    """How well the unit's label names the classes the intervention hurt most, against random class sets."""

    cosine: float
    z: float
    p_value: float
    #: The classes whose logits fell most (class indices, most hurt first), and their names.
    top_classes: list[int] = []
    top_class_names: list[str] = []
    n_random: int | None = None


class InterventionView(BaseModel):
    """An intervention: what was asked, where its job stands and, once it ran, its effect (null fields until then).

    `classes` holds every class, sorted by mean_delta_logit, the most hurt (most negative) first.
    """

    id: int
    url: str
    status: str
    run_id: int
    layer: str
    units: list[int]
    mode: str
    factor: float | None
    job_id: int | None
    job_url: str | None
    error: str | None
    created_at: UtcDatetime
    finished_at: UtcDatetime | None
    #: The label of the unit (for a one-unit intervention), as stored when it ran.
    label: str | None
    n_images: int | None
    classes: list[ClassEffectView] | None
    predictions_changed: float | None
    accuracy_before: float | None
    accuracy_after: float | None
    downstream: list[DownstreamEffectView] | None
    label_effect_agreement: LabelEffectAgreementView | None
    #: The seconds it took, and the device it ran on.
    seconds: float | None
    device: str | None


class InterventionCreated(BaseModel):
    """The answer to asking for an intervention: its id, its job and its permalink (an identical earlier request's
    when there was one)."""

    id: int
    job_id: int | None
    url: str


class InterventionSummary(BaseModel):
    """One line of a unit's interventions: what was asked, its status and, when done, its headline numbers."""

    id: int
    url: str
    status: str
    units: list[int]
    mode: str
    factor: float | None
    created_at: UtcDatetime
    predictions_changed: float | None
    agreement_z: float | None
    agreement_p: float | None
    most_hurt: str | None


class UnitSweepView(BaseModel):
    """One unit's result in the latest sweep of its layer: the label–effect agreement of zeroing it and its cost."""

    layer: str
    unit: int
    label: str
    url: str
    label_effect_cosine: float
    label_effect_z: float
    label_effect_p: float
    predictions_changed: float
    n_images: int
    sweep_seconds: float
    #: The label's out-of-fold r (None for a run stored before evaluations): does a label that simulates well also
    #: predict what ablation does?
    explained_r: float | None = None


class SweepBin(BaseModel):
    """One bin of a layer's label–effect z-scores: its lower and upper edges and its count."""

    low: float
    high: float
    count: int


class LayerSweepSummary(BaseModel):
    """A layer's latest sweep in numbers: how many units, how many agree (p <= 0.05), the z-scores' histogram and
    median, their Spearman correlation with the labels' r, and the cost per unit."""

    layer: str
    url: str
    n_swept: int
    n_units: int
    n_agreeing: int
    median_z: float
    histogram: list[SweepBin]
    spearman_z_r: float | None
    seconds_per_unit: float


class SweepCreated(BaseModel):
    """The answer to asking for a sweep: its job and where to watch it."""

    job_id: int
    job_url: str
    units: int


class InterventionRequest(BaseModel):
    """What an intervention changes: `units` of the dissected `layer`, set to 0 (`zero`), to their mean map over
    the probe set (`mean`) or multiplied by `factor` (`scale`, e.g. 0.5 or 3; only there)."""

    layer: str
    units: list[int]
    mode: str
    factor: float | None = None


class SweepRequest(BaseModel):
    """A sweep of a dissected layer: every unit (or `units`) zeroed in turn, each one's label–effect agreement."""

    layer: str
    units: list[int] | None = None


class NeuronInterventions(ListPage[InterventionSummary]):
    """The interventions on one neuron, newest first."""

    run_id: int
    layer: str
    unit: int


class LayerSweep(ListPage[UnitSweepView]):
    """A layer's swept units, sorted and filtered as asked."""

    run_id: int
    layer: str
