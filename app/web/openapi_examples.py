"""Request and response examples for /docs and /openapi.json, built from the read models themselves (a field they
lack or mistype fails at import), as the `responses` entries of the routes they illustrate."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from app.read.schemas.common import ListPage
from app.read.schemas.concepts import ConceptHit, ConceptSearchResult
from app.read.schemas.layers import LayerScoreStats
from app.read.schemas.neurons import (
    ConceptScoreView,
    GridImage,
    NeuronDetail,
    NeuronList,
    NeuronSummary,
    TopImageView,
    WeightedConceptView,
)
from app.read.schemas.runs import RunPushed, RunSummary

#: What an OpenAPI operation's `responses` maps a status to.
Responses = dict[int | str, dict[str, Any]]

_CROP = "/media/crops/3f/3fa8c1.jpg"
_STATS = LayerScoreStats(score_min=0.41, score_max=2.87, low_confidence_below=0.93)
_CARD = NeuronSummary(
    unit=7,
    label="striped",
    score=2.31,
    low_confidence=False,
    score_fraction=0.77,
    explained_r=0.46,
    p_value=0.0002,
    reliable=True,
    stability=1.0,
    explanation=[WeightedConceptView(concept="striped", weight=0.8), WeightedConceptView(concept="zebra", weight=0.3)],
    explanation_r=0.52,
    ground_truth_r=None,
    verdict="explains",
    verdict_reasons=["out-of-fold r 0.46 is significant at the layer's 5% false discovery rate"],
    coverage_source="encoder",
    n_carrying=38,
    coverage_judgeable=True,
    encoder_blind=False,
    clarity=0.71,
    polysemanticity=0.12,
    redundancy=0.54,
    top_images=[GridImage(rank=1, image_index=412, activation=9.83, crop_url=_CROP)],
)


def response_example(summary: str, value: BaseModel, status: int = 200) -> Responses:
    """Return a `responses` entry giving the JSON answer of `status` one example, `value`."""
    example = {"summary": summary, "value": value.model_dump(mode="json")}
    return {status: {"content": {"application/json": {"examples": {summary: example}}}}}


RUNS = response_example(
    "the newest run, first of two",
    ListPage[RunSummary](
        items=[
            RunSummary(
                id=42,
                model_name="resnet18",
                architecture="resnet18",
                encoder="ViT-B-16:openai",
                similarity="soft_wpmi",
                pooling="avg",
                probe_set="cifar10-test",
                n_images=500,
                probe_set_display_name="cifar10-test (sample of 500 of 10,000)",
                concept_set="20k",
                n_concepts=20000,
                n_layers=2,
                n_neurons=1024,
                code_version="0.1.0",
                created_at=datetime(2026, 12, 7, 9, 30, tzinfo=UTC),
                settings_summary="soft_wpmi · avg · 500 images",
                owner="ada",
                title="run #42 · resnet18",
            )
        ],
        total=2,
        offset=0,
        limit=1,
        next="/api/v1/runs?limit=1&offset=1",
    ),
)

NEURONS = response_example(
    "the first page of a layer's neurons by score",
    NeuronList(
        run_id=42,
        layer="layer4",
        n_units=512,
        sort="-score",
        q="",
        reliable=False,
        verdict=None,
        stats=_STATS,
        items=[_CARD],
        total=512,
        offset=0,
        limit=1,
        next="/api/v1/runs/42/layers/layer4/neurons?sort=-score&limit=1&offset=1",
    ),
)

NEURON = response_example(
    "a neuron with its evidence",
    NeuronDetail(
        **_CARD.model_dump(exclude={"top_images"}),
        top_images=[
            TopImageView(
                rank=1,
                image_index=412,
                activation=9.83,
                crop_url=_CROP,
                box=(0.25, 0.1, 0.75, 0.6),
                view_url="/media/views/9c/9c0e2a.jpg",
                heatmap_url="/media/heatmaps/5d/5d11f0.png",
            )
        ],
        run_id=42,
        model_name="resnet18",
        layer="layer4",
        layer_kind="conv",
        n_units=512,
        runners_up=[ConceptScoreView(concept="zebra", score=2.02), ConceptScoreView(concept="grid", score=1.75)],
        previous_unit=6,
        next_unit=8,
        stats=_STATS,
        permalink="/runs/42/layers/layer4/neurons/7",
    ),
)

CONCEPT_RANKING = response_example(
    "the best unit for 'dog', first of 512",
    ConceptSearchResult(
        run_id=42,
        layer="layer4",
        concept="dog",
        n_units=512,
        seconds=0.08,
        warning=None,
        n_carrying=51,
        encoder_blind=False,
        items=[ConceptHit(rank=1, unit=130, score=3.12, label="terrier", label_score=2.64)],
        total=512,
        offset=0,
        limit=1,
        next="/api/v1/runs/42/layers/layer4/concepts?q=dog&limit=1&offset=1",
    ),
)

PUSHED = response_example(
    "the stored run",
    RunPushed(run_id=43, url="http://127.0.0.1:8000/runs/43", api_url="http://127.0.0.1:8000/api/v1/runs/43"),
    status=201,
)
