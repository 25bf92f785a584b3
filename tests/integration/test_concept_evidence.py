"""Concept evidence on the neuron page and in the API: the probe images the encoder rates highest for a concept,
each a hit or a miss, and how many probe images carry it; and class names on a classifier's final layer."""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.persistence.models import Run
from app.persistence.store import store_run
from app.persistence.store.artifacts import save_layer, save_run_tensors
from app.persistence.store.layout import ArtifactsLayout
from app.read.artifacts.reader import ArtifactsReader
from app.web.main import create_app
from dissect_core.models.class_names import weights_class_names
from tests.support.dashboard_seed import (
    DIMENSIONS,
    N_IMAGES,
    Dashboard,
    FakeEncoder,
    build_dashboard,
    fake_encoder_loader,
    prepare_database,
)
from tests.support.fakes import fake_result, make_images

#: conv1's unit 3 (label "striped", direction 3) fires on these images: five of direction 3, three of others.
FIRING = (3, 11, 19, 27, 35, 40, 41, 42)
STRIPED_IMAGES = {index for index in range(N_IMAGES) if index % DIMENSIONS == 3}
HX = {"HX-Request": "true"}


def text_of(markup: str) -> str:
    """Return the words a page shows: tags dropped, entities decoded, spaces single."""
    return " ".join(re.sub(r"<[^>]+>", " ", html.unescape(markup)).split())


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """The seeded dashboard; the newer run keeps conv1's activations and every image's carry bar (0.7)."""
    seeded = build_dashboard(tmp_path_factory.mktemp("evidence") / "data")
    layout = ArtifactsLayout(seeded.newer.artifacts_dir)
    activations = torch.rand(N_IMAGES, 64, generator=torch.Generator().manual_seed(2))
    activations[list(FIRING), 3] = 10.0
    save_layer(layout, "conv1", activations=activations)
    # Direction images have cos >= 0.8 with their word; any other pair stays below 0.6 (the fake encoder).
    save_run_tensors(layout, carry_cosines=torch.full((N_IMAGES,), 0.7))
    yield seeded
    seeded.engine.dispose()


def evidence_url(run_id: int, layer: str, unit: int) -> str:
    """Return the API address of a neuron's concept evidence."""
    return f"/api/v1/runs/{run_id}/layers/{layer}/neurons/{unit}/concept-evidence"


def test_the_labels_evidence_lists_its_top_images_marks_hits_and_counts_carriers(
    client: TestClient, dashboard: Dashboard
) -> None:
    response = client.get(evidence_url(dashboard.newer.run_id, "conv1", 3))
    assert response.status_code == 200, response.text
    evidence = response.json()
    assert evidence["concept"] == "striped" and evidence["is_label"] is True
    images = evidence["images"]
    assert len(images) == 12 and {image["image_index"] for image in images} == STRIPED_IMAGES
    assert [image["rank"] for image in images] == list(range(1, 13))
    assert [image["cos"] for image in images] == sorted((image["cos"] for image in images), reverse=True)
    assert {image["image_index"] for image in images if image["hit"]} == {3, 11, 19, 27, 35}
    assert all(image["hit"] is False for image in images if image["image_index"] not in FIRING)
    assert evidence["n_hits"] == 5 and evidence["hit_threshold"] == pytest.approx(10.0)
    assert all(image["activation"] == pytest.approx(10.0) for image in images if image["hit"])
    assert evidence["n_carrying"] == 12 and evidence["carry_rank"] == 5 and evidence["n_images"] == N_IMAGES
    assert evidence["scarce"] is False and evidence["notes"] == []
    assert all(image["carries"] for image in images)
    assert images[0]["image_url"] == f"/runs/{dashboard.newer.run_id}/images/{images[0]['image_index']}"
    assert all(image["view_url"].startswith("/media/") for image in images)


def test_a_concept_the_probe_set_lacks_is_said_to_be_unjudgeable(client: TestClient, dashboard: Dashboard) -> None:
    evidence = client.get(evidence_url(dashboard.newer.run_id, "conv1", 3), params={"q": "theatre curtain"}).json()
    assert evidence["concept"] == "theatre curtain" and evidence["is_label"] is False
    assert evidence["n_carrying"] == 0 and evidence["scarce"] is True
    assert len(evidence["images"]) == 12  # still ranked, so the user sees what the encoder thought closest
    assert evidence["coverage_source"] == "encoder" and evidence["encoder_blind"] is False  # the probe set lacks it
    assert any("has 0 images of 'theatre curtain'" in note and "too few to judge" in note for note in evidence["notes"])
    page = client.get(f"/runs/{dashboard.newer.run_id}/layers/conv1/neurons/3/concept-evidence?q=theatre+curtain")
    assert "too few to judge a neuron on it; add images of it to the probe set" in text_of(page.text)


def test_the_fragment_says_how_many_top_images_fire_and_how_many_images_carry_it(
    client: TestClient, dashboard: Dashboard
) -> None:
    run_id = dashboard.newer.run_id
    fragment = client.get(f"/runs/{run_id}/layers/conv1/neurons/3/concept-evidence", headers=HX)
    assert fragment.status_code == 200 and "<html" not in fragment.text
    text = text_of(fragment.text)
    assert "5 of 12 top images for “striped” make this neuron fire" in text
    assert "12 of 96 probe images carry “striped”" in text
    assert fragment.text.count('class="verdict hit"') == 5 and fragment.text.count('class="verdict miss"') == 7
    assert f'href="/runs/{run_id}/images/3"' in fragment.text


def test_the_neuron_page_loads_the_labels_evidence_lazily_with_a_plain_link(
    client: TestClient, dashboard: Dashboard
) -> None:
    run_id = dashboard.newer.run_id
    page = client.get(f"/runs/{run_id}/layers/conv1/neurons/3").text
    url = f"/runs/{run_id}/layers/conv1/neurons/3/concept-evidence"
    assert f'hx-get="{url}" hx-trigger="load"' in page and f'<a href="{url}">' in page
    assert "verdict" not in page  # the page itself stays light
    full = client.get(url).text  # the link's page: the neuron page with the evidence in place
    assert "<html" in full and 'id="label-evidence"' in full and full.count('class="verdict hit"') == 5


def test_a_typed_concepts_answer_includes_its_evidence(client: TestClient, dashboard: Dashboard) -> None:
    run_id = dashboard.newer.run_id
    answer = client.get(f"/api/v1/runs/{run_id}/layers/conv1/neurons/3/concept", params={"q": "wheel"}).json()
    assert answer["concept"] == "wheel" and answer["evidence"]["concept"] == "wheel"
    assert {image["image_index"] for image in answer["evidence"]["images"]} == {
        index for index in range(N_IMAGES) if index % DIMENSIONS == 4
    }
    assert answer["evidence"]["n_hits"] == 0 and answer["evidence"]["n_carrying"] == 12
    fragment = client.get(f"/runs/{run_id}/layers/conv1/neurons/3/concept", params={"q": "wheel"}, headers=HX).text
    assert "ranks" in fragment and "0 of 12 top images for “wheel” make this neuron fire" in text_of(fragment)


def test_a_run_stored_before_shows_the_ranking_and_says_why_the_rest_is_missing(
    client: TestClient, dashboard: Dashboard
) -> None:
    evidence = client.get(evidence_url(dashboard.older.run_id, "conv1", 3)).json()
    assert len(evidence["images"]) == 12 and {image["image_index"] for image in evidence["images"]} == STRIPED_IMAGES
    assert evidence["n_carrying"] is None and evidence["n_hits"] is None and evidence["hit_threshold"] is None
    assert all(image["hit"] is None and image["activation"] is None for image in evidence["images"])
    notes = " ".join(evidence["notes"])
    assert "Layer 'conv1' of this run has no stored conv1.pt" in notes
    assert "stored before" in notes and "dissect the model again" in notes
    assert str(dashboard.settings.data_dir) not in notes
    older_url = f"/runs/{dashboard.older.run_id}/layers/conv1/neurons/3/concept-evidence"
    fragment = text_of(client.get(older_url, headers=HX).text)
    assert "cannot be counted" in fragment and "verdict" not in fragment


def test_a_layer_without_activations_still_lists_and_counts(client: TestClient, dashboard: Dashboard) -> None:
    evidence = client.get(evidence_url(dashboard.newer.run_id, "fc", 3)).json()
    assert evidence["n_carrying"] == 12 and evidence["n_hits"] is None
    assert any("Layer 'fc'" in note for note in evidence["notes"])


def test_bad_requests_name_the_problem(client: TestClient, dashboard: Dashboard) -> None:
    run_id = dashboard.newer.run_id
    missing = client.get(evidence_url(run_id, "conv1", 64))
    assert missing.status_code == 404 and "units 0–63" in missing.text
    long = client.get(evidence_url(run_id, "conv1", 3), params={"q": "x" * 201})
    assert long.status_code == 422 and "at most 200 characters" in long.text
    assert client.get(evidence_url(run_id, "nope", 3)).status_code == 404


# --- class names on a classifier's final layer ------------------------------------------------------------------


def test_class_names_pinned_from_the_weights_meta_show_on_the_final_layer(tmp_path: Path) -> None:
    settings, engine = prepare_database(tmp_path / "data")
    images = make_images(tmp_path / "probe", 8)
    result = fake_result(images, layers=(("layer1", "conv", 6, (4, 4)), ("fc", "linear", 1000, None)))
    fc = result.layers[1]
    fc.neurons[1] = dataclasses.replace(fc.neurons[1], label="goldfish")
    class_names = weights_class_names("resnet18", "IMAGENET1K_V1")  # the enum's meta only
    assert class_names is not None
    identities = dataclasses.replace(result.record.identities, class_names=tuple(class_names))
    result.record = dataclasses.replace(result.record, identities=identities)
    run_id = store_run(engine, settings, result)
    with TestClient(create_app(settings, encoder_loader=fake_encoder_loader(FakeEncoder()))) as client:
        goldfish = client.get(f"/api/v1/runs/{run_id}/layers/fc/neurons/1").json()
        assert goldfish["class_name"] == "goldfish" and goldfish["label_matches_class"] is True
        tench = client.get(f"/api/v1/runs/{run_id}/layers/fc/neurons/0").json()
        assert tench["class_name"] == "tench" and tench["label_matches_class"] is False
        conv = client.get(f"/api/v1/runs/{run_id}/layers/layer1/neurons/0").json()
        assert conv["class_name"] is None and conv["label_matches_class"] is None
        page = client.get(f"/runs/{run_id}/layers/fc/neurons/1").text
        assert 'id="class-name"' in page and "goldfish" in page and "label matches" in page
        assert "label differs" in client.get(f"/runs/{run_id}/layers/fc/neurons/0").text
        assert 'id="class-name"' not in client.get(f"/runs/{run_id}/layers/layer1/neurons/0").text
    engine.dispose()


def test_random_weights_show_no_class_name(client: TestClient, dashboard: Dashboard) -> None:
    neuron = client.get(f"/api/v1/runs/{dashboard.newer.run_id}/layers/fc/neurons/3").json()
    assert neuron["class_name"] is None and neuron["label_matches_class"] is None
    assert 'id="class-name"' not in client.get(f"/runs/{dashboard.newer.run_id}/layers/fc/neurons/3").text


def test_a_stored_run_keeps_each_images_carry_bar(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    images = make_images(tmp_path / "probe", 8)
    result = fake_result(images)
    result.carry_cosines = torch.linspace(0.1, 0.8, 8)
    run_id = store_run(engine, settings, result)
    with Session(engine) as session:
        run = session.get(Run, run_id)
        assert run is not None
        artifacts_dir = run.artifacts_dir
    bars = ArtifactsReader(settings.data_dir).carry_cosines(artifacts_dir)
    assert bars is not None and torch.equal(bars, result.carry_cosines)
