"""Rebuild the layer tables shipped in dissect_core/models/shipped_layer_tables/ for the upload catalogue's
architectures (the EfficientNet-Lites and torchvision's classification models), replacing the folder's contents.

Run it after changing a file named in `dissect_core.models.layer_tables._OWN_CODE` or the installed torch, torchvision
or timm (tests/unit/app/jobs/uploads/test_shipped_layer_tables.py fails until then):

    .venv/bin/python scripts/build_layer_tables.py
"""

from __future__ import annotations

import time

from app.jobs.uploads.architectures import default_architecture_names
from dissect_core.models.layer_tables import SHIPPED_DIR, write_shipped_tables


def main() -> None:
    """Trace every catalogue architecture on the meta device, ship its table, and print the count, bytes and time."""
    started = time.perf_counter()
    names = default_architecture_names()
    total_bytes = write_shipped_tables(names)
    print(f"{len(names)} layer tables, {total_bytes:,} bytes, in {SHIPPED_DIR} ({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
