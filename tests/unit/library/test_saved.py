"""A saved folder: save -> load_saved gives an equal result; anything hostile or inconsistent is refused."""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from dissect_core import load_saved
from dissect_core.errors import DissectError
from dissect_core.results import DissectionResult
from dissect_core.saved import layout
from tests.unit.library.saved_helpers import assert_same_result, full_result


@pytest.fixture
def result(tmp_path: Path) -> DissectionResult:
    return full_result(tmp_path / "probe")


@pytest.fixture
def saved(tmp_path: Path, result: DissectionResult) -> Path:
    return result.save(tmp_path / "saved")


def reseal(folder: Path) -> None:
    """Rewrite the manifest's bytes and sha256 of every listed file (as a forger who knows the format would)."""
    manifest = json.loads((folder / layout.MANIFEST).read_text())
    for name in manifest["files"]:
        data = (folder / name).read_bytes()
        manifest["files"][name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (folder / layout.MANIFEST).write_text(json.dumps(manifest))


def edit_json(path: Path, change: Callable[[Any], object]) -> None:
    value = json.loads(path.read_text())
    change(value)
    path.write_text(json.dumps(value))


def test_a_saved_run_loads_back_equal(result: DissectionResult, saved: Path) -> None:
    loaded = load_saved(saved)
    assert_same_result(loaded.result, result)
    assert loaded.view_images == [saved / "images" / f"{index}.jpg" for index in range(len(result.image_ids))]
    with Image.open(loaded.view_images[0]) as view:
        assert view.size == (32, 32)  # the run's crop: the view the boxes refer to


def test_the_manifest_lists_counts_and_every_file(result: DissectionResult, saved: Path) -> None:
    manifest = json.loads((saved / layout.MANIFEST).read_text())
    assert manifest["format_version"] == layout.FORMAT_VERSION
    assert manifest["n_images"] == 10 and manifest["n_concepts"] == len(result.concepts)
    assert manifest["layers"] == [{"name": "layer1", "n_units": 6}, {"name": "fc", "n_units": 4}]
    on_disk = {path.relative_to(saved).as_posix() for path in saved.rglob("*") if path.is_file()}
    assert set(manifest["files"]) == on_disk - {layout.MANIFEST}
    assert {"results.csv", "results.json", "settings.json", "tensors.safetensors"} <= on_disk
    csv_data = (saved / "results.csv").read_bytes()
    assert manifest["files"]["results.csv"]["sha256"] == hashlib.sha256(csv_data).hexdigest()


def test_saving_again_replaces_the_earlier_save_but_never_other_files(
    tmp_path: Path, result: DissectionResult, saved: Path
) -> None:
    result.save(saved)
    load_saved(saved)
    other = tmp_path / "notes"
    other.mkdir()
    (other / "thesis.tex").write_text("mine")
    with pytest.raises(DissectError, match=r"new or empty folder"):
        result.save(other)
    assert (other / "thesis.tex").read_text() == "mine"


def test_a_pickle_in_the_folder_is_refused(saved: Path) -> None:
    (saved / "extra.pt").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(DissectError, match=r"extra.pt is a pickle"):
        load_saved(saved)


def test_a_pickle_under_an_allowed_name_is_refused(saved: Path) -> None:
    torch.save({"x": torch.zeros(2)}, saved / layout.TENSORS)
    reseal(saved)
    with pytest.raises(DissectError, match=r"tensors.safetensors is a pickle"):
        load_saved(saved)


@pytest.mark.parametrize("member", ["../outside.csv", "/etc/passwd", "images/../results.csv", "sub/run.json"])
def test_a_manifest_naming_a_path_is_refused(saved: Path, member: str) -> None:
    edit_json(saved / layout.MANIFEST, lambda manifest: manifest["files"].update({member: {"bytes": 1, "sha256": "0"}}))
    with pytest.raises(DissectError, match=r"names only, never paths"):
        load_saved(saved)


def test_a_file_the_manifest_does_not_name_is_refused(saved: Path) -> None:
    (saved / "images" / "99.jpg").write_bytes((saved / "images" / "0.jpg").read_bytes())
    with pytest.raises(DissectError, match=r"images/99.jpg is in the folder but not in manifest.json"):
        load_saved(saved)


def test_a_link_is_refused(saved: Path) -> None:
    (saved / "images" / "0.jpg").unlink()
    (saved / "images" / "0.jpg").symlink_to(saved / "images" / "1.jpg")
    with pytest.raises(DissectError, match=r"images/0.jpg is a link"):
        load_saved(saved)


def test_a_wrong_sha256_is_refused(saved: Path) -> None:
    with open(saved / "results.csv", "a", encoding="utf-8") as handle:
        handle.write("x")
    edit_json(
        saved / layout.MANIFEST,
        lambda manifest: manifest["files"]["results.csv"].update(bytes=(saved / "results.csv").stat().st_size),
    )
    with pytest.raises(DissectError, match=r"results.csv's sha256 does not match"):
        load_saved(saved)


def test_a_layer_count_that_lies_is_refused(saved: Path) -> None:
    edit_json(saved / layout.MANIFEST, lambda manifest: manifest["layers"][0].update(n_units=7))
    with pytest.raises(DissectError, match=r"layer layer1 has 6 neurons but manifest.json says 7 units"):
        load_saved(saved)


def test_a_tensor_shape_that_disagrees_with_the_counts_is_refused(saved: Path) -> None:
    tensors = load_file(saved / layout.TENSORS)
    tensors["layer.0.activations"] = tensors["layer.0.activations"][:, :5].contiguous()
    save_file(tensors, saved / layout.TENSORS)
    reseal(saved)
    with pytest.raises(DissectError, match=r"layer.0.activations is 10x5, but the manifest's counts make it 10x6"):
        load_saved(saved)


def test_a_top_index_past_the_images_is_refused(saved: Path) -> None:
    tensors = load_file(saved / layout.TENSORS)
    tensors["layer.1.top_indices"][0, 0] = 10
    save_file(tensors, saved / layout.TENSORS)
    reseal(saved)
    with pytest.raises(DissectError, match=r"top_indices must be image indices below 10"):
        load_saved(saved)


def test_a_view_that_is_not_the_views_size_is_refused_before_decoding(saved: Path) -> None:
    Image.new("RGB", (4000, 4000)).save(saved / "images" / "3.jpg", quality=10)
    reseal(saved)
    with pytest.raises(DissectError, match=r"images/3.jpg is 4000x4000 pixels; a view of this run is 32x32"):
        load_saved(saved)


def test_a_total_size_over_the_bound_is_refused(saved: Path) -> None:
    with pytest.raises(DissectError, match=r"more than the 1000 allowed"):
        load_saved(saved, max_bytes=1000)


def test_a_missing_view_is_refused(saved: Path) -> None:
    edit_json(saved / layout.MANIFEST, lambda manifest: manifest["files"].pop("images/9.jpg"))
    (saved / "images" / "9.jpg").unlink()
    with pytest.raises(DissectError, match=r"missing: images/9.jpg"):
        load_saved(saved)


def test_an_unknown_field_in_a_neuron_is_refused(saved: Path) -> None:
    edit_json(saved / layout.RUN_JSON, lambda run: run["layers"][1]["neurons"][0].update(__class__="os.system"))
    reseal(saved)
    with pytest.raises(DissectError, match=r"unknown field.*__class__"):
        load_saved(saved)


def test_a_repeated_image_path_is_refused(saved: Path) -> None:
    edit_json(saved / layout.RUN_JSON, lambda run: run["image_paths"].__setitem__(1, run["image_paths"][0]))
    reseal(saved)
    with pytest.raises(DissectError, match=r"image_paths repeat a path"):
        load_saved(saved)
