"""How a target network sees an image (resize, centre crop, normalise) and the user's overrides of it.

Importable without torch: the config checks overrides with it; only `Preprocessing.transform` loads torchvision.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from dissect_core.errors import DissectError

if TYPE_CHECKING:
    from PIL import Image
    from torch import Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The resampling filters a target's resize may use (torchvision's InterpolationMode values).
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
_CHANNEL_SETTINGS = ("mean", "std")


@dataclass(frozen=True)
class Preprocessing:
    """How a target sees an image: shorter side resized to `resize` with `interpolation`, centre `crop`, normalised.

    `antialias` is torchvision's flag for resizing tensors; PIL images (all the pipeline feeds) are always
    antialiased, but it is recorded so the settings say exactly what the weights' preset says.
    """

    resize: int
    crop: int
    interpolation: str
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    antialias: bool = True

    def transform(self) -> Callable[[Image.Image], Tensor]:
        """Return the transform from a PIL RGB image to a normalised float tensor [3, crop, crop].

        The same ops in the same order as torchvision's `ImageClassification` preset (a weights'
        `transforms()`), so the tensors equal the preset's bit for bit.
        """
        import torch
        from torchvision import transforms

        mode = transforms.InterpolationMode(self.interpolation)
        return transforms.Compose(
            [
                transforms.Resize(self.resize, interpolation=mode, antialias=self.antialias),
                transforms.CenterCrop(self.crop),
                transforms.PILToTensor(),
                transforms.ConvertImageDtype(torch.float),
                transforms.Normalize(self.mean, self.std),
            ]
        )


#: For networks that do not say how they were trained (TorchScript files): ImageNet's usual 256 → 224.
FALLBACK_PREPROCESSING = Preprocessing(resize=256, crop=224, interpolation="bicubic")
#: The settings a run may override (DissectConfig.preprocessing; `--resize`, `--crop`, ... on the CLI).
PREPROCESSING_SETTINGS = tuple(spec.name for spec in fields(Preprocessing))


def preset_preprocessing(preset: Any) -> Preprocessing:
    """Return the preprocessing of a torchvision `ImageClassification` preset (a weights' `transforms()`)."""
    return Preprocessing(
        resize=int(preset.resize_size[0]),
        crop=int(preset.crop_size[0]),
        interpolation=preset.interpolation.value,
        mean=tuple(preset.mean),
        std=tuple(preset.std),
        antialias=bool(preset.antialias),
    )


def timm_preprocessing(data_config: Mapping[str, Any]) -> Preprocessing:
    """Return the eval preprocessing of a timm data config (`timm.data.resolve_data_config`), as timm builds it."""
    crop = int(data_config["input_size"][-1])
    return Preprocessing(
        # timm's eval transform floors crop / crop_pct (e.g. 224 / 0.9 -> 248).
        resize=math.floor(crop / data_config["crop_pct"]),
        crop=crop,
        interpolation=str(data_config["interpolation"]),
        mean=tuple(data_config["mean"]),
        std=tuple(data_config["std"]),
    )


def check_overrides(overrides: object) -> None:
    """Raise DissectError naming the first override that is not a known setting with a valid value."""
    if not isinstance(overrides, Mapping) or not all(isinstance(key, str) for key in overrides):
        raise DissectError("preprocessing must map settings to values, e.g. {'resize': 256, 'crop': 224}")
    for key, value in overrides.items():
        if key not in PREPROCESSING_SETTINGS:
            raise DissectError(
                f"preprocessing has no setting {key!r}; its settings are {', '.join(PREPROCESSING_SETTINGS)}"
            )
        if key in ("resize", "crop") and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise DissectError(f"{key} must be a whole number of pixels of at least 1, not {value!r}")
        if key == "interpolation" and value not in INTERPOLATIONS:
            raise DissectError(f"unknown interpolation {value!r}; use one of {', '.join(INTERPOLATIONS)}")
        if key in _CHANNEL_SETTINGS:
            _check_channels(key, value)
        if key == "antialias" and not isinstance(value, bool):
            raise DissectError(f"antialias must be true or false, not {value!r}")
    resize, crop = overrides.get("resize"), overrides.get("crop")
    if isinstance(resize, int) and isinstance(crop, int):
        _check_crop_fits(resize, crop)


def _check_channels(key: str, value: object) -> None:
    """Raise unless `value` is three numbers (positive ones for std), one per RGB channel."""
    if (
        not isinstance(value, list | tuple)
        or len(value) != 3
        or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in value)
        or (key == "std" and min(value) <= 0)
    ):
        example = ",".join(str(x) for x in (IMAGENET_MEAN if key == "mean" else IMAGENET_STD))
        raise DissectError(f"{key} must be three numbers R,G,B (std above 0), e.g. {example}, not {value!r}")


def _check_crop_fits(resize: int, crop: int) -> None:
    """Raise unless the centre crop fits in the resized image (a larger one would be zero-padded)."""
    if crop > resize:
        raise DissectError(
            f"crop {crop} is larger than the resized shorter side {resize}; use a crop of at most {resize} "
            f"or a resize of at least {crop}"
        )


def with_overrides(base: Preprocessing, overrides: Mapping[str, Any]) -> Preprocessing:
    """Return `base` with the user's overrides applied (checked; mean and std as tuples of floats)."""
    check_overrides(overrides)
    values: dict[str, Any] = {
        key: tuple(float(x) for x in value) if key in _CHANNEL_SETTINGS else value for key, value in overrides.items()
    }
    preprocessing = replace(base, **values)
    _check_crop_fits(preprocessing.resize, preprocessing.crop)
    return preprocessing
