"""The architectures a checkpoint can be uploaded for: their names, their layers, and whether a state dict fits."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping

from torch import Tensor, nn

from app.core.errors import AtlasError
from app.core.lru import LRUCache
from app.read.schemas import LayerOption
from dissect_core.models.targets import state_dict_mismatch

DEFAULT_ARCHITECTURE = "resnet18"

#: architecture name -> freshly built model with random weights (nothing downloaded); tests pass a small one.
ModelBuilder = Callable[[str], nn.Module]


def _build_random(architecture: str) -> nn.Module:
    from dissect_core.models.targets import load_target

    return load_target(architecture, weights="none").model


def default_architecture_names() -> list[str]:
    """Return the built-in EfficientNet-Lites, then torchvision's classification models, by name."""
    from torchvision import models

    from dissect_core.models.targets import EFFICIENTNET_LITE

    return [*EFFICIENTNET_LITE, *sorted(models.list_models(module=models))]


class ArchitectureCatalog:
    """Names, layer lists and state-dict checks of architectures, building each model once (LRU)."""

    def __init__(
        self,
        names: list[str] | None = None,
        *,
        build: ModelBuilder | None = None,
        max_models: int = 2,
    ) -> None:
        self._names = names
        self._build = build or _build_random
        self._models: LRUCache[str, nn.Module] = LRUCache(max_models)
        self._layers: LRUCache[str, list[LayerOption]] = LRUCache(64)

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

    def model(self, architecture: str) -> nn.Module:
        """Return the architecture built with random weights (cached)."""
        self.check_name(architecture)
        return self._models.get_or_load(architecture, lambda: self._build(architecture))

    def layers(self, architecture: str) -> list[LayerOption]:
        """Return the architecture's layers in forward order, with their module types and unit counts."""
        from dissect_core.models.targets import list_layers

        def load() -> list[LayerOption]:
            return [
                LayerOption(name=info.name, type=info.type_name, n_units=info.n_units)
                for info in list_layers(self.model(architecture))
            ]

        return self._layers.get_or_load(architecture, load)

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

    def check_state_dict(self, architecture: str, state_dict: Mapping[str, Tensor]) -> None:
        """Raise AtlasError listing missing, unexpected and wrongly shaped keys unless the state dict fits."""
        problem = state_dict_mismatch(self.model(architecture).state_dict(), state_dict, architecture)
        if problem:
            raise AtlasError(problem)
