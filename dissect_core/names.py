"""The names the library accepts for built-ins and files, importable without torch (the web server checks them)."""

from __future__ import annotations

from pathlib import Path

#: How a conv layer's [h, w] map becomes one activation per image.
POOLING = ("avg", "max")
#: The probe set `load_probe` downloads by name instead of reading a folder.
CIFAR100_PROBE = "cifar100"
BUILT_IN_PROBE_SETS = (CIFAR100_PROBE,)
#: The suffixes of the model files `load_target` reads as TorchScript (compared in lower case).
TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript")


def is_torchscript_name(model: str) -> bool:
    """Return whether `model` ends in a TorchScript suffix, i.e. names a file rather than an architecture."""
    return Path(model).suffix.lower() in TORCHSCRIPT_SUFFIXES
