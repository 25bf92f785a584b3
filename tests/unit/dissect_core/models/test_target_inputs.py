"""Faithful target inputs: each target sees images exactly as its weights say, and random weights come from a seed."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms
from torchvision.models import EfficientNet_B3_Weights, ResNet18_Weights, ViT_B_16_Weights

from dissect_core.errors import DissectError
from dissect_core.models.targets import load_target
from dissect_core.preprocessing import FALLBACK_PREPROCESSING, Preprocessing, preset_preprocessing


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    """A random RGB image whose sides are neither square nor a multiple of anything."""
    return Image.fromarray((np.random.default_rng(0).random((217, 301, 3)) * 255).astype("uint8"))


def test_resnet18_sees_exactly_what_its_weights_transforms_give(photo):
    expected = ResNet18_Weights.DEFAULT.transforms()(photo)
    ours = preset_preprocessing(ResNet18_Weights.DEFAULT.transforms())
    assert ours.interpolation == "bilinear"
    assert torch.equal(ours.transform()(photo), expected)
    # The bicubic resize every target used before differs from it.
    assert not torch.equal(Preprocessing(256, 224, "bicubic").transform()(photo), expected)


def test_random_resnet18_sees_what_its_default_weights_would(photo):
    target = load_target("resnet18", weights="none")
    assert torch.equal(target.preprocessing.transform()(photo), ResNet18_Weights.DEFAULT.transforms()(photo))


@pytest.mark.parametrize(
    "weights", [ViT_B_16_Weights.IMAGENET1K_SWAG_E2E_V1, EfficientNet_B3_Weights.IMAGENET1K_V1], ids=str
)
def test_other_presets_are_reproduced_bit_for_bit(photo, weights):
    assert torch.equal(preset_preprocessing(weights.transforms()).transform()(photo), weights.transforms()(photo))


@pytest.mark.slow
def test_a_checkpoint_is_fed_like_its_architectures_default_weights(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(load_target("resnet18", weights="none@4").model.state_dict(), path)
    target = load_target("resnet18", checkpoint=str(path))
    assert target.preprocessing == preset_preprocessing(ResNet18_Weights.DEFAULT.transforms())


@pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")
def test_torchscript_keeps_the_fallback(tmp_path):
    path = tmp_path / "model.pt"
    torch.jit.save(torch.jit.script(torch.nn.Identity()), str(path))
    assert load_target(str(path)).preprocessing == FALLBACK_PREPROCESSING


def test_timm_interpolation_and_crop_come_from_the_models_config(photo):
    import timm

    target = load_target("timm:test_resnet", weights="none")
    config = timm.data.resolve_data_config({}, model=target.model)
    assert config["interpolation"] == "bilinear" and target.preprocessing.interpolation == "bilinear"
    assert (target.preprocessing.resize, target.preprocessing.crop) == (168, 160)  # floor(160 / 0.95)
    assert torch.equal(target.preprocessing.transform()(photo), timm.data.create_transform(**config)(photo))


def test_overrides_reach_the_transform(photo):
    overrides = {"resize": 40, "crop": 32, "interpolation": "nearest", "mean": [0.5, 0.5, 0.5], "std": (0.25,) * 3}
    target = load_target("resnet18", weights="none", preprocessing=overrides)
    assert target.preprocessing == Preprocessing(40, 32, "nearest", (0.5,) * 3, (0.25,) * 3)
    expected = transforms.Compose(
        [
            transforms.Resize(40, interpolation=transforms.InterpolationMode.NEAREST),
            transforms.CenterCrop(32),
            transforms.ToTensor(),
            transforms.Normalize((0.5,) * 3, (0.25,) * 3),
        ]
    )(photo)
    assert torch.equal(target.preprocessing.transform()(photo), expected)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"crop": 300}, "crop 300 is larger than the resized shorter side 256"),
        ({"size": 3}, "no setting 'size'"),
        ({"interpolation": "lanczos"}, "use one of bilinear, bicubic, nearest"),
        ({"std": (1, 0, 1)}, "three numbers R,G,B"),
    ],
)
def test_bad_overrides_are_refused(overrides, message):
    with pytest.raises(DissectError, match=message):
        load_target("resnet18", weights="none", preprocessing=overrides)


def parameters(model: torch.nn.Module) -> list[torch.Tensor]:
    return list(model.state_dict().values())


@pytest.mark.slow
def test_random_weights_come_from_the_seed_and_leave_the_callers_rng_alone():
    before = torch.get_rng_state()
    first, again = load_target("resnet18", weights="none"), load_target("resnet18", weights="none@0")
    other = load_target("resnet18", weights="none@1")
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(a, b) for a, b in zip(parameters(first.model), parameters(again.model), strict=True))
    assert not torch.equal(first.model.fc.weight, other.model.fc.weight)
    assert first.identity == again.identity == "torchvision:resnet18:random-seed0"
    assert other.identity == "torchvision:resnet18:random-seed1"


def test_random_timm_and_efficientnet_lite_weights_are_seeded():
    timm_a, timm_b = (load_target("timm:test_resnet", weights="none@2") for _ in range(2))
    assert all(torch.equal(a, b) for a, b in zip(parameters(timm_a.model), parameters(timm_b.model), strict=True))
    assert ":random-seed2:" in timm_a.identity
    lite_a, lite_b = (load_target("efficientnet_lite0", weights="random@5") for _ in range(2))
    assert torch.equal(lite_a.model.conv_stem.weight, lite_b.model.conv_stem.weight)
    assert lite_a.identity == "efficientnet_lite:efficientnet_lite0:random-seed5"


@pytest.mark.slow
def test_random_weights_are_the_same_in_another_process():
    code = (
        "from dissect_core.models.targets import load_target; "
        "print(float(load_target('resnet18', weights='none@7').model.fc.weight.detach().double().sum()))"
    )
    other_process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    here = float(load_target("resnet18", weights="none@7").model.fc.weight.detach().double().sum())
    assert float(other_process.stdout.strip()) == here


def test_a_malformed_seed_says_how_to_write_one():
    with pytest.raises(DissectError, match="none@SEED"):
        load_target("resnet18", weights="none@x")
