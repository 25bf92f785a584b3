"""An architecture's main stages: the layers a first dissection of it should look at.

For a ResNet that is `conv1, layer1 … layer4, fc`: the model's top-level blocks without their normalisation,
activation, pooling and dropout layers, and its final classifier. A model with fewer than three such blocks
(VGG's `features`, a ViT's `encoder`) is opened one level at a time until it has three.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

#: Module types that are glue between stages rather than stages: norms, activations, pools, dropout, reshapes.
_GLUE = re.compile(
    r"Norm|ReLU|GELU|SiLU|Swish|Sigmoid|Tanh|Softmax|Act|Pool|Dropout|Flatten|Identity|Permute|Hardswish|Mish|ELU"
)
#: Types that compute (a convolution with its norm, a block) even when their name holds a glue word.
_STAGE = re.compile(r"Conv|Linear|Block|Sequential|Stage")
#: Types that only hold other modules in sequence: one holding such containers is a list of stages, not a stage.
_CONTAINER = re.compile(r"Sequential|ModuleList|Stage")
#: The most stages a container of stages contributes whole; a longer one gives every second stage, from the second
#: (EfficientNet's `blocks` of 7 stages gives blocks.1, blocks.3 and blocks.5).
MAX_WHOLE_STAGES = 4
#: The fewest stages (before the classifier) a model is opened up to.
MIN_STAGES = 3
#: How many levels deep the stages may be opened.
MAX_DEPTH = 4


def _children(parent: str, types: dict[str, str]) -> list[str]:
    prefix = f"{parent}." if parent else ""
    depth = parent.count(".") + 1 if parent else 0
    return [name for name in types if name.startswith(prefix) and name.count(".") == depth and name != parent]


def _stages(names: list[str], types: dict[str, str]) -> list[str]:
    return [name for name in names if _STAGE.search(types[name]) or not _GLUE.search(types[name])]


def _opened_containers(stages: list[str], types: dict[str, str]) -> list[str]:
    """Return the stages with each container of stages (a Sequential of Sequentials) replaced by its stages."""
    opened: list[str] = []
    for name in stages:
        inner = _stages(_children(name, types), types)
        if len(inner) < 2 or not all(_CONTAINER.search(types[child]) for child in inner):
            opened.append(name)
        elif len(inner) <= MAX_WHOLE_STAGES:
            opened.extend(inner)
        else:
            opened.extend(inner[1::2])
    return opened


def _final_layer(top: list[str], types: dict[str, str]) -> str | None:
    """Return the classifier: the last top-level layer, or its last stage if it is a container."""
    if not top:
        return None
    final = top[-1]
    while stages := _stages(_children(final, types), types):
        final = stages[-1]
    return final


def main_stages(layers: Sequence[tuple[str, str]]) -> list[str]:
    """Return the main stages of a model, in forward order, from its `(dotted name, module type)` layers."""
    types = dict(layers)
    top = _children("", types)
    final = _final_layer(top, types)
    stages = _opened_containers(_stages([name for name in top if name != top[-1]], types), types) if top else []
    for _ in range(MAX_DEPTH):
        if len(stages) >= MIN_STAGES:
            break
        openable = [(len(_stages(_children(name, types), types)), name) for name in stages]
        widest = max(openable, default=(0, ""))
        if widest[0] == 0:
            break
        at = stages.index(widest[1])
        stages[at : at + 1] = _stages(_children(widest[1], types), types)
    chosen = [*stages, final] if final is not None and final not in stages else stages
    order = {name: index for index, (name, _type) in enumerate(layers)}
    return sorted(chosen, key=lambda name: order[name])
