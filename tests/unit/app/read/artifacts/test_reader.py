"""The store's writer and the app's artifacts reader agree on every file of a run's folder, and the reader tells a
missing or damaged file by its name (never the server folder) with the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from app.core.errors import AtlasError
from app.persistence.store.artifacts import save_layer, save_run_tensors, write_artifacts
from app.persistence.store.layout import ArtifactsLayout
from app.read.artifacts.activations import ActivationsUnavailable
from app.read.artifacts.reader import ArtifactsReader
from app.read.artifacts.scoring import ConceptSearchUnavailable, read_concepts
from dissect_core.analysis.label_free import random_baseline
from dissect_core.results import DissectionResult
from tests.support.fakes import fake_result, make_images

N_IMAGES = 6
PINNED = {"model": "resnet18", "similarity": "soft_wpmi", "similarity_params": {"top_k": 3}}


@pytest.fixture
def result(tmp_path: Path) -> DissectionResult:
    """A fake dissection over six images, with every per-image tensor a run can keep."""
    stored = fake_result(make_images(tmp_path / "probe", N_IMAGES))
    stored.carry_cosines = torch.linspace(0.1, 0.6, N_IMAGES)
    return stored


def stored_run(tmp_path: Path, result: DissectionResult) -> tuple[ArtifactsReader, str, ArtifactsLayout]:
    """Write the result's artifacts under the data folder `tmp_path`; return a reader, the folder as a run's row
    stores it (relative to the data folder) and its layout."""
    folder = write_artifacts(tmp_path / "artifacts", result, PINNED)
    return ArtifactsReader(tmp_path), folder.relative_to(tmp_path).as_posix(), ArtifactsLayout(folder)


def test_the_reader_reads_back_every_file_the_writer_stores(tmp_path: Path, result: DissectionResult) -> None:
    reader, stored, layout = stored_run(tmp_path, result)
    assert any(layer.top_maps is not None for layer in result.layers)  # the fake has a spatial layer

    scoring = reader.scoring(stored)
    assert torch.equal(scoring.image_embeddings, result.image_embeddings.float())
    assert result.log_normalisers is not None and torch.equal(scoring.log_normalisers, result.log_normalisers)
    assert scoring.vocabulary == frozenset(result.concepts)
    assert read_concepts(layout) == result.concepts
    bars = reader.carry_cosines(stored)
    assert bars is not None and result.carry_cosines is not None and torch.equal(bars, result.carry_cosines)
    for layer in result.layers:
        assert torch.equal(reader.top_indices(stored, layer.name), layer.top_indices)
        rows = reader.activation_rows(stored, layer.name, n_images=N_IMAGES)
        assert rows.dtype == torch.float16 and torch.equal(rows, layer.activations.T.half())
        if layer.top_maps is not None:  # read by the top image media, memory-mapped, on a heatmap's first request
            assert torch.equal(torch.load(layout.top_maps(layer.name), weights_only=True), layer.top_maps.half())
    assert torch.load(layout.concept_list, weights_only=True) == result.concepts
    assert json.loads(layout.settings.read_text(encoding="utf-8")) == PINNED

    # Nothing is stored under a name the layout does not give.
    named = {
        layout.image_embeddings,
        layout.log_normalisers,
        layout.carry_cosines,
        layout.concepts,
        layout.concept_list,
        layout.settings,
    }
    for layer in result.layers:
        named |= {layout.top_indices(layer.name), layout.activations(layer.name)}
        if layer.top_maps is not None:
            named.add(layout.top_maps(layer.name))
    assert {path for path in layout.folder.rglob("*") if path.is_file()} == named


def test_a_missing_or_damaged_file_is_named_with_the_fix(tmp_path: Path, result: DissectionResult) -> None:
    reader, stored, layout = stored_run(tmp_path, result)
    layer = result.layers[0].name
    layout.activations(layer).unlink()
    with pytest.raises(ActivationsUnavailable) as missing:
        reader.activation_rows(stored, layer)
    top = result.layers[0].top_indices
    save_layer(layout, layer, top_indices=top + N_IMAGES)  # indices past the stored images
    with pytest.raises(ConceptSearchUnavailable) as damaged:
        reader.top_indices(stored, layer)
    save_run_tensors(layout, carry_cosines=torch.zeros(N_IMAGES + 1))
    with pytest.raises(ConceptSearchUnavailable) as short:
        reader.carry_cosines(stored)
    layout.log_normalisers.unlink()
    with pytest.raises(ConceptSearchUnavailable) as no_normalisers:
        ArtifactsReader(tmp_path).scoring(stored)
    for error, file_name in [
        (missing, layout.activations(layer).name),
        (damaged, layout.top_indices(layer).name),
        (short, layout.carry_cosines.name),
        (no_normalisers, layout.log_normalisers.name),
    ]:
        message = str(error.value)
        assert file_name in message and str(tmp_path) not in message
    for error in (missing, damaged, short):
        assert "dissect the model again" in str(error.value)
    assert "--similarity soft_wpmi" in str(no_normalisers.value)


def test_a_layer_name_that_could_name_another_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AtlasError, match="cannot name a file"):
        ArtifactsLayout(tmp_path).activations("../settings")


def test_the_label_free_baseline_is_the_seeded_chance_level_of_the_stored_embeddings_kept_once(
    tmp_path: Path, result: DissectionResult
) -> None:
    reader, stored, _layout = stored_run(tmp_path, result)
    baseline = reader.label_free_baseline(stored, 3)
    expected = random_baseline(result.image_embeddings.float(), 3)
    assert torch.equal(baseline.clarity, expected.clarity)
    assert torch.equal(baseline.polysemanticity, expected.polysemanticity)
    assert reader.label_free_baseline(stored, 3) is baseline  # cached
    assert reader.label_free_baseline(stored, 2) is not baseline  # per set size
