"""One tensor read from a run's artifacts folder, with an error naming the file (never its folder) and the fix."""

from __future__ import annotations

from pathlib import Path

import torch

from app.core.errors import AtlasError

REDISSECT = "dissect the model again to store its artifacts."


def load_artifact_tensor(path: Path, what: str, ndim: int, lost: str, error: type[AtlasError]) -> torch.Tensor:
    """Return the stored `ndim`-D tensor at `path`; raise `error`, saying what is `lost`, if missing or damaged."""
    if not path.is_file():  # the message names the file, never the server folder it is missing from
        raise error(f"{what} has no stored {path.name}, so {lost}; {REDISSECT}")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as reason:  # truncated or overwritten: told like a missing file (its message may name paths)
        raise damaged_artifact(path, what, f"it cannot be read: {type(reason).__name__}", lost, error) from None
    if not isinstance(loaded, torch.Tensor) or loaded.ndim != ndim:
        shape = f"a {loaded.ndim}-D tensor" if isinstance(loaded, torch.Tensor) else f"a {type(loaded).__name__}"
        raise damaged_artifact(path, what, f"it holds {shape}, not a {ndim}-D tensor", lost, error)
    return loaded


def damaged_artifact(path: Path, what: str, problem: str, lost: str, error: type[AtlasError]) -> AtlasError:
    """Return the error telling that a stored artifact is damaged, what that loses, and how to store it again."""
    return error(f"{what}'s stored {path.name} is damaged ({problem}), so {lost}; {REDISSECT}")
