"""Read models of a run's layers: summaries, evaluation and score statistics."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.persistence.models import Layer

from pydantic import BaseModel, Field, computed_field


class LayerEvaluationView(BaseModel):
    """How a layer's labels were evaluated, and its null: out-of-fold r of a label that explains nothing."""

    n_folds: int
    simulation: str = Field(description="how a concept's similarities simulate the neuron's activations")
    false_discovery_rate: float = Field(description="the Benjamini–Hochberg level across the layer")
    n_images: int
    null_sd: float = Field(description="sd of an out-of-fold r under the null, about 1/sqrt(n_images - 1)")
    reliable_min_r: float | None = Field(
        description="the smallest r the Benjamini–Hochberg test called significant; None when none was (kept for "
        "scripts written before grades: the same as significant_min_r)"
    )
    share_reliable: float = Field(
        description="share of the layer's labels the test called significant (kept for scripts written before "
        "grades: the same as share_significant; the share at the top grade is the run's overview[].share_reliable "
        "and verdict_counts)"
    )

    @computed_field(description="the smallest r the Benjamini–Hochberg test called significant; None when none was")
    def significant_min_r(self) -> float | None:
        """Return the layer's significance threshold on r, under the name that says what it is."""
        return self.reliable_min_r

    @computed_field(description="share of the layer's labels the Benjamini–Hochberg test called significant")
    def share_significant(self) -> float:
        """Return the layer's share of significant labels, under the name that says what it is."""
        return self.share_reliable


class LayerSummary(BaseModel):
    """A dissected layer of a run."""

    name: str
    position: int
    kind: str
    n_units: int
    #: None for layers stored before evaluations existed.
    evaluation: LayerEvaluationView | None = None


class LayerScoreStats(BaseModel):
    """The score distribution of a layer: range for the bars, the bottom quartile for low confidence."""

    score_min: float
    score_max: float
    low_confidence_below: float


def summarise_layer(layer: Layer) -> LayerSummary:
    """Return a stored layer's summary: name, position, kind, unit count and evaluation."""
    return LayerSummary(
        name=layer.name,
        position=layer.position,
        kind=layer.kind,
        n_units=layer.n_units,
        evaluation=LayerEvaluationView.model_validate(layer.evaluation) if layer.evaluation else None,
    )
