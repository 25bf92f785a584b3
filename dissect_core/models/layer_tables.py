"""The layer tables of architectures built without weights (`targets.skeleton_layers`): shipped with the package
for the upload catalogue's architectures, and kept in the cache folder for any other.

An architecture's layers depend only on the code that defines it, so its table is kept under a key of its name,
the installed torch, torchvision and timm versions and this package's own architecture and tracing code (`_OWN_CODE`):
`neuron-atlas layers --model NAME` reads the table without importing torch (whose import alone takes longer than
the whole answer). The package's read-only `shipped_layer_tables/` folder is looked in first, so a fresh install's
first listing is fast too; then the cache folder; else the architecture is traced and its table kept there. A table
that cannot be read is built again; one that cannot be written is simply not kept.

The shipped tables hold only while the key holds: after a change to a file in `_OWN_CODE` (targets.py,
efficientnet_lite.py, layer_info.py, preprocessing.py) or to the installed torch, torchvision or timm, none matches
(listings trace again, correctly but slowly) and tests/unit/app/jobs/uploads/test_shipped_layer_tables.py fails
until they are rebuilt with `.venv/bin/python scripts/build_layer_tables.py` (`write_shipped_tables`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from dissect_core.models.layer_info import LayerInfo

#: The layout of a kept table; a change to it names new files.
FORMAT = 1
#: The libraries whose code defines the architectures (a version change names new files).
_LIBRARIES = ("torch", "torchvision", "timm")
#: This package's files that decide an architecture's layers: its built-ins, its tracing and input sizes.
_OWN_CODE = ("models/targets.py", "models/efficientnet_lite.py", "models/layer_info.py", "preprocessing.py")
#: The cache folder's sub-folder of layer tables.
SUBFOLDER = "layers"
#: The package's read-only tables of the upload catalogue's architectures, looked in before the cache folder.
SHIPPED_DIR = Path(__file__).with_name("shipped_layer_tables")
#: How to rebuild the shipped tables (named by the test that finds them stale).
REBUILD_COMMAND = ".venv/bin/python scripts/build_layer_tables.py"
#: The shipped folder's record of the library versions its tables were built with.
SHIPPED_VERSIONS = SHIPPED_DIR / "built_with.json"


def table_key(name: str) -> str:
    """Return the sha256 naming architecture `name`'s kept table: its name, the libraries' versions and this
    package's architecture code (read from metadata and files; nothing is imported)."""
    digest = hashlib.sha256(json.dumps([FORMAT, name, [_version(library) for library in _LIBRARIES]]).encode())
    package = Path(__file__).resolve().parents[1]
    for relative in _OWN_CODE:
        digest.update((package / relative).read_bytes())
    return digest.hexdigest()


def library_versions() -> dict[str, str | None]:
    """Return the installed versions of the libraries that define the architectures (None: not installed)."""
    return {library: _version(library) for library in _LIBRARIES}


def _version(library: str) -> str | None:
    try:
        return metadata.version(library)
    except metadata.PackageNotFoundError:
        return None


def skeleton_layers_kept(name: str, cache_dir: Path) -> list[LayerInfo]:
    """Return architecture `name`'s layers as `targets.skeleton_layers` lists them: from its shipped table or its
    table kept under `cache_dir` when there is one, else traced on the meta device (importing torch) and kept."""
    file_name = f"{table_key(name)}.json"
    path = cache_dir / SUBFOLDER / file_name
    for kept in (_read(SHIPPED_DIR / file_name), _read(path)):
        if kept is not None:
            return kept
    from dissect_core.models.targets import skeleton_layers

    layers = skeleton_layers(name)
    _write(path, name, layers)
    return layers


def write_shipped_tables(names: Iterable[str], folder: Path = SHIPPED_DIR) -> int:
    """Trace each architecture of `names` on the meta device and replace `folder`'s contents with their tables
    (old keys' tables go); return the tables' total bytes. Nothing changes when one cannot be traced or written."""
    from dissect_core.models.targets import skeleton_layers

    building = folder.with_name(f".{folder.name}.building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    try:
        for name in names:
            (building / f"{table_key(name)}.json").write_text(_table_text(name, skeleton_layers(name)), "utf-8")
        (building / SHIPPED_VERSIONS.name).write_text(json.dumps(library_versions(), sort_keys=True), "utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        building.replace(folder)
    finally:
        shutil.rmtree(building, ignore_errors=True)  # left only when a table failed
    return sum(path.stat().st_size for path in folder.glob("*.json"))


def _read(path: Path) -> list[LayerInfo] | None:
    """Return the layers of a kept table, or None when there is none or it cannot be read."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))["layers"]
        return [LayerInfo(str(row[0]), str(row[1]), None if row[2] is None else tuple(row[2])) for row in rows]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def _write(path: Path, name: str, layers: list[LayerInfo]) -> None:
    """Keep a table at `path`, whole or not at all (written aside, then renamed); a folder that cannot be written
    keeps nothing."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".layers-", suffix=".json")
    except OSError:
        return
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(_table_text(name, layers))
        os.replace(temporary, path)
    except OSError:
        Path(temporary).unlink(missing_ok=True)


def _table_text(name: str, layers: list[LayerInfo]) -> str:
    """Return a table as it is kept: JSON with the architecture's name and per layer [name, type, shape or null]."""
    rows = [
        [layer.name, layer.type_name, None if layer.output_shape is None else list(layer.output_shape)]
        for layer in layers
    ]
    return json.dumps({"model": name, "layers": rows})
