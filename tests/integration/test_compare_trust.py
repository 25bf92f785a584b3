"""The compare page's trust columns: per layer each run's mean r and grade shares, per unit both grades, both runs'
top images and the correlation of the unit's activations over the probe images both runs saw; the Δ header names
what it subtracts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.persistence.db import write_session
from app.persistence.models import Layer, Neuron, ProbeImage
from dissect_core.evaluation.verdict import VERDICTS
from tests.support.dashboard_seed import N_IMAGES, Dashboard, LayerSpec, build_dashboard, seed_run
from tests.support.distribution_seed import write_seeded_activations

LAYERS = (LayerSpec("conv1", "conv", 64), LayerSpec("fc", "linear", 10))


@dataclass
class Pair:
    """Two evaluated runs of one architecture with identical stored activations, and one that keeps none."""

    dashboard: Dashboard
    first: int
    second: int
    without_activations: int

    def compare(self, other: int, **params: str) -> dict:
        with TestClient(self.dashboard.app()) as client:
            answer = client.get(f"/api/v1/runs/{self.first}/compare", params={"other": other, **params})
        assert answer.status_code == 200, answer.text
        return answer.json()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    dashboard = build_dashboard(tmp_path_factory.mktemp("compare") / "data")
    seeded = [
        seed_run(dashboard.engine, dashboard.settings, model_name="trustnet", layers=LAYERS, evaluated=True)
        for _ in range(3)
    ]
    for run in seeded[:2]:
        write_seeded_activations(run)
    yield Pair(dashboard, seeded[0].run_id, seeded[1].run_id, seeded[2].run_id)
    dashboard.engine.dispose()


def grade_shares(pair: Pair, run_id: int, layer: str) -> dict[str, float]:
    with write_session(pair.dashboard.engine) as session:
        verdicts = session.scalars(
            select(Neuron.verdict)
            .join(Layer, Neuron.layer_id == Layer.id)
            .where(Layer.run_id == run_id, Layer.name == layer)
        ).all()
    return {grade: verdicts.count(grade) / len(verdicts) for grade in VERDICTS}


def test_each_layer_gives_both_runs_mean_r_and_grade_shares(pair):
    with write_session(pair.dashboard.engine) as session:  # the second run's conv1 labels all fall to "no label"
        conv1 = session.scalars(select(Layer.id).where(Layer.run_id == pair.second, Layer.name == "conv1")).one()
        session.execute(update(Neuron).where(Neuron.layer_id == conv1).values(verdict="no label"))
    layers = {layer["name"]: layer for layer in pair.compare(pair.second)["layers"]}
    conv1 = layers["conv1"]
    assert conv1["verdict_shares"] == pytest.approx(grade_shares(pair, pair.first, "conv1"))
    assert 0 < conv1["verdict_shares"]["explains"] < 1
    assert conv1["other_verdict_shares"] == {"explains": 0.0, "weak": 0.0, "no label": 1.0}
    assert conv1["mean_r"] == pytest.approx(conv1["other_mean_r"])  # the same seeded r in both runs
    assert layers["fc"]["other_verdict_shares"] == pytest.approx(grade_shares(pair, pair.second, "fc"))


def test_identical_activations_correlate_perfectly_unit_by_unit(pair):
    body = pair.compare(pair.second, layer="conv1", sort="unit", limit="10")
    correlations = {neuron["unit"]: neuron["activation_r"] for neuron in body["items"]}
    assert set(correlations) == set(range(10))
    dead = 2  # a unit that never fires has no r: 0 by the library's convention
    assert all(r == pytest.approx(1.0, abs=1e-6) for unit, r in correlations.items() if unit != dead)
    first = body["items"][0]
    assert first["verdict"] in VERDICTS and first["other_verdict"] in VERDICTS
    assert len(first["top_images"]) == 5 and len(first["other_top_images"]) == 5


def seeded_hashes(pair: Pair, run_id: int, reverse: bool) -> None:
    """Give run `run_id`'s probe image i the content hash of the seed's image i (or, reversed, N_IMAGES - 1 - i)."""
    with write_session(pair.dashboard.engine) as session:
        for index in range(N_IMAGES):
            content = N_IMAGES - 1 - index if reverse else index
            session.execute(
                update(ProbeImage)
                .where(ProbeImage.run_id == run_id, ProbeImage.index == index)
                .values(content_hash=f"{content:064d}")
            )


def test_images_are_matched_by_content_not_position(pair):
    seeded_hashes(pair, pair.second, reverse=True)  # the second run saw the same images in the opposite order
    try:
        body = pair.compare(pair.second, layer="conv1", sort="unit", limit="1")
        assert body["items"][0]["activation_r"] == pytest.approx(-1.0, abs=1e-6)  # unit 0's ramp, run backwards
    finally:
        seeded_hashes(pair, pair.second, reverse=False)


def test_a_run_without_activations_gives_no_correlation(pair):
    body = pair.compare(pair.without_activations, layer="fc", limit="3")
    assert [neuron["activation_r"] for neuron in body["items"]] == [None, None, None]


def test_the_delta_header_says_what_it_subtracts(pair):
    with TestClient(pair.dashboard.app()) as client:
        html = client.get(f"/runs/{pair.first}/compare", params={"other": pair.second}).text
    assert f"Δ score (#{pair.second} − #{pair.first})" in html
    assert f"mean Δ score (#{pair.second} − #{pair.first})" in html
    body = pair.compare(pair.second, layer="fc", sort="unit", limit="1")
    neuron = body["items"][0]
    assert neuron["delta"] == pytest.approx(neuron["other_score"] - neuron["score"])  # the header's order
