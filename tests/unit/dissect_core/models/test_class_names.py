"""Class names pinned from the weights' own metadata: torchvision's enum meta, timm's and EfficientNet-Lite's
ImageNet label files; nothing is downloaded."""

from __future__ import annotations

import pytest
from torchvision.models import ResNet18_Weights

from dissect_core.models.class_names import torchvision_categories, weights_class_names


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("class names must come from metadata, not a download")

    monkeypatch.setattr("torch.hub.load_state_dict_from_url", refuse)
    monkeypatch.setattr("torch.hub.download_url_to_file", refuse)


def test_torchvision_class_names_come_from_the_weights_enum_meta() -> None:
    expected = ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    assert weights_class_names("resnet18", "IMAGENET1K_V1") == expected
    assert weights_class_names("resnet18", "DEFAULT") == expected
    assert torchvision_categories(ResNet18_Weights.IMAGENET1K_V1)[:2] == ["tench", "goldfish"]


@pytest.mark.parametrize("weights", ["none", "none@3", "random", None])
def test_random_torchvision_weights_have_no_class_names(weights: str | None) -> None:
    assert weights_class_names("resnet18", weights) is None


def test_a_checkpoint_or_torchscript_file_has_no_class_names() -> None:
    assert weights_class_names("resnet18", "DEFAULT", checkpoint="finetuned.pt") is None
    assert weights_class_names("model.ts", "DEFAULT") is None


def test_unknown_weights_have_no_class_names() -> None:
    assert weights_class_names("resnet18", "NO_SUCH_WEIGHTS") is None


def test_efficientnet_lite_weights_have_the_imagenet_descriptions() -> None:
    names = weights_class_names("efficientnet_lite0", None)
    assert names is not None and len(names) == 1000
    assert names[0].startswith("tench, ")
    assert weights_class_names("efficientnet_lite0", "none") is None
