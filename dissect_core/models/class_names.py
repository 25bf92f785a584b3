"""The class names of a target's output units: given by the user (one per output, in output order), or as its
weights come with them (torchvision weights' categories, timm's and EfficientNet-Lite's ImageNet label
descriptions), which a checkpoint keeps when its head has as many outputs as the architecture's trained weights
have names. Nothing is downloaded: only the weights' metadata and packaged label files are read.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dissect_core.errors import DissectError
from dissect_core.models.targets import EFFICIENTNET_LITE, TIMM_PREFIX
from dissect_core.names import is_torchscript_name, random_init_seed

if TYPE_CHECKING:
    from torch import nn

    from dissect_core.config import DissectConfig

#: How a class names file is described in errors and help: what one line of it holds.
CLASS_NAMES_FILE_FORMAT = "UTF-8 text, one class name per line in output order, blank lines ignored"
#: The longest class name taken: ImageNet's longest, with its synonyms, is 131 characters.
MAX_CLASS_NAME_CHARS = 300


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


def _trained_class_names(model_name: str, weights: str, model: Any) -> list[str] | None:
    """Return the class names that architecture `model_name`'s trained `weights` come with, or None."""
    if model_name in EFFICIENTNET_LITE:
        return _timm_imagenet_descriptions()
    if model_name.startswith(TIMM_PREFIX):
        cfg = getattr(model, "pretrained_cfg", None) or {}
        label_names = cfg.get("label_names") if isinstance(cfg, dict) else None
        return [str(name) for name in label_names] if label_names else _timm_imagenet_descriptions(model)
    return _torchvision_class_names(model_name, weights)


def model_output_count(model: nn.Module) -> int | None:
    """Return how many outputs the model's head has (its last nn.Linear or 1x1 nn.Conv2d), or None without one."""
    from torch import nn

    from dissect_core.wiring.output_recorder import classifier_candidate

    layer = classifier_candidate(model)
    if layer is None:
        return None
    head = model.get_submodule(layer)
    return head.out_features if isinstance(head, nn.Linear) else int(head.out_channels)  # type: ignore[arg-type]


def weights_class_names(
    model_name: str, weights: str | None, checkpoint: str | None = None, model: Any = None
) -> list[str] | None:
    """Return the class names of the model's output units as its weights define them, or None.

    None for random initialisations and TorchScript files. A checkpoint keeps the names of the architecture's
    trained weights when `model` (loaded from it) has a head of exactly as many outputs; a head of another size, or
    no `model` to tell, has none. `model` (the loaded model) also tells timm's label subset; it is only read.
    """
    if is_torchscript_name(model_name):
        return None
    try:
        if checkpoint:
            names = _trained_class_names(model_name, "DEFAULT", model) if model is not None else None
            return names if names is not None and model_output_count(model) == len(names) else None
        # EfficientNet-Lite: the shipped ImageNet-1k weights unless weights ask for random ones.
        if not _real_weights(weights, left_out_is_real=model_name in EFFICIENTNET_LITE):
            return None
        return _trained_class_names(model_name, weights or "DEFAULT", model)
    except Exception:  # metadata a library version lacks: the run simply has no class names
        return None


def check_class_names(
    class_names: Sequence[str], n_outputs: int | None, *, head: str = "the model's head", file: str | None = None
) -> None:
    """Raise DissectError unless there is one class name per output of a head of `n_outputs` outputs.

    `head` names the head in the message ("the checkpoint's head"); `file` the file the names were read from, one
    per line, so the message names both counts and the fix.
    """
    given = f"{file} has {len(class_names)} lines" if file else f"{len(class_names)} class names were given"
    if n_outputs is None:
        raise DissectError(
            f"{given}, but {head} was not found (no final nn.Linear or 1x1 nn.Conv2d) for them to name; leave the "
            "class names out"
        )
    if len(class_names) != n_outputs:
        raise DissectError(f"{head} has {n_outputs} outputs but {given}; give one name per output, in output order")


def run_class_names(config: DissectConfig, model: nn.Module) -> list[str] | None:
    """Return the names of a run's output units: the config's given `class_names` (checked: one per output of the
    loaded model's head, else DissectError), else its weights' (`weights_class_names`), else None."""
    if config.class_names is not None:
        check_class_names(config.class_names, model_output_count(model))
        return list(config.class_names)
    return weights_class_names(config.model, config.weights, config.checkpoint, model)


def parse_class_names(text: str, source: str = "the class names file") -> tuple[str, ...]:
    """Return the class names of a class names file's text (one per line, blank lines ignored, each stripped), or
    raise DissectError when it names none, or a name is longer than MAX_CLASS_NAME_CHARS or holds a control
    character (each is shown on every card of its unit)."""
    names = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not names:
        raise DissectError(f"{source} names no class; write {CLASS_NAMES_FILE_FORMAT}")
    for position, name in enumerate(names, start=1):
        if len(name) > MAX_CLASS_NAME_CHARS:
            raise DissectError(
                f"class name {position} of {source} is {len(name):,} characters long, over the limit of "
                f"{MAX_CLASS_NAME_CHARS}; write {CLASS_NAMES_FILE_FORMAT}"
            )
        control = next((character for character in name if unicodedata.category(character) == "Cc"), None)
        if control is not None:
            raise DissectError(
                f"class name {position} of {source} holds the control character U+{ord(control):04X}; write "
                f"{CLASS_NAMES_FILE_FORMAT}"
            )
    return names


def read_class_names(path: str | Path) -> tuple[str, ...]:
    """Return the class names in the file at `path` (`parse_class_names`), or raise DissectError saying why not."""
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DissectError(
            f"the class names file {file} is not UTF-8 text; save it as {CLASS_NAMES_FILE_FORMAT}"
        ) from None
    except OSError as error:
        raise DissectError(
            f"cannot read the class names file {file} ({error.strerror or error}); give the path of a text file "
            f"with {CLASS_NAMES_FILE_FORMAT}"
        ) from None
    return parse_class_names(text, f"the class names file {file}")
