"""Read models of "which units detect X?": a concept ranked over every layer of a run, and the one search box's
answer (labels with their word forms and near concepts, beside that ranking)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from app.read.schemas.common import ListPage
from dissect_core.evaluation.verdict import Verdict

#: How the one search box orders its hits: the typed concept's standardised score (best first), the label's
#: out-of-fold r (best first), or forward layer order (then best label score first).
HitSort = Literal["score", "r", "layer"]


class UnitHit(BaseModel):
    """A unit of one of the run's layers as search answers show it: its label and how far the label holds."""

    layer: str
    layer_position: int = Field(description="the layer's place in forward order, from 0")
    unit: int
    label: str = Field(description="the unit's label (its best concept, whatever its verdict)")
    label_score: float = Field(description="the label's similarity score")
    verdict: Verdict | None = Field(None, description="the label's grade: explains, weak or no label")
    reliable: bool | None = Field(None, description="whether the label's verdict is the top grade, `explains`")
    explained_r: float | None = Field(
        None, description="out-of-fold Pearson r between the label's simulated and the real activations"
    )
    class_name: str | None = Field(
        None, description="on a classifier's final layer, the class this unit is the logit of; None elsewhere"
    )
    crop_urls: list[str] = Field(description="the crops around the peaks of the unit's top images, best first")
    url: str = Field(description="the unit's page, with the searched concept carried as `?concept=`")


class RankedUnit(UnitHit):
    """A unit ranked by a typed concept's score."""

    score: float = Field(description="the soft-WPMI score the concept gets on the unit (comparable within its layer)")
    standardised_score: float = Field(
        description="the score in standard deviations above the mean of its layer's scores for the concept: "
        "soft-WPMI scores are on each layer's own scale, so units of different layers are ranked by this"
    )
    rank: int = Field(description="the unit's rank for the concept within its layer, 1 = best")
    n_units: int = Field(description="units in the unit's layer")


class ConceptRanking(ListPage[RankedUnit]):
    """A typed concept ranked over every layer of a run (or one layer, with `layer`): best standardised score first."""

    run_id: int
    concept: str
    layers: list[str] = Field(description="the layers ranked, in forward order")
    warning: str | None = Field(
        None,
        description="why the ranking means little: the encoder does not recognise the concept, or too few probe "
        "images carry it; None otherwise",
    )
    n_carrying: int | None = Field(None, description="probe images carrying the concept, by the encoder's count")
    encoder_blind: bool = Field(False, description="the encoder rates every probe image about the same on it")
    seconds: float = Field(description="how long the ranking took on the server")


class NearConcept(BaseModel):
    """A label of the run near the typed text in the run's text encoder."""

    concept: str
    cosine: float = Field(description="cosine of the two texts' embeddings by the run's encoder")


class LabelHit(UnitHit):
    """A unit whose label matched the search: the text, one of its word forms, or a near concept."""

    matched: Literal["label", "near"] = Field(
        description="`label`: as the layer grid's filter finds units (the label contains the text or one of its "
        "word forms, the text names the unit, or on a classifier's final layer its class); `near`: the label is a "
        "near concept of the text (see `near_concepts`)"
    )
    score: float | None = Field(None, description="the typed concept's score on the unit; None when not ranked")
    standardised_score: float | None = Field(None, description="as in the concept ranking; None when not ranked")
    rank: int | None = Field(None, description="the unit's rank for the concept in its layer; None when not ranked")


class UnitSearch(ListPage[LabelHit]):
    """The one search box's answer: the units whose labels match (a page of them), and the typed concept ranked
    over every layer (its first page)."""

    run_id: int
    q: str
    sort: HitSort
    word_forms: list[str] = Field(description="the typed word's other forms that labels were matched on")
    near_concepts: list[NearConcept] = Field(
        description="the run's labels nearest the text by the run's encoder (bounded in count and cosine)"
    )
    ranking: ConceptRanking | None = Field(
        None, description="the concept ranked over every layer; None for an empty text or a unit number"
    )
    ranking_error: str | None = Field(None, description="why the concept could not be ranked; None otherwise")
    seconds: float = Field(description="how long the search took on the server")
