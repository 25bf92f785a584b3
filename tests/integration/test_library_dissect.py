"""`dissect_core.dissect` from Python: an in-memory module labelled as the CLI labels its weights by checkpoint, the
default cache reused on a second call, probe sets given as lists and Datasets, and a real run saved and read back."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image
from torch import nn
from torchvision.models import ResNet18_Weights, resnet18

import dissect_core
from app.cli.main import main
from dissect_core.encoders.open_clip_encoder import OpenClipEncoder
from tests.conftest import TINY_CLIP, make_probe_folder
from tests.unit.library.saved_helpers import assert_same_result

pytestmark = pytest.mark.usefixtures("tiny_clip")

#: Fast settings: a few concepts, no out-of-fold evaluation, three top images.
FAST: dict[str, Any] = {"encoder": TINY_CLIP, "n_folds": 0, "top_k": 3, "progress": False}


class TinyCNN(nn.Module):
    """The README's notebook network: two convolutions and a classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(x))
        return self.fc(self.pool(torch.relu(self.conv2(x))).flatten(1))


TINY_TRANSFORM = {"resize": 32, "crop": 32}


def labels(frame_or_rows: object) -> list[tuple[str, int, str]]:
    """Return (layer, unit, label) of each row of a frame or of results.csv's rows."""
    rows = frame_or_rows.to_dict("records") if hasattr(frame_or_rows, "to_dict") else frame_or_rows
    return [(row["layer"], int(row["unit"]), row["label"]) for row in rows]  # type: ignore[union-attr]


def test_an_in_memory_module_gets_the_labels_of_its_weights_loaded_by_checkpoint(
    probe_folder: Path, concept_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEURON_ATLAS_DATA_DIR", str(tmp_path / "data"))
    torch.manual_seed(3)
    net = resnet18(weights=None)
    checkpoint = tmp_path / "resnet18-seed3.pt"
    torch.save(net.state_dict(), checkpoint)
    result = dissect_core.dissect(
        net,
        ["layer3", net.layer4],
        probe_folder,
        transform=ResNet18_Weights.DEFAULT,
        concepts=str(concept_file),
        cache_dir=tmp_path / "cache",
        **FAST,
    )
    assert main(
        [
            "dissect", "--model", "resnet18", "--checkpoint", str(checkpoint), "--layers", "layer3,layer4",
            "--probe", str(probe_folder), "--concepts", str(concept_file), "--clip", TINY_CLIP, "--folds", "0",
            "--top-k", "3", "--out", str(tmp_path / "cli"), "--quiet",
        ]
    ) == 0  # fmt: skip
    with open(tmp_path / "cli" / "results.csv", newline="", encoding="utf-8") as handle:
        by_checkpoint = list(csv.DictReader(handle))
    frame = result.to_frame()
    assert len(frame) == 256 + 512
    assert labels(frame) == labels(by_checkpoint)
    assert frame["score"].tolist() == pytest.approx([float(row["score"]) for row in by_checkpoint], abs=1e-5)
    assert result.record.config.model == "module:ResNet" and frame["model"].iloc[0] == "ResNet"
    assert str(result.record.identities.target).startswith("module:ResNet:sha256:")


def count_encoder_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the encoder's text and image batches from now on."""
    calls = {"texts": 0, "images": 0}
    for method, key in (("encode_texts", "texts"), ("encode_images", "images")):
        original = getattr(OpenClipEncoder, method)

        def counting(self, *args, _original=original, _key=key, **kwargs):
            calls[_key] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(OpenClipEncoder, method, counting)
    return calls


def test_a_second_call_reuses_the_default_caches_embeddings(
    probe_folder: Path, concept_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEURON_ATLAS_CACHE_DIR", str(tmp_path / "cache"))
    calls = count_encoder_calls(monkeypatch)
    torch.manual_seed(0)
    net = TinyCNN()
    options: dict[str, Any] = {"transform": TINY_TRANSFORM, "concepts": str(concept_file), **FAST}
    first = dissect_core.dissect(net, ["conv2", "fc"], probe_folder, **options)
    assert calls["texts"] >= 1 and calls["images"] >= 1
    assert (tmp_path / "cache" / "text").is_dir()
    calls.update(texts=0, images=0)
    second = dissect_core.dissect(net, ["conv2", "fc"], probe_folder, **options)
    assert calls == {"texts": 0, "images": 0}
    assert second.record.facts.timings_s["probe pass"] < first.record.facts.timings_s["probe pass"]
    assert labels(second.to_frame()) == labels(first.to_frame())


class PillowImages(torch.utils.data.Dataset):
    """A Dataset of (PIL image, class index) pairs, as torchvision's datasets yield them without a transform."""

    classes = ("dots", "stripes")

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        with Image.open(self.paths[index]) as image:
            return image.convert("RGB"), self.classes.index(self.paths[index].parent.name)


def test_a_list_of_paths_and_a_dataset_give_the_folders_labels(
    concept_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEURON_ATLAS_CACHE_DIR", str(tmp_path / "cache"))
    folder = make_probe_folder(tmp_path / "probe", 12)
    # Sorted by relative path, as the pipeline orders a folder: the three probes then hold the same images in order.
    paths = sorted(folder.rglob("*.png"), key=lambda path: path.relative_to(folder).as_posix())
    torch.manual_seed(1)
    net = TinyCNN()
    options: dict[str, Any] = {"transform": TINY_TRANSFORM, "concepts": str(concept_file), **FAST}
    by_folder = dissect_core.dissect(net, ["conv2"], folder, **options)
    by_list = dissect_core.dissect(net, ["conv2"], [str(path) for path in paths], **options)
    by_dataset = dissect_core.dissect(net, ["conv2"], PillowImages(paths), **options)
    assert labels(by_list.to_frame()) == labels(by_folder.to_frame()) == labels(by_dataset.to_frame())
    assert by_list.record.identities.probe_hash == by_folder.record.identities.probe_hash
    assert by_dataset.record.config.labels_file is not None  # the Dataset's classes became the probe's labels
    with open(by_dataset.record.config.labels_file, newline="", encoding="utf-8") as handle:
        assert {row["label"] for row in csv.DictReader(handle)} == {"dots", "stripes"}


def test_a_real_run_saves_and_loads_back_equal(
    probe_folder: Path, concept_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEURON_ATLAS_CACHE_DIR", str(tmp_path / "cache"))
    torch.manual_seed(2)
    net = TinyCNN()
    result = dissect_core.dissect(
        net, ["conv1", "conv2", "fc"], probe_folder, transform=TINY_TRANSFORM, concepts=str(concept_file), **FAST
    )
    saved = dissect_core.load_saved(result.save(tmp_path / "saved"))
    assert_same_result(saved.result, result)
    assert len(saved.view_images) == len(result.image_ids)
