"""The class names a target's weights come with: torchvision weights' categories, timm's and EfficientNet-Lite's
ImageNet label descriptions. Nothing is downloaded: only the weights' metadata and packaged label files are read.
"""

from __future__ import annotations

from typing import Any

from dissect_core.models.targets import EFFICIENTNET_LITE, TIMM_PREFIX
from dissect_core.names import is_torchscript_name, random_init_seed


def _real_weights(weights: str | None, left_out_is_real: bool) -> bool:
    """Return whether `weights` name trained weights (not a random initialisation)."""
    if not weights:
        return left_out_is_real
    return random_init_seed(weights) is None


def torchvision_categories(weights_enum: Any) -> list[str] | None:
    """Return a torchvision weights enum member's meta["categories"], or None when it has none."""
    categories = getattr(weights_enum, "meta", {}).get("categories")
    return [str(name) for name in categories] if categories else None


def _torchvision_class_names(name: str, weights: str) -> list[str] | None:
    from torchvision import models

    try:
        choices = models.get_model_weights(name)
        member = choices.DEFAULT if weights == "DEFAULT" else choices[weights]
    except (KeyError, ValueError):
        return None
    return torchvision_categories(member)


def _timm_imagenet_descriptions(model: Any = None) -> list[str] | None:
    """Return the ImageNet label descriptions ("tench, Tinca tinca") timm ships for a model's label subset."""
    from timm.data import ImageNetInfo, infer_imagenet_subset

    subset = infer_imagenet_subset(model) if model is not None else "imagenet-1k"
    if not subset:
        return None
    info = ImageNetInfo(subset)
    return [str(info.index_to_description(index)) for index in range(info.num_classes())]


def weights_class_names(
    model_name: str, weights: str | None, checkpoint: str | None = None, model: Any = None
) -> list[str] | None:
    """Return the class names of the model's output units as its weights define them, or None.

    None for random initialisations, TorchScript files, and checkpoints (which may have a head of their own).
    `model` (the loaded timm model) tells timm's label subset; it is only read.
    """
    if checkpoint or is_torchscript_name(model_name):
        return None
    try:
        if model_name in EFFICIENTNET_LITE:  # shipped ImageNet-1k weights unless weights ask for random ones
            return _timm_imagenet_descriptions() if _real_weights(weights, left_out_is_real=True) else None
        if weights is None or not _real_weights(weights, left_out_is_real=False):
            return None
        if model_name.startswith(TIMM_PREFIX):
            cfg = getattr(model, "pretrained_cfg", None) or {}
            label_names = cfg.get("label_names") if isinstance(cfg, dict) else None
            return [str(name) for name in label_names] if label_names else _timm_imagenet_descriptions(model)
        return _torchvision_class_names(model_name, weights)
    except Exception:  # metadata a library version lacks: the run simply has no class names
        return None
