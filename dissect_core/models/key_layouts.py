"""Checkpoint key layouts other than the architecture's own, renamed to it: the `efficientnet_lite_pytorch`
package's flat `_blocks.N._depthwise_conv.weight` keys become timm's nested `blocks.S.J.conv_dw.weight`.

Keys only: it works on a state dict's tensors and on a checkpoint's shapes read from its header alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TypeVar

T = TypeVar("T")

_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_INVERTED_RESIDUAL = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_DEPTHWISE_SEPARABLE = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)\.(\w+)")
_TIMM_BLOCK = re.compile(r"blocks\.(\d+)\.(\d+)\.")


def _timm_blocks(expected: Iterable[str]) -> list[tuple[str, bool]]:
    """Return timm's blocks in forward order, each with whether it is an inverted residual (has `conv_pwl`)."""
    blocks: dict[tuple[int, int], bool] = {}
    for key in expected:
        match = _TIMM_BLOCK.match(key)
        if match:
            place = (int(match[1]), int(match[2]))
            blocks[place] = blocks.get(place, False) or ".conv_pwl." in key
    return [(f"blocks.{stage}.{index}", inverted) for (stage, index), inverted in sorted(blocks.items())]


def is_efficientnet_lite_package_layout(keys: Iterable[str]) -> bool:
    """Return whether the keys are the `efficientnet_lite_pytorch` package's (`_conv_stem.weight`, `_blocks.0…`)."""
    return any(key.startswith("_conv_stem.") for key in keys)


def efficientnet_lite_keys(state: Mapping[str, T], expected: Iterable[str]) -> dict[str, T]:
    """Return the package-layout state (or shapes) under timm's keys, the blocks numbered as in `expected` (the
    architecture's own keys); a key that fits neither layout is kept, so the fit check names it."""
    blocks = _timm_blocks(expected)
    renamed: dict[str, T] = {}
    for key, value in state.items():
        match = _BLOCK_KEY.fullmatch(key)
        head = key.split(".", 1)
        if match and int(match[1]) < len(blocks):
            prefix, inverted = blocks[int(match[1])]
            fields = _INVERTED_RESIDUAL if inverted else _DEPTHWISE_SEPARABLE
            renamed[f"{prefix}.{fields.get(match[2], match[2])}.{match[3]}"] = value
        elif len(head) == 2 and head[0] in _TOP:
            renamed[f"{_TOP[head[0]]}.{head[1]}"] = value
        else:
            renamed[key] = value
    return renamed


def in_architecture_layout(state: Mapping[str, T], expected: Iterable[str]) -> Mapping[str, T]:
    """Return the state under the architecture's keys when it is in a known other layout, else as it is."""
    expected = list(expected)
    if is_efficientnet_lite_package_layout(state) and not is_efficientnet_lite_package_layout(expected):
        return efficientnet_lite_keys(state, expected)
    return state
