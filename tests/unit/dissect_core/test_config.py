"""`DissectConfig.validate()`: every structural check in one place, and model files named as the loader reads them."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from typing import Any

import pytest
import torch
from torch import nn

from dissect_core.config import DissectConfig
from dissect_core.errors import DissectError
from dissect_core.models.targets import load_target
from dissect_core.names import TORCHSCRIPT_SUFFIXES, is_torchscript_name

GOOD = DissectConfig(
    model="resnet18",
    layers=("layer3", "fc"),
    probe="cifar100",
    concepts="20k",
    encoder="ViT-B-16:openai",
    similarity="wpmi",
    similarity_params={"top_k": 5, "lam": 0.5},
    weights="none",
    checkpoint="weights.pt",
    pool="max",
    prompt_template="a photo of a {}",
    n_top_images=3,
    batch_size=8,
    max_images=100,
    device="cpu",
    labels_file="labels.csv",
)


def test_a_good_config_passes_and_defaults_pass() -> None:
    GOOD.validate()
    DissectConfig(model="resnet18", layers=("fc",), probe="/some/folder").validate()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"model": ""}, ["model must be non-empty text", "torchvision name"]),
        ({"model": None}, ["model must be non-empty text"]),
        ({"layers": ()}, ["layers must be one or more layer names", "neuron-atlas layers"]),
        ({"layers": ("fc", " ")}, ["layers must be one or more layer names"]),
        ({"layers": ("fc", 3)}, ["layers must be one or more layer names"]),
        ({"layers": "fc"}, ["layers must be one or more layer names"]),
        ({"layers": ("fc", "fc")}, ["layers ['fc', 'fc'] repeat a name", "give each layer once"]),
        ({"encoder": " "}, ["encoder must be non-empty text"]),
        ({"similarity": ""}, ["similarity must be non-empty text"]),
        ({"pool": ""}, ["pool must be non-empty text"]),
        ({"n_folds": 1}, ["n_folds must be 0 (no evaluation) or a whole number of at least 2"]),
        ({"n_folds": -2}, ["n_folds must be 0"]),
        ({"n_folds": True}, ["n_folds must be 0"]),
        ({"false_discovery_rate": 0}, ["false_discovery_rate must be a number between 0 and 1"]),
        ({"false_discovery_rate": 1.5}, ["false_discovery_rate must be a number between 0 and 1"]),
        ({"simulation": "sigmoid"}, ["unknown simulation 'sigmoid'", "cosine, softmax"]),
        ({"pool": "median"}, ["unknown pooling 'median'", "use one of avg, max"]),
        ({"similarity": "nope"}, ["unknown similarity function 'nope'", "soft_wpmi"]),
        ({"similarity_params": {"p_start": 0.9}}, ["wpmi has no parameter p_start", "its parameters are"]),
        ({"similarity_params": [("top_k", 5)]}, ["similarity_params must map parameter names"]),
        ({"similarity_params": {1: 5}}, ["similarity_params must map parameter names"]),
        ({"weights": 1}, ["weights must be text or left out"]),
        ({"prompt_template": 1}, ["prompt_template must be text or left out"]),
        ({"device": 0}, ["device must be text or left out"]),
        ({"prompt_template": "a photo"}, ["prompt template 'a photo' has no {}", "a photo of a {}"]),
        ({"prompt_template": ""}, ["has no {}"]),
        ({"n_top_images": 0}, ["n_top_images must be a whole number of at least 1, not 0"]),
        ({"n_top_images": True}, ["n_top_images must be a whole number"]),
        ({"batch_size": 2.0}, ["batch_size must be a whole number of at least 1, not 2.0"]),
        ({"batch_size": None}, ["batch_size must be a whole number"]),
        ({"max_images": 0}, ["max_images must be a whole number of at least 1"]),
        ({"max_images": False}, ["max_images must be a whole number"]),
        ({"probe": ""}, ["probe must be non-empty text", "cifar100"]),
        ({"concepts": " "}, ["concepts must be non-empty text", "20k, imagenet, cifar100"]),
        ({"checkpoint": ""}, ["checkpoint must be non-empty text", "checkpoint file"]),
        ({"labels_file": ""}, ["labels_file must be non-empty text", "labels file"]),
        ({"weights": "none@one"}, ["weights 'none@one' do not end in a whole-number seed", "none@1"]),
        ({"preprocessing": [("resize", 256)]}, ["preprocessing must map settings to values"]),
        ({"preprocessing": {"size": 256}}, ["preprocessing has no setting 'size'", "resize, crop, interpolation"]),
        ({"preprocessing": {"resize": 0}}, ["resize must be a whole number of pixels of at least 1, not 0"]),
        ({"preprocessing": {"crop": 224.0}}, ["crop must be a whole number of pixels"]),
        ({"preprocessing": {"resize": 200, "crop": 224}}, ["crop 224 is larger than the resized shorter side 200"]),
        ({"preprocessing": {"interpolation": "area"}}, ["unknown interpolation 'area'", "bilinear, bicubic, nearest"]),
        ({"preprocessing": {"mean": [0.5, 0.5]}}, ["mean must be three numbers R,G,B", "0.485,0.456,0.406"]),
        ({"preprocessing": {"std": [0.5, 0, 0.5]}}, ["std must be three numbers R,G,B (std above 0)"]),
        ({"preprocessing": {"antialias": "yes"}}, ["antialias must be true or false"]),
    ],
)
def test_each_bad_field_is_named_with_the_fix(change: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(DissectError) as raised:
        replace(GOOD, **change).validate()
    assert all(word in str(raised.value) for word in words), str(raised.value)


def test_optional_fields_may_be_left_out() -> None:
    replace(GOOD, weights=None, prompt_template=None, device=None, max_images=None, checkpoint=None).validate()


def test_preprocessing_overrides_survive_a_json_round_trip() -> None:
    overrides = {"resize": 40, "crop": 32, "interpolation": "nearest", "mean": (0.5,) * 3, "antialias": False}
    config = replace(GOOD, preprocessing=overrides, weights="none@3")
    config.validate()
    data = json.loads(json.dumps(config.to_dict()))
    assert data["preprocessing"] == {**overrides, "mean": [0.5, 0.5, 0.5]}
    DissectConfig(**{**data, "layers": tuple(data["layers"])}).validate()


def test_from_dict_reads_to_dict_back_and_is_the_one_way_from_a_dict() -> None:
    config = replace(GOOD, preprocessing={"resize": 40, "crop": 32, "mean": (0.5,) * 3})
    assert DissectConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    comma_separated = {"model": "resnet18", "layers": "layer3, fc", "probe": "p"}
    assert DissectConfig.from_dict(comma_separated).layers == ("layer3", "fc")


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({**GOOD.to_dict(), "modle": "x", "view": {}}, ["unknown setting(s) modle, view", "the settings are: model,"]),
        ({**GOOD.to_dict(), "layers": []}, ["missing setting(s) layers", "give the model, its layers"]),
        ({"model": "resnet18"}, ["missing setting(s) layers, probe"]),
        ({**GOOD.to_dict(), "layers": 3}, ["layers must be a list of layer names"]),
        (["model", "resnet18"], ["settings must be a JSON object"]),
    ],
)
def test_from_dict_refuses_unknown_and_missing_settings_naming_them(data: Any, words: list[str]) -> None:
    with pytest.raises(DissectError) as raised:
        DissectConfig.from_dict(data)
    assert all(word in str(raised.value) for word in words), str(raised.value)


def test_from_dict_finds_relative_files_and_folders_under_the_base_folder(tmp_path) -> None:
    data = {**GOOD.to_dict(), "probe": "probe-sets/ab", "checkpoint": str(tmp_path / "my.pt"), "model": "net.pt"}
    config = DissectConfig.from_dict(data, base_dir=tmp_path / "data")
    assert config.probe == str(tmp_path / "data" / "probe-sets" / "ab")
    assert config.model == str(tmp_path / "data" / "net.pt")  # a TorchScript file, not an architecture
    assert config.checkpoint == str(tmp_path / "my.pt") and config.labels_file == str(tmp_path / "data" / "labels.csv")
    assert (config.concepts, config.encoder) == ("20k", "ViT-B-16:openai")  # a built-in and a spec: no paths
    assert DissectConfig.from_dict({**data, "probe": "cifar100"}, base_dir=tmp_path).probe == "cifar100"


def test_an_encoder_built_on_the_target_itself_is_refused_before_any_run() -> None:
    with pytest.raises(DissectError, match="built on efficientnet_lite2 itself"):
        replace(GOOD, model="efficientnet_lite2", encoder="conse:efficientnet_lite2+minilm").validate()
    replace(GOOD, model="efficientnet_lite0", encoder="conse:efficientnet_lite2+minilm").validate()


def test_config_imports_without_torch() -> None:
    code = "import sys, dissect_core.config, dissect_core.names, dissect_core.progress; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


class Doubler(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * x


@pytest.mark.parametrize("name", ["model.pt", "model.PTH", "model.ts", "model.torchscript"])
@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_every_torchscript_suffix_is_loaded_as_a_file(tmp_path, name: str) -> None:
    path = tmp_path / name
    torch.jit.save(torch.jit.script(Doubler()), str(path))
    assert is_torchscript_name(str(path))
    assert load_target(str(path)).identity.startswith("torchscript:sha256:")


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_a_jit_file_is_refused_by_the_loader_and_the_app_alike(tmp_path) -> None:
    from app.jobs.dissections import validate_config

    path = tmp_path / "model.jit"
    torch.jit.save(torch.jit.script(Doubler()), str(path))
    assert not is_torchscript_name(str(path)) and ".jit" not in TORCHSCRIPT_SUFFIXES
    with pytest.raises(DissectError, match="unknown model"):
        load_target(str(path))
    probe = tmp_path / "probe"
    probe.mkdir()
    config = DissectConfig(model=str(path), layers=("fc",), probe=str(probe), concepts="20k")
    with pytest.raises(DissectError, match=r"does not end in \.pt, \.pth, \.ts, \.torchscript"):
        validate_config(config)
    accepted = validate_config(replace(config, model=str(path.rename(tmp_path / "model.pt"))))
    assert accepted.model == str((tmp_path / "model.pt").resolve())
