"""A network already in memory as a target: its content identity, its preprocessing and its layers' names."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from dissect_core.errors import DissectError
from dissect_core.models.targets import Target, get_layer
from dissect_core.preprocessing import FALLBACK_PREPROCESSING, Preprocessing, preset_preprocessing, with_overrides

#: How a config's `model` names a network passed in memory (`module:ResNet`): no loader reads it.
IN_MEMORY_PREFIX = "module:"
#: How the error for a missing or unusable transform says to pass one.
_TRANSFORM_HINT = (
    "pass transform= as torchvision weights (e.g. ResNet18_Weights.DEFAULT) or their .transforms(), a "
    "transforms.Compose of Resize, CenterCrop, ToTensor (or PILToTensor + ConvertImageDtype) and Normalize, or a "
    "dict such as {'resize': 256, 'crop': 224, 'mean': (0.485, 0.456, 0.406), 'std': (0.229, 0.224, 0.225)}"
)


def state_dict_sha256(model: nn.Module) -> str:
    """Return the sha256 over the model's state dict: each entry's name, dtype, shape and bytes, by name."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}\0{value.dtype}\0{tuple(value.shape)}\0".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def module_target(model: nn.Module, transform: object = None) -> Target:
    """Return an in-memory network as a target, named by its class, identified by its state dict's hash."""
    if not isinstance(model, nn.Module):
        raise DissectError(
            f"model must be a torch nn.Module or a model name (resnet18, timm:NAME, ...), not {type(model).__name__}"
        )
    name = type(model).__name__
    identity = f"{IN_MEMORY_PREFIX}{name}:sha256:{state_dict_sha256(model)}"
    return Target(f"{IN_MEMORY_PREFIX}{name}", model, module_preprocessing(model, transform), identity)


def layer_names(model: nn.Module, layers: Sequence[str | nn.Module] | str | nn.Module) -> tuple[str, ...]:
    """Return the dotted names of `layers` (names, or the submodules themselves), each checked to exist."""
    chosen = [layers] if isinstance(layers, str | nn.Module) else list(layers)
    by_module = {id(module): name for name, module in reversed(list(model.named_modules())) if name}
    names = []
    for layer in chosen:
        if isinstance(layer, nn.Module):
            if id(layer) not in by_module:
                raise DissectError(
                    f"the layer {type(layer).__name__} given is not a submodule of the model; pass one of its "
                    "submodules or its dotted name (see dissect_core.list_layers)"
                )
            names.append(by_module[id(layer)])
        elif isinstance(layer, str):
            get_layer(model, layer)
            names.append(layer)
        else:
            raise DissectError(f"a layer must be a dotted name or a submodule, not {type(layer).__name__}")
    return tuple(names)


def module_preprocessing(model: nn.Module, transform: object) -> Preprocessing:
    """Return how the network sees an image: from `transform`, else from the timm config it carries."""
    if transform is None:
        config = getattr(model, "pretrained_cfg", None)
        if isinstance(config, Mapping) and config.get("input_size"):
            import timm.data

            from dissect_core.preprocessing import timm_preprocessing

            return timm_preprocessing(timm.data.resolve_data_config({}, model=model))
        raise DissectError(f"the model carries no preprocessing of its own (no timm pretrained_cfg); {_TRANSFORM_HINT}")
    return preprocessing_of(transform)


def preprocessing_of(transform: object) -> Preprocessing:
    """Return the Preprocessing a transform describes (see _TRANSFORM_HINT for what it may be)."""
    if isinstance(transform, Preprocessing):
        return transform
    if isinstance(transform, Mapping):
        if not {"resize", "crop"} <= set(transform):
            raise DissectError(f"a transform dict needs at least resize and crop; {_TRANSFORM_HINT}")
        return with_overrides(FALLBACK_PREPROCESSING, transform)
    if callable(getattr(transform, "transforms", None)) and hasattr(transform, "meta"):  # torchvision weights
        return preset_preprocessing(transform.transforms())  # type: ignore[attr-defined]
    if all(hasattr(transform, key) for key in ("resize_size", "crop_size", "mean", "std")):
        return preset_preprocessing(transform)
    steps = getattr(transform, "transforms", None)
    if isinstance(steps, list):
        return _compose_preprocessing(steps)
    raise DissectError(f"cannot read how {type(transform).__name__} resizes, crops and normalises; {_TRANSFORM_HINT}")


def _compose_preprocessing(steps: list[Any]) -> Preprocessing:
    """Return the Preprocessing of a torchvision Compose of Resize, CenterCrop, to-tensor steps and Normalize."""
    values: dict[str, Any] = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}
    for step in steps:
        kind = type(step).__name__
        if kind == "Resize":
            size = step.size
            if isinstance(size, Sequence):
                if len(size) != 1:
                    raise DissectError(
                        f"Resize({list(size)}) stretches images to a fixed height and width; the pipeline resizes the "
                        f"shorter side and centre-crops: use Resize(N) then CenterCrop(M); {_TRANSFORM_HINT}"
                    )
                size = size[0]
            values.update(resize=int(size), interpolation=step.interpolation.value, antialias=bool(step.antialias))
        elif kind == "CenterCrop":
            values["crop"] = int(step.size[0])
        elif kind == "Normalize":
            values.update(mean=tuple(float(x) for x in step.mean), std=tuple(float(x) for x in step.std))
        elif kind not in ("ToTensor", "PILToTensor", "ConvertImageDtype", "ToImage", "ToDtype"):
            raise DissectError(f"the transform's step {kind} is not one the pipeline can apply; {_TRANSFORM_HINT}")
    if "resize" not in values and "crop" not in values:
        raise DissectError(f"the transform neither resizes nor crops; {_TRANSFORM_HINT}")
    values.setdefault("resize", values.get("crop"))
    values.setdefault("crop", values["resize"])
    return with_overrides(FALLBACK_PREPROCESSING, values)
