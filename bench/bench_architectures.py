"""What the upload form's layer list of a big architecture costs the web process, before and after it moved to
PyTorch's meta device: wall time and peak resident memory, each in a fresh process.

    .venv/bin/python -m bench.bench_architectures [--architecture vit_h_14]

Before: the catalogue built the model with random weights on the CPU (allocated and initialised), traced its
layers with a forward pass there and kept it for the state-dict fit check. After: `ArchitectureCatalog` builds
it on the meta device, traces shapes there and keeps only the layer list, the state dict's shapes and its size.
Peak memory is VmHWM from /proc/self/status, reset after the imports (tests/support/memory.py).
"""

from __future__ import annotations

import argparse

from tests.support.memory import Measured, measure_in_child

SETUP = """
import torch, torchvision
from app.jobs.uploads.architectures import ArchitectureCatalog
from dissect_core.models.targets import list_layers, load_target
"""

BEFORE = """
model = load_target({name!r}, weights="none").model
layers = list_layers(model)
expected = model.state_dict()
"""

AFTER = """
catalog = ArchitectureCatalog()
layers = catalog.layers({name!r})
expected = catalog.facts({name!r}).shapes
"""


def row(label: str, measured: Measured) -> str:
    """Return one line of the table: what was measured, its wall time and its peak-memory growth."""
    outcome = f"  ({measured.error})" if measured.error else ""
    return f"  {label:<44} {measured.seconds:7.2f} s {measured.growth_bytes / 2**30:9.3f} GiB{outcome}"


def main() -> None:
    """Print the before/after table for one architecture."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architecture", default="vit_h_14")
    name = parser.parse_args().architecture
    print(f"{name}: layer list and fit-check shapes, fresh process each (wall time, peak RSS growth)")
    print(row("before: random weights on the CPU", measure_in_child(SETUP, BEFORE.format(name=name))))
    print(row("after: meta device (ArchitectureCatalog)", measure_in_child(SETUP, AFTER.format(name=name))))


if __name__ == "__main__":
    main()
