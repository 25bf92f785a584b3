"""CLIP-Dissect as a library: label the neurons of a vision network with the concepts an image–text encoder sees.

    import dissect_core
    result = dissect_core.dissect(net, ["layer3"], "path/to/images", transform=weights.transforms())
    result.to_frame()            # one row per neuron (pandas)
    result.save("my-run")        # a self-contained folder; dissect_core.load_saved("my-run") reads it back
    result.push("https://atlas.example.org", token=...)

The public names load on first use, so `import dissect_core` stays cheap (no torch until a name needs it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Where each public name lives.
_PUBLIC = {
    "dissect": "dissect_core.api",
    "list_layers": "dissect_core.api",
    "LayerInfo": "dissect_core.api",
    "DissectConfig": "dissect_core.config",
    "DissectionResult": "dissect_core.results",
    "DissectError": "dissect_core.errors",
    "load_saved": "dissect_core.saved",
    "SavedRun": "dissect_core.saved",
    "Client": "dissect_core.client",
    "default_cache_dir": "dissect_core.cache_dir",
}

__all__ = [
    "Client",
    "DissectConfig",
    "DissectError",
    "DissectionResult",
    "LayerInfo",
    "SavedRun",
    "__version__",
    "default_cache_dir",
    "dissect",
    "list_layers",
    "load_saved",
]

if TYPE_CHECKING:
    from dissect_core.api import LayerInfo, dissect, list_layers
    from dissect_core.cache_dir import default_cache_dir
    from dissect_core.client import Client
    from dissect_core.config import DissectConfig
    from dissect_core.errors import DissectError
    from dissect_core.results import DissectionResult
    from dissect_core.saved import SavedRun, load_saved


def __getattr__(name: str) -> Any:
    """Return a public name, importing its module on first use."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'dissect_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """Return the module's names, the lazily loaded public ones included."""
    return sorted({*globals(), *_PUBLIC})
