"""Time `store_run` (the store step) on a synthetic five-layer run (~4,000 neurons, 20 top images each) on SQLite
and, when NEURON_ATLAS_TEST_POSTGRES_URL is set, on PostgreSQL. Target: under 10 s.

    .venv/bin/python -m bench.bench_store [--images 1000] [--top 20] [--keep DIR]

Synthetic probe images are written first (not timed). Each backend gets a fresh data folder, so media
files are written, not reused; a second store of the same run (media reused) is timed too. The store step writes
probe views, rows and artifacts (the top maps among them); crops and heatmaps are cut on their first request.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sqlalchemy import text

import dissect_core
from app.core.config import Settings
from app.persistence.db import create_db_engine, upgrade_database
from app.persistence.store import store_run
from dissect_core.config import DissectConfig
from dissect_core.results import ConceptScore, DissectionResult, LayerResult, NeuronLabel, TopImage
from dissect_core.run_record import InputIdentities, ResolvedSettings, RunRecord

# (name, units, activation map side): about resnet50's four stages plus a wider last one, 3,968 neurons.
LAYERS = (("layer1", 128, 56), ("layer2", 256, 28), ("layer3", 512, 14), ("layer4", 1024, 7), ("head", 2048, 7))
N_TOP = 20
VIEW = {"resize": 256, "crop": 224}


def make_images(folder: Path, n: int, seed: int = 0) -> list[str]:
    """Write `n` smooth random 320x240 JPEGs (like photos, cheap to make); return their paths."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(n):
        small = (rng.random((6, 8, 3)) * 255).astype("uint8")
        path = folder / f"img_{index:05d}.jpg"
        Image.fromarray(small).resize((320, 240), Image.BICUBIC).save(path, quality=90)
        paths.append(str(path))
    return paths


def synthetic_result(paths: list[str], seed: int = 0, n_top: int = N_TOP) -> DissectionResult:
    """Return a DissectionResult with random labels, top images spread over the probe set, and maps."""
    generator = torch.Generator().manual_seed(seed)
    concepts = [f"concept {i}" for i in range(2000)]
    image_ids = [hashlib.sha256(Path(path).read_bytes()).hexdigest() for path in paths]
    layers = []
    for name, units, side in LAYERS:
        activations = torch.rand(len(paths), units, generator=generator)
        top = activations.T.topk(n_top, dim=1).indices
        neurons, tops = [], []
        for unit in range(units):
            neurons.append(
                NeuronLabel(unit, concepts[unit % 2000], 0.5, (ConceptScore("a", 0.4), ConceptScore("b", 0.3)))
            )
            tops.append(
                [
                    TopImage(
                        rank,
                        int(index),
                        image_ids[index],
                        float(activations[index, unit]),
                        (1, 1),
                        (0.1, 0.2, 0.6, 0.7),
                    )
                    for rank, index in enumerate(top[unit].tolist())
                ]
            )
        maps = torch.rand(units, n_top, side, side, generator=generator)
        layers.append(LayerResult(name, "conv", neurons, tops, activations, top.clone(), maps))
    return DissectionResult(
        record=RunRecord(
            config=DissectConfig(
                model="resnet50",
                layers=tuple(layer[0] for layer in LAYERS),
                probe=str(Path(paths[0]).parent),
                similarity_params={"top_k": 20},
            ),
            resolved=ResolvedSettings(similarity_params={"top_k": 20}, view=(VIEW["resize"], VIEW["crop"])),
            identities=InputIdentities(code_version=dissect_core.__version__),
        ),
        image_ids=image_ids,
        image_paths=paths,
        concepts=concepts,
        layers=layers,
        image_embeddings=torch.randn(len(paths), 512),
        log_normalisers=torch.randn(len(paths)),
    )


def time_backend(label: str, settings: Settings, result: DissectionResult) -> None:
    """Store the run twice (fresh media, then reused media) and print the seconds."""
    upgrade_database(settings)
    engine = create_db_engine(settings.database_url)
    try:
        for attempt in ("fresh media", "media reused"):
            started, cpu_started = time.perf_counter(), time.process_time()
            run_id = store_run(engine, settings, result)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            # CPU seconds (this process, all threads) are the figure to compare on a machine others share.
            print(f"{label:<10} {attempt:<13} run {run_id}: store step {seconds:6.2f} s ({cpu:.2f} s CPU)", flush=True)
    finally:
        engine.dispose()


def main() -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="probe images (default %(default)s)")
    parser.add_argument("--top", type=int, default=N_TOP, help="top images per neuron (default %(default)s)")
    parser.add_argument("--keep", help="work in this folder and keep it (default: a temp folder, removed)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(args.keep or temporary)
        paths = make_images(root / "probe", args.images)
        result = synthetic_result(paths, n_top=args.top)
        n_neurons = sum(layer.n_units for layer in result.layers)
        print(
            f"{len(result.layers)} layers, {n_neurons} neurons x {args.top} top images, {len(paths)} probe images, "
            f"{os.cpu_count()} CPUs",
            flush=True,
        )
        time_backend("sqlite", Settings.for_data_dir(root / "sqlite"), result)
        postgres = os.environ.get("NEURON_ATLAS_TEST_POSTGRES_URL")
        if postgres:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            admin = create_db_engine(postgres)
            with admin.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            separator = "&" if "?" in postgres else "?"
            url = f"{postgres}{separator}options=-csearch_path%3D{schema}"
            try:
                time_backend("postgres", Settings.for_data_dir(root / "postgres", database_url=url), result)
            finally:
                with admin.begin() as connection:
                    connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()
        else:
            print("postgres   skipped: set NEURON_ATLAS_TEST_POSTGRES_URL (scripts/start_postgres.sh)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
