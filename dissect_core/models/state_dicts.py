"""State dicts: reading checkpoints (torch zips memory-mapped, safetensors) after inspecting them, their shapes,
and whether one fits an architecture."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

import torch
from torch import Tensor, nn

from dissect_core.errors import DissectError
from dissect_core.models.checkpoint_inspection import RESAVE_HINT, inspect_checkpoint
from dissect_core.models.key_layouts import in_architecture_layout

T = TypeVar("T")


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Return the tensors of a checkpoint (.safetensors in any case, or a torch zip memory-mapped with
    weights_only=True), after checking that it declares no more than the file holds."""
    path = _existing_checkpoint(path)
    if inspect_checkpoint(path).format == "torch":
        return _torch_state_dict(path)
    from safetensors.torch import load_file

    try:
        return _without_module_prefix(load_file(str(path)))
    except Exception as error:
        raise DissectError(f"checkpoint {path} is not a readable safetensors file ({error})") from error


def read_state_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Return the shape of each tensor in a checkpoint: from a safetensors header, or from a torch file's pickle
    with its tensors memory-mapped (nothing is read into memory, and nothing is kept)."""
    path = _existing_checkpoint(path)
    facts = inspect_checkpoint(path)
    if facts.shapes is not None:
        return _without_module_prefix(facts.shapes)
    return tensor_shapes(_torch_state_dict(path))


def tensor_shapes(state_dict: Mapping[str, Tensor]) -> dict[str, tuple[int, ...]]:
    """Return the shape of each tensor in a state dict."""
    return {key: tuple(value.shape) for key, value in state_dict.items()}


def _existing_checkpoint(path: str | Path) -> Path:
    """Return the checkpoint's path, or raise DissectError when there is no such file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DissectError(f"checkpoint {path} does not exist; pass the path of a .pt/.pth/.safetensors file")
    return path


def _torch_state_dict(path: Path) -> dict[str, Tensor]:
    """Return the state dict in a torch zip, its tensors memory-mapped from the file (read when first used)."""
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:
        raise DissectError(
            f"checkpoint {path} could not be loaded with weights_only=True ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:200]}); {RESAVE_HINT}"
        ) from error
    for wrapper in ("state_dict", "model_state_dict", "model"):
        if isinstance(loaded, dict) and isinstance(loaded.get(wrapper), dict):
            loaded = loaded[wrapper]
    if not isinstance(loaded, dict) or not all(isinstance(value, Tensor) for value in loaded.values()):
        raise DissectError(
            f"checkpoint {path} holds a {type(loaded).__name__}, not a state dict of tensors; save model.state_dict()"
        )
    return _without_module_prefix(loaded)


def _without_module_prefix(state: dict[str, T]) -> dict[str, T]:
    """Return the mapping with the `module.` prefix DataParallel adds to every key removed."""
    prefix = "module."
    if state and all(key.startswith(prefix) for key in state):
        return {key[len(prefix) :]: value for key, value in state.items()}
    return state


def state_dict_mismatch(
    expected: Mapping[str, tuple[int, ...]], given: Mapping[str, tuple[int, ...]], architecture: str
) -> str | None:
    """Return one line naming the missing, unexpected and wrongly shaped keys, or None when `given` fits.

    Both map state-dict keys to tensor shapes (`tensor_shapes`, `read_state_shapes`); `given` in a known other
    layout (dissect_core.models.key_layouts) is renamed to the architecture's first.
    """
    given = in_architecture_layout(given, expected)
    missing = [key for key in expected if key not in given]
    unexpected = [key for key in given if key not in expected]
    mismatched = [
        f"{key} is {given[key]}, expected {expected[key]}"
        for key in expected
        if key in given and tuple(given[key]) != tuple(expected[key])
    ]
    if not (missing or unexpected or mismatched):
        return None
    parts = [f"The checkpoint does not fit {architecture}."]
    for title, items in (("Missing keys", missing), ("Unexpected keys", unexpected), ("Wrong shapes", mismatched)):
        if items:
            shown = "; ".join(items[:8]) + (f"; … and {len(items) - 8} more" if len(items) > 8 else "")
            parts.append(f"{title} ({len(items)}): {shown}.")
    parts.append("Pick the architecture the checkpoint was trained with, or save that model's state_dict().")
    return " ".join(parts)


def apply_state_dict(model: nn.Module, state_dict: Mapping[str, Tensor], architecture: str) -> None:
    """Load `state_dict` into `model` strictly (renamed from a known other key layout), or raise listing what does
    not fit and how to fix it."""
    state_dict = in_architecture_layout(state_dict, model.state_dict().keys())
    problem = state_dict_mismatch(tensor_shapes(model.state_dict()), tensor_shapes(state_dict), architecture)
    if problem:
        raise DissectError(problem)
    model.load_state_dict(state_dict, strict=True)
