"""Graded verdicts through the real pipeline: a tiny seeded dissection grades every label, counts its concept's
coverage and scores its top images label-free; the store keeps all of it and the API, the grid and the run page
show it."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.persistence.store import store_run
from app.web.main import create_app
from dissect_core.config import DissectConfig
from dissect_core.evaluation.verdict import VERDICTS
from dissect_core.pipeline import run_dissection
from dissect_core.results import DissectionResult
from tests.conftest import TINY_CLIP, make_probe_folder
from tests.support.dashboard_seed import prepare_database

pytestmark = pytest.mark.usefixtures("tiny_clip")

LAYER = "layer3"


@pytest.fixture(scope="module")
def dissected(tmp_path_factory: pytest.TempPathFactory) -> DissectionResult:
    """A seeded dissection of a random ResNet-18's layer3 over 30 labelled random images, evaluated in 5 folds."""
    root = tmp_path_factory.mktemp("verdicts")
    concepts = root / "concepts.txt"
    concepts.write_text("dots\nstripes\ncat\ndog\ncar\nsky\n")
    config = DissectConfig(
        model="resnet18",
        weights="none",
        layers=(LAYER,),
        probe=str(make_probe_folder(root / "probe", n_images=30)),
        concepts=str(concepts),
        encoder=TINY_CLIP,
        similarity_params={"top_k": 4},
        n_folds=5,
        n_top_images=5,
    )
    return run_dissection(config)


def test_the_pipeline_grades_every_label_with_reasons_coverage_and_label_free_scores(
    dissected: DissectionResult,
) -> None:
    neurons = dissected.layer(LAYER).neurons
    assert all(neuron.evaluation is not None and neuron.verdict is not None for neuron in neurons)
    for neuron in neurons:
        assert neuron.verdict is not None and neuron.coverage is not None and neuron.evaluation is not None
        assert neuron.verdict.verdict in VERDICTS and len(neuron.verdict.reasons) == 4
        assert neuron.verdict.reliable == (neuron.verdict.verdict == "explains")
        assert (neuron.verdict.verdict == "no label") == (not neuron.evaluation.significant)
        assert neuron.clarity is not None and neuron.polysemanticity is not None and neuron.redundancy is not None
        assert -1 <= neuron.clarity <= 1 and 0 <= neuron.polysemanticity <= 2
    # The probe folders are the classes "dots" and "stripes" (15 images each): their labels count the coverage.
    by_label = {neuron.label: neuron.coverage for neuron in neurons if neuron.coverage is not None}
    for label in ("dots", "stripes"):  # both are some unit's label in this seeded run
        coverage = by_label[label]
        assert (coverage.source, coverage.n_carrying, coverage.judgeable) == ("labels", 15, True)
    assert all(by_label[label].source == "encoder" for label in set(by_label) - {"dots", "stripes"})
    # A random network on random images: no label reaches the top grade.
    assert not any(neuron.verdict is not None and neuron.verdict.reliable for neuron in neurons)


def test_a_stored_graded_run_serves_its_verdicts(dissected: DissectionResult, tmp_path: Path) -> None:
    settings, engine = prepare_database(tmp_path / "data")
    run_id = store_run(engine, settings, dissected)
    client = TestClient(create_app(settings))
    url = f"/api/v1/runs/{run_id}/layers/{LAYER}/neurons"
    page = client.get(url, params={"limit": 500}).json()
    neurons = {neuron.unit: neuron for neuron in dissected.layer(LAYER).neurons}
    assert page["total"] == len(neurons)
    for served in page["items"]:
        neuron = neurons[served["unit"]]
        assert neuron.verdict is not None and neuron.coverage is not None and neuron.clarity is not None
        assert served["verdict"] == neuron.verdict.verdict and served["verdict_reasons"] == list(neuron.verdict.reasons)
        assert served["reliable"] is neuron.verdict.reliable
        assert (served["coverage_source"], served["n_carrying"]) == (neuron.coverage.source, neuron.coverage.n_carrying)
        assert served["coverage_judgeable"] is neuron.coverage.judgeable
        assert served["encoder_blind"] is neuron.coverage.encoder_blind
        assert served["clarity"] == pytest.approx(neuron.clarity, abs=1e-6)
        assert served["polysemanticity"] == pytest.approx(neuron.polysemanticity, abs=1e-6)

    counts = {grade: client.get(url, params={"verdict": grade}).json()["total"] for grade in VERDICTS}
    assert sum(counts.values()) == len(neurons) and counts["explains"] == 0
    polysemantic = client.get(url, params={"sort": "-polysemanticity", "limit": 500}).json()["items"]
    values = [neuron["polysemanticity"] for neuron in polysemantic]
    assert values == sorted(values, reverse=True) and not any(math.isnan(value) for value in values)

    unit = page["items"][0]["unit"]
    html = client.get(f"/runs/{run_id}/layers/{LAYER}/neurons/{unit}").text
    assert 'id="verdict-reasons"' in html and 'id="coverage"' in html and 'id="label-free"' in html
    overview = client.get(f"/runs/{run_id}").text
    grades = re.findall(r'<span class="grade grade-[a-z-]+">(\d+)</span>', overview)
    assert [int(count) for count in grades] == [counts[grade] for grade in VERDICTS]
    assert re.search(r'class="muted baseline" title="Mean clarity and polysemanticity of 256 random sets of', overview)
