"""`neuron-atlas layers --model NAME`: the command's wall time in fresh processes, each the median of `--repeats`,
with the machine's load average beside them (`os.getloadavg`):

- traced: a fresh cache folder and no shipped table (torch imported, the architecture traced on the meta device,
  its table kept): what an architecture outside the package's shipped tables costs the first time;
- kept: the same cache folder again (the kept table read back, no torch);
- shipped: a fresh cache folder with the package's shipped tables (dissect_core/models/shipped_layer_tables/): what
  a fresh install's first listing of a catalogue architecture costs.

    .venv/bin/python -m bench.bench_layers_command [--model resnet18] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dissect_core.cache_dir import CACHE_DIR_ENV
from dissect_core.models.layer_tables import SHIPPED_DIR, table_key

#: `neuron-atlas layers ARGS` with the shipped tables read from the folder given first.
LISTING = (
    "import sys; from pathlib import Path; from dissect_core.models import layer_tables; "
    "layer_tables.SHIPPED_DIR = Path(sys.argv[1]); from app.cli.main import main; sys.exit(main(sys.argv[2:]))"
)


def listing_seconds(model: str, cache_dir: Path, shipped_dir: Path) -> tuple[float, str]:
    """Return the seconds one `neuron-atlas layers --model MODEL` process took with `cache_dir` and the shipped
    tables of `shipped_dir`, and its output."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", LISTING, str(shipped_dir), "layers", "--model", model],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, CACHE_DIR_ENV: str(cache_dir)},
    )
    return time.perf_counter() - started, done.stdout


def main() -> None:
    """Print the traced, kept and shipped medians, whether every listing printed the same table, and the loads."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    print(f"shipped table for {args.model}: {(SHIPPED_DIR / f'{table_key(args.model)}.json').exists()}")
    seconds: dict[str, list[float]] = {"traced": [], "kept": [], "shipped": []}
    outputs = set()
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as folder:  # caches of its own, and an empty shipped folder
            root = Path(folder)
            for case, cache_dir, shipped_dir in (
                ("traced", root / "cache", root / "none shipped"),
                ("kept", root / "cache", root / "none shipped"),
                ("shipped", root / "fresh cache", SHIPPED_DIR),
            ):
                elapsed, output = listing_seconds(args.model, cache_dir, shipped_dir)
                seconds[case].append(elapsed)
                outputs.add(output)
    for case, values in seconds.items():
        print(f"{case} s: {' '.join(f'{value:.2f}' for value in values)}  median {statistics.median(values):.2f}")
    print(f"identical output: {len(outputs) == 1}")
    print(f"load average after: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")


if __name__ == "__main__":
    main()
