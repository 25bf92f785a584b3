"""Which units detect X? The one search box and the cross-layer concept ranking on a stored run, in process.

Opens the app over a data folder (a copy of one `neuron-atlas demo` made: its SQLite database, runs and media) with
the run's own encoder, and times, for each query: the one-box search's API answer (labels with word forms and near
concepts, and the concept ranked over every layer), the cross-layer ranking alone, and the six per-layer rankings a
user typed before (one query per layer). The first query is cold (the encoder, the layers' indexes and the run's
labels' embeddings load); the rest are warm. Also prints each query's near concepts with their cosines, which set
`app.read.search.near.MIN_NEAR_COSINE`.

    cp -r DEMO_DATA /tmp/demo-copy
    .venv/bin/python -m bench.bench_unit_search --data-dir /tmp/demo-copy [--run 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

QUERIES = ("dog", "stripe", "wheel", "zebra", "goldfinch", "purple")


def timed(client: TestClient, url: str, **params: Any) -> tuple[float, dict[str, Any]]:
    """Return the seconds one GET took and its JSON answer (failing loudly on an error)."""
    started = time.perf_counter()
    response = client.get(url, params=params)
    seconds = time.perf_counter() - started
    response.raise_for_status()
    return seconds, response.json()


def main() -> None:
    """Print the timings and near concepts of each query."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="a copy of a data folder with a stored run")
    parser.add_argument("--run", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="warm repeats of each query")
    args = parser.parse_args()

    from app.core.config import Settings
    from app.web.main import create_app

    settings = Settings.for_data_dir(args.data_dir, allowed_hosts=("testserver",), preload_runs=0)
    with TestClient(create_app(settings)) as client:
        run = client.get(f"/api/v1/runs/{args.run}").json()
        layers = [layer["name"] for layer in run["layers"]]
        units = sum(layer["n_units"] for layer in run["layers"])
        print(f"run {args.run}: {run['model_name']}, {len(layers)} layers, {units:,} units, encoder {run['encoder']}")
        print(f"{'query':<10} {'one box':>9} {'ranking':>9} {'6 layers':>9}  label hits · near concepts (cosine)")
        for number, query in enumerate(QUERIES):
            box: list[float] = []
            found: dict[str, Any] = {}
            for _ in range(1 if number == 0 else args.repeats):
                seconds, found = timed(client, f"/api/v1/runs/{args.run}/search", q=query, limit=500)
                box.append(seconds)
            ranking = [timed(client, f"/api/v1/runs/{args.run}/concepts", q=query)[0] for _ in range(args.repeats)]
            per_layer = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                for layer in layers:
                    timed(client, f"/api/v1/runs/{args.run}/layers/{layer}/concepts", q=query)
                per_layer.append(time.perf_counter() - started)
            near = ", ".join(f"{item['concept']} ({item['cosine']:.2f})" for item in found["near_concepts"])
            label = f"{query}{' (cold)' if number == 0 else ''}"
            print(
                f"{label:<10} {statistics.median(box):8.3f}s {statistics.median(ranking):8.3f}s "
                f"{statistics.median(per_layer):8.3f}s  {found['total']} · {near or '—'}"
            )


if __name__ == "__main__":
    main()
