"""An nn.Module as a target: its content identity, its layers' names, its preprocessing, dissect()'s options."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision import transforms
from torchvision.models import ResNet18_Weights

from dissect_core.api import _checked_options, list_layers
from dissect_core.errors import DissectError
from dissect_core.models.in_memory import layer_names, module_target, preprocessing_of, state_dict_sha256
from dissect_core.preprocessing import Preprocessing


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 6, 3))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


def seeded(seed: int) -> Small:
    torch.manual_seed(seed)
    return Small()


def test_the_identity_is_the_state_dicts_content() -> None:
    assert state_dict_sha256(seeded(0)) == state_dict_sha256(seeded(0))
    assert state_dict_sha256(seeded(0)) != state_dict_sha256(seeded(1))
    changed = seeded(0)
    with torch.no_grad():
        changed.fc.bias[0] += 1e-6
    assert state_dict_sha256(changed) != state_dict_sha256(seeded(0))
    halved = seeded(0).half()
    assert state_dict_sha256(halved) != state_dict_sha256(seeded(0))


def test_a_module_target_is_named_by_class_and_identified_by_content() -> None:
    target = module_target(seeded(0), {"resize": 40, "crop": 32})
    assert target.name == "module:Small"
    assert target.identity == f"module:Small:sha256:{state_dict_sha256(seeded(0))}"
    assert (target.preprocessing.resize, target.preprocessing.crop) == (40, 32)


def test_layers_may_be_names_or_the_submodules_themselves() -> None:
    net = seeded(0)
    assert layer_names(net, [net.features[2], "fc"]) == ("features.2", "fc")
    assert layer_names(net, net.fc) == ("fc",)
    with pytest.raises(DissectError, match=r"not a submodule"):
        layer_names(net, [nn.Linear(2, 2)])
    with pytest.raises(DissectError, match=r"no layer 'fcc'.*did you mean fc"):
        layer_names(net, ["fcc"])


def test_a_compose_gives_the_same_preprocessing_as_the_weights_preset() -> None:
    preset = preprocessing_of(ResNet18_Weights.DEFAULT)
    assert preset == preprocessing_of(ResNet18_Weights.DEFAULT.transforms())
    compose = transforms.Compose(
        [
            transforms.Resize(256),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
        ]
    )
    assert preprocessing_of(compose) == preset
    assert preprocessing_of(preset) is preset


def test_a_compose_without_a_crop_crops_to_its_resize_and_without_normalize_keeps_pixels() -> None:
    got = preprocessing_of(transforms.Compose([transforms.Resize(32), transforms.ToTensor()]))
    assert got == Preprocessing(resize=32, crop=32, interpolation="bilinear", mean=(0.0,) * 3, std=(1.0,) * 3)


@pytest.mark.parametrize(
    ("transform", "message"),
    [
        (None, "carries no preprocessing.*pass transform="),
        (transforms.Compose([transforms.RandomHorizontalFlip(), transforms.ToTensor()]), "RandomHorizontalFlip"),
        (transforms.Compose([transforms.Resize((32, 48)), transforms.ToTensor()]), "stretches"),
        ({"crop": 32}, "at least resize and crop"),
        (lambda image: image, "cannot read how function"),
    ],
)
def test_an_unusable_transform_says_how_to_pass_one(transform: object, message: str) -> None:
    with pytest.raises(DissectError, match=message):
        module_target(seeded(0), transform)


def test_unknown_options_are_named_with_the_known_ones() -> None:
    with pytest.raises(DissectError, match=r"unknown option.*n_fold\b.*the options are:.*n_folds"):
        _checked_options({"n_fold": 2}, in_memory=True)
    with pytest.raises(DissectError, match=r"checkpoint apply to a model given by name"):
        _checked_options({"checkpoint": "x.pt"}, in_memory=True)
    assert _checked_options({"top_k": 5, "similarity_params": {"alpha": 1}}, in_memory=True) == {
        "similarity_params": {"alpha": 1, "top_k": 5}
    }


def test_list_layers_of_a_module_marks_shapes_units_and_main_stages() -> None:
    layers = {layer.name: layer for layer in list_layers(seeded(0), transform={"resize": 36, "crop": 32})}
    assert layers["features.2"].output_shape == (6, 28, 28)
    assert layers["features.2"].n_units == 6
    assert layers["fc"].n_units == 5 and layers["fc"].main_stage
    assert not layers["pool"].main_stage
    assert next(iter(layers)) == "features.0"  # forward order: the first module to finish


def test_list_layers_of_a_name_needs_no_weights() -> None:
    layers = {layer.name: layer for layer in list_layers("resnet18")}
    assert layers["layer4"].output_shape == (512, 7, 7)
    assert [name for name, layer in layers.items() if layer.main_stage] == [
        "conv1",
        "layer1",
        "layer2",
        "layer3",
        "layer4",
        "fc",
    ]
