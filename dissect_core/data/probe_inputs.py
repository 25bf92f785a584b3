"""A probe set given in Python (a list of image paths, or a torch Dataset of images) as a folder the pipeline reads.

The folder lies in the cache, named `paths-<sha256>` or `dataset-<sha256>` of what it holds (the run's probe set is
called so): the same images always give the same folder, and the probe set's content hashes, and with them every
cache, work as for a folder the user made.
"""

from __future__ import annotations

import csv
import hashlib
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dissect_core.data.hashing import file_sha256
from dissect_core.data.probe import IMAGE_EXTENSIONS
from dissect_core.errors import DissectError

#: The labels file written beside a Dataset's images when its items carry labels.
LABELS_FILE = "labels.csv"


@dataclass(frozen=True)
class ProbeFolder:
    """Where a probe set lies (a folder, or a built-in set's name) and its labels file, if any."""

    probe: str
    labels_file: str | None = None


def probe_folder(probe: object, cache_dir: Path) -> ProbeFolder:
    """Return the probe set `probe` names as a folder: a folder (or a built-in set) as it is, a list of image paths
    or a torch Dataset yielding PIL images (or (image, label) pairs) copied once into `cache_dir`/probes."""
    if isinstance(probe, str | Path):
        return ProbeFolder(str(probe))
    if isinstance(probe, Sequence) and all(isinstance(item, str | Path) for item in probe):
        return _copied_paths([Path(item).expanduser() for item in probe], cache_dir)
    if hasattr(probe, "__getitem__") and hasattr(probe, "__len__"):
        return _written_dataset(probe, cache_dir)
    raise DissectError(
        f"probe must be a folder of images, a list of image paths or a torch Dataset of PIL images, not "
        f"{type(probe).__name__}"
    )


def _copied_paths(paths: list[Path], cache_dir: Path) -> ProbeFolder:
    """Return a folder holding copies of the images at `paths`, numbered in their order."""
    if not paths:
        raise DissectError("the probe list is empty; give at least one image path")
    for path in paths:
        if not path.is_file():
            raise DissectError(f"probe image {path} does not exist; give paths of existing image files")
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            raise DissectError(f"probe image {path} is not one of {', '.join(sorted(IMAGE_EXTENSIONS))}")
    digest = hashlib.sha256()
    for path in paths:
        digest.update(f"{file_sha256(path)}{path.suffix.lower()}\n".encode())

    def write(folder: Path) -> None:
        width = len(str(len(paths)))
        for index, path in enumerate(paths):
            shutil.copyfile(path, folder / f"{index:0{width}d}{path.suffix.lower()}")

    return ProbeFolder(str(_filled_folder(cache_dir, f"paths-{digest.hexdigest()}", write)))


def _written_dataset(dataset: Any, cache_dir: Path) -> ProbeFolder:
    """Return a folder holding a Dataset's images as PNGs, numbered in its order, with its labels when it has any."""
    from PIL import Image

    classes = getattr(dataset, "classes", None)
    staging = Path(tempfile.mkdtemp(prefix=".dataset-", dir=_probes_root(cache_dir)))
    try:
        width = len(str(len(dataset)))
        labels: list[tuple[str, str]] = []
        digest = hashlib.sha256()
        for index in range(len(dataset)):
            item = dataset[index]
            image, label = item if isinstance(item, tuple) and len(item) == 2 else (item, None)
            if not isinstance(image, Image.Image):
                raise DissectError(
                    f"the probe Dataset's item {index} is a {type(image).__name__}, not a PIL image; build the "
                    "Dataset without its transform (the pipeline applies the model's and the encoder's own)"
                )
            name = f"{index:0{width}d}.png"
            image.convert("RGB").save(staging / name, format="PNG")
            digest.update(f"{file_sha256(staging / name)}\n".encode())
            if label is not None:
                label = label.item() if hasattr(label, "item") else label  # a 0-d tensor or NumPy scalar
                text = classes[label] if isinstance(classes, Sequence) and isinstance(label, int) else label
                labels.append((name, str(text)))
                digest.update(f"{text}\n".encode())
        if labels:
            with open(staging / LABELS_FILE, "w", newline="", encoding="utf-8") as handle:
                csv.writer(handle).writerows([("file", "label"), *labels])

        def copy(folder: Path) -> None:
            shutil.copytree(staging, folder, dirs_exist_ok=True)

        folder = _filled_folder(cache_dir, f"dataset-{digest.hexdigest()}", copy)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ProbeFolder(str(folder), str(folder / LABELS_FILE) if labels else None)


def _probes_root(cache_dir: Path) -> Path:
    root = cache_dir / "probes"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _filled_folder(cache_dir: Path, key: str, write: Callable[[Path], object]) -> Path:
    """Return `cache_dir`/probes/`key`, written by `write(folder)` unless an earlier call wrote it (atomically)."""
    folder = _probes_root(cache_dir) / key
    if folder.is_dir():
        return folder
    partial = Path(tempfile.mkdtemp(prefix=f".partial-{key[:16]}-", dir=folder.parent))
    try:
        write(partial)
        partial.rename(folder)
    except OSError:
        if not folder.is_dir():  # another call filled it first: theirs is the same images
            raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder
