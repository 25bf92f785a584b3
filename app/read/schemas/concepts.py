"""Read models of concepts: typed-concept rankings and the concepts typed on a run."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.read.schemas.common import ListPage
from app.read.schemas.evidence import ConceptEvidence
from app.read.schemas.runs import UtcDatetime


class ConceptHit(BaseModel):
    """A neuron ranked by the score a typed concept would get."""

    rank: int
    unit: int
    score: float
    label: str = Field(description="the neuron's current label")
    label_score: float


class ConceptSearchResult(ListPage[ConceptHit]):
    """A layer's neurons ranked by a typed concept's soft-WPMI score, best first: a page of them (`items`), every
    unit of the layer in all (`total`)."""

    run_id: int
    layer: str
    concept: str
    n_units: int
    seconds: float
    warning: str | None = Field(
        None, description="why the ranking means little: the encoder does not recognise the concept; None otherwise"
    )
    n_carrying: int | None = Field(None, description="probe images carrying the concept, by the encoder's count")
    encoder_blind: bool = Field(False, description="the encoder rates every probe image about the same on it")


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
