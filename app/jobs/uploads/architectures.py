"""The architectures a checkpoint can be uploaded for: their names, their layers, and whether a state dict fits.

Nothing here builds a model with weights: an architecture is built once on PyTorch's meta device (shapes only;
vit_h_14's 632 million parameters take no memory), its layers traced there, and only what the upload form and
checks need is kept, per architecture, each computed under a lock of its own.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from torch import nn

from app.core.cache_bounds import CacheBounds
from app.core.errors import AtlasError
from app.core.lru import LRUCache
from app.read.schemas.catalogue import LayerOption
from dissect_core.errors import DissectError
from dissect_core.models.class_names import check_class_names, model_output_count
from dissect_core.models.main_stages import main_stages
from dissect_core.models.state_dicts import state_dict_mismatch, tensor_shapes
from dissect_core.models.targets import build_skeleton, list_layers

DEFAULT_ARCHITECTURE = "resnet18"
#: A checkpoint declaring more tensor bytes than this many times the architecture's is refused unread: a training
#: checkpoint holds the weights and Adam's two moments (3x), and nothing fitting the architecture holds more.
PLAUSIBLE_CHECKPOINT_FACTOR = 4

#: architecture name -> the model built without weights (default: on the meta device); tests pass a small one.
ModelBuilder = Callable[[str], nn.Module]


@dataclass(frozen=True)
class ArchitectureFacts:
    """What uploads need of an architecture: its layers, its state dict's shapes and its parameters' bytes."""

    layers: list[LayerOption]
    #: The main stages and final classifier (dissect_core.models.main_stages): what the upload form pre-selects.
    main_layers: list[str]
    shapes: dict[str, tuple[int, ...]]
    parameter_bytes: int
    #: How many outputs its head has (its last nn.Linear or 1x1 nn.Conv2d), or None without one.
    n_outputs: int | None


def architecture_facts(architecture: str, model: nn.Module) -> ArchitectureFacts:
    """Return the facts of an architecture built as `model` (on the meta device or not), tracing its layers."""
    try:
        layers = list_layers(model.eval(), strict=True)
    except DissectError as error:
        raise AtlasError(
            f"The layers of {architecture} cannot be traced without weights: {error}. Pick another architecture, "
            f"or list them with `neuron-atlas layers --model {architecture}`."
        ) from None
    state = model.state_dict()
    return ArchitectureFacts(
        layers=[LayerOption(name=info.name, type=info.type_name, n_units=info.n_units) for info in layers],
        main_layers=main_stages([(info.name, info.type_name) for info in layers]),
        shapes=tensor_shapes(state),
        parameter_bytes=sum(tensor.numel() * tensor.element_size() for tensor in state.values()),
        n_outputs=model_output_count(model),
    )


def default_architecture_names() -> list[str]:
    """Return the built-in EfficientNet-Lites, then torchvision's classification models, by name."""
    from torchvision import models

    from dissect_core.models.targets import EFFICIENTNET_LITE

    return [*EFFICIENTNET_LITE, *sorted(models.list_models(module=models))]


class ArchitectureCatalog:
    """Names, layer lists and state-dict checks of architectures, each architecture built once without weights."""

    def __init__(
        self,
        names: list[str] | None = None,
        *,
        build: ModelBuilder | None = None,
        max_architectures: int = CacheBounds.architectures,
    ) -> None:
        self._names = names
        self._build = build or build_skeleton
        # Per-key loads: listing one architecture never waits for another being built.
        self._facts: LRUCache[str, ArchitectureFacts] = LRUCache(max_architectures, loads_per_key=True)

    def names(self) -> list[str]:
        """Return the architectures offered on the upload form."""
        if self._names is None:
            self._names = default_architecture_names()
        return self._names

    def default(self) -> str:
        """Return the architecture the upload form starts on (resnet18 when offered: small and common)."""
        names = self.names()
        return DEFAULT_ARCHITECTURE if DEFAULT_ARCHITECTURE in names else (names[0] if names else "")

    def check_name(self, architecture: str) -> str:
        """Return the architecture if it is known, or raise AtlasError with the closest names."""
        if architecture in self.names():
            return architecture
        close = difflib.get_close_matches(architecture, self.names(), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise AtlasError(f"Unknown architecture '{architecture}'.{hint} Pick one from the list.")

    def facts(self, architecture: str) -> ArchitectureFacts:
        """Return the architecture's layers, state-dict shapes and parameter bytes (computed once, cached)."""
        self.check_name(architecture)
        return self._facts.get_or_load(
            architecture, lambda: architecture_facts(architecture, self._build(architecture))
        )

    def layers(self, architecture: str) -> list[LayerOption]:
        """Return the architecture's layers in forward order, with their module types and unit counts."""
        return self.facts(architecture).layers

    def main_layers(self, architecture: str) -> list[str]:
        """Return the architecture's main stages and final classifier, in forward order (pre-selected on uploads)."""
        return self.facts(architecture).main_layers

    def check_layers(self, architecture: str, layers: list[str]) -> list[str]:
        """Return the chosen layers if all exist in the architecture, or raise naming the ones that do not."""
        if not layers:
            raise AtlasError("Pick at least one layer to dissect.")
        known = {option.name for option in self.layers(architecture)}
        unknown = [layer for layer in layers if layer not in known]
        if unknown:
            raise AtlasError(
                f"{architecture} has no layer {', '.join(repr(name) for name in unknown)}; "
                "pick layers from the list shown for the architecture."
            )
        return layers

    def check_size(self, architecture: str, tensor_bytes: int) -> None:
        """Raise AtlasError when a checkpoint declaring `tensor_bytes` is far too big to fit the architecture."""
        own = self.facts(architecture).parameter_bytes
        if tensor_bytes > PLAUSIBLE_CHECKPOINT_FACTOR * own:
            raise AtlasError(
                f"The checkpoint holds {tensor_bytes / 2**20:,.1f} MB of tensors, more than "
                f"{PLAUSIBLE_CHECKPOINT_FACTOR}x the {own / 2**20:,.1f} MB of {architecture}'s parameters, so it "
                "cannot be that architecture's. Pick the architecture it was trained with, or save the model's "
                "state_dict() alone."
            )

    def check_class_names(self, architecture: str, class_names: Sequence[str]) -> None:
        """Raise AtlasError naming both counts unless there is one class name per output of the architecture's head
        (a checkpoint that fits the architecture has its head)."""
        try:
            check_class_names(
                class_names,
                self.facts(architecture).n_outputs,
                head="the checkpoint's head",
                file="the class names file",
            )
        except DissectError as error:
            message = str(error)
            raise AtlasError(message[:1].upper() + message[1:]) from None

    def check_shapes(self, architecture: str, shapes: Mapping[str, tuple[int, ...]]) -> None:
        """Raise AtlasError listing missing, unexpected and wrongly shaped keys unless the shapes fit."""
        problem = state_dict_mismatch(self.facts(architecture).shapes, shapes, architecture)
        if problem:
            raise AtlasError(problem)
