"""Dashboard latency under load: layer page, neuron page and JSON neuron list against a real uvicorn.

Seeds a data folder with a 2,048-neuron layer (tests/integration/dashboard_seed.py), serves it with uvicorn
in a separate process on loopback, then drives each endpoint with CLIENTS concurrent keep-alive connections
(a minimal asyncio HTTP/1.1 client, so the load generator costs little CPU next to the server) for a bounded
number of requests with URLs drawn at random over the layer: grid pages x sorts, units, list offsets.
Also times concept search (first call: loads the encoder and artifacts; later calls: new concepts) on
artifacts of realistic size (50,000 probe images x 512 dimensions, top 100 images per neuron), with the text
tower of open_clip ViT-B-16 (random weights: the same compute as the real one, nothing downloaded).

    .venv/bin/python -m bench.bench_dashboard [--requests 2000] [--clients 20]

Every layer of the run gets float16 activations over the same 50,000 images, so the neuron page computes its
histogram, quantile bands and similar neurons (across all layers) as on a real run of that size.

Targets: p95 < 50 ms per endpoint, concept search < 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

LAYER = "blocks.3"
N_UNITS = 2048
PAGE_SIZE = 96
SORTS = ("unit", "-score", "label")
BENCH_ENCODER = "ViT-B-16:none"
N_IMAGES = 50_000
EMBEDDING_DIM = 512
TOP_K = 100
P95_TARGET_MS = 50.0
CONCEPT_TARGET_S = 1.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_realistic_artifacts(artifacts_dir: Path) -> None:
    """Replace a seeded run's concept-search artifacts with tensors the size of an ImageNet-val run."""
    import torch

    from app.persistence.store.artifacts import save_layer, save_run_tensors
    from app.persistence.store.layout import ArtifactsLayout

    layout = ArtifactsLayout(artifacts_dir)
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.nn.functional.normalize(torch.randn(N_IMAGES, EMBEDDING_DIM, generator=generator), dim=1)
    normalisers = torch.randn(N_IMAGES, generator=generator) + 10.0
    save_run_tensors(layout, image_embeddings=embeddings, log_normalisers=normalisers)
    top = torch.randint(0, N_IMAGES, (N_UNITS, TOP_K), generator=generator)
    save_layer(layout, LAYER, top_indices=top)


def write_realistic_activations(artifacts_dir: Path, layers: dict[str, int]) -> None:
    """Give every layer of the run float16 activations over N_IMAGES images, as the store keeps them, with shared
    factors so that units correlate as real ones do (the neuron page's histogram, bands and similar neurons)."""
    import torch

    from app.persistence.store.artifacts import save_layer
    from app.persistence.store.layout import ArtifactsLayout

    layout = ArtifactsLayout(artifacts_dir)
    generator = torch.Generator().manual_seed(1)
    factors = torch.randn(N_IMAGES, 16, generator=generator)
    for layer, n_units in layers.items():
        mixing = torch.randn(16, n_units, generator=generator) / 4
        activations = torch.relu(factors @ mixing + torch.randn(N_IMAGES, n_units, generator=generator))
        save_layer(layout, layer, activations=activations)


def first_panel_after_store(data_dir: Path, run_id: int) -> dict:
    """Time the first neuron-panel request of a fresh app on the run: without the store-time tables (a run stored
    before them: built on that request), then after writing them as the store does (read from the run's folder)."""
    from fastapi.testclient import TestClient

    from app.core.config import Settings
    from app.jobs.runs.neuron_tables import write_neuron_tables
    from app.persistence.db import create_db_engine
    from app.web.main import create_app

    settings = Settings.for_data_dir(data_dir, preload_runs=0, allowed_hosts=("testserver",))
    path = f"/api/v1/runs/{run_id}/layers/{LAYER}/neurons/5/distribution"

    def first_request() -> tuple[float, dict]:
        with TestClient(create_app(settings)) as client:
            started = time.perf_counter()
            body = client.get(path).json()
            return time.perf_counter() - started, body

    before, computed = first_request()
    engine = create_db_engine(settings.database_url)
    started = time.perf_counter()
    write_neuron_tables(settings, engine, run_id)
    store_step = time.perf_counter() - started
    engine.dispose()
    after, stored = first_request()
    return {
        "before_s": round(before, 3),
        "after_s": round(after, 3),
        "store_step_s": round(store_step, 3),
        "same_answer": computed == stored,
    }


def serve(data_dir: Path, port: int, encoder: str) -> None:
    """Run the app over `data_dir` with uvicorn (the server process of the benchmark)."""
    import uvicorn

    from app.core.config import Settings
    from app.web.main import create_app
    from dissect_core.encoders import ImageTextEncoder, load_encoder

    def load(_spec: str, device: str) -> ImageTextEncoder:
        return load_encoder(encoder, device)

    # No preloading: the first concept search is timed as it was, loading the encoder and artifacts itself.
    app = create_app(Settings.for_data_dir(data_dir, preload_runs=0), encoder_loader=load)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str) -> int:
    """Send one keep-alive GET and read the whole response; return the status code."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def drive(port: int, make_path: Callable[[random.Random], str], requests: int, clients: int) -> dict:
    """Run `requests` GETs over `clients` connections; return latency percentiles and throughput."""
    latencies: list[float] = []
    failures = 0
    remaining = requests

    async def client(seed: int) -> None:
        nonlocal remaining, failures
        rng = random.Random(seed)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while remaining > 0:
                remaining -= 1
                path = make_path(rng)
                started = time.perf_counter()
                status = await get(reader, writer, path)
                latencies.append((time.perf_counter() - started) * 1000)
                failures += status != 200
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(seed) for seed in range(clients)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)

    def percentile(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "requests": len(latencies),
        "failures": failures,
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(percentile(0.95), 2),
        "p99_ms": round(percentile(0.99), 2),
        "max_ms": round(ordered[-1], 2),
        "throughput_rps": round(len(latencies) / elapsed, 1),
    }


def fetch_json(url: str) -> tuple[float, dict]:
    """GET a JSON URL; return (seconds, body)."""
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        body = json.loads(response.read())
    return time.perf_counter() - started, body


def wait_until_up(base: str, server: subprocess.Popen, timeout: float = 120) -> None:
    """Return once the server answers, or raise if it died or never came up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with code {server.returncode}")
        try:
            fetch_json(base + "/api/v1/runs")
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the server did not answer within {timeout:g} s")


def main(argv: list[str] | None = None) -> int:
    """Seed, serve, load the three endpoints, time concept search, print the figures (and JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per endpoint (default 2000)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent connections (default 20)")
    parser.add_argument("--encoder", default=BENCH_ENCODER, help=f"text encoder for concept search ({BENCH_ENCODER})")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--first-panel-only", action="store_true", help="only time the first neuron-panel request after a store"
    )
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port, args.encoder)
        return 0

    from tests.support.dashboard_seed import build_dashboard

    with tempfile.TemporaryDirectory(prefix="atlas-bench-") as tmp:
        dashboard = build_dashboard(Path(tmp) / "data")
        run_id = dashboard.newer.run_id
        write_realistic_artifacts(dashboard.newer.artifacts_dir)
        layer_units = {layer.name: layer.n_units for layer in dashboard.newer.layers}
        write_realistic_activations(dashboard.newer.artifacts_dir, layer_units)
        dashboard.engine.dispose()
        first_panel = first_panel_after_store(dashboard.settings.data_dir, run_id)
        print(
            f"first neuron-panel request after a store ({N_IMAGES} images x {N_UNITS} units, every layer): "
            f"{first_panel['before_s']} s without store-time tables, {first_panel['after_s']} s with them "
            f"(the store step writing them: {first_panel['store_step_s']} s; same answer: {first_panel['same_answer']})"
        )
        if args.first_panel_only:
            return 0
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        command = [
            sys.executable,
            "-m",
            "bench.bench_dashboard",
            "--serve",
            str(dashboard.settings.data_dir),
            "--port",
            str(port),
        ]
        server = subprocess.Popen([*command, "--encoder", args.encoder], cwd=REPO)
        try:
            wait_until_up(base, server)
            layer = f"/runs/{run_id}/layers/{LAYER}"
            endpoints: dict[str, Callable[[random.Random], str]] = {
                "layer page": lambda rng: f"{layer}?page={rng.randint(1, 22)}&sort={rng.choice(SORTS)}",
                "neuron page": lambda rng: f"{layer}/neurons/{rng.randrange(N_UNITS)}",
                # What the neuron page loads after it shows: histogram, bands, similar neurons over 50,000 images.
                "neuron panels JSON": lambda rng: f"/api/v1{layer}/neurons/{rng.randrange(N_UNITS)}/distribution",
                "JSON neuron list": lambda rng: (
                    f"/api/v1{layer}/neurons?offset={PAGE_SIZE * rng.randrange(N_UNITS // PAGE_SIZE)}"
                    f"&limit={PAGE_SIZE}&sort={rng.choice(SORTS)}"
                ),
            }
            results: dict[str, dict] = {}
            for name, make_path in endpoints.items():
                results[name] = asyncio.run(drive(port, make_path, args.requests, args.clients))
            concept_url = f"{base}/api/v1{layer}/concepts?limit=24&q="
            cold, body = fetch_json(concept_url + "striped")
            warm = [fetch_json(concept_url + word)[0] for word in ("dotted", "zigzag", "fur", "water", "brick")]
            results["concept search"] = {
                "cold_s": round(cold, 3),
                "warm_median_s": round(statistics.median(warm), 3),
                "warm_max_s": round(max(warm), 3),
                "n_units": body["n_units"],
                "encoder": args.encoder,
            }
        finally:
            server.terminate()
            server.wait(timeout=30)

    print(f"{args.clients} concurrent clients, {args.requests} requests per endpoint, {N_UNITS}-neuron layer")
    print(f"{'endpoint':<20}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}{'req/s':>9}{'errors':>8}")
    for name, figures in results.items():
        if "p95_ms" in figures:
            print(
                f"{name:<20}{figures['p50_ms']:>9}{figures['p95_ms']:>9}{figures['p99_ms']:>9}"
                f"{figures['max_ms']:>9}{figures['throughput_rps']:>9}{figures['failures']:>8}"
            )
    concept = results["concept search"]
    print(
        f"concept search ({concept['encoder']}, {N_IMAGES} images x {EMBEDDING_DIM}): first {concept['cold_s']} s "
        f"(loads encoder + artifacts), then median {concept['warm_median_s']} s, max {concept['warm_max_s']} s"
    )
    slow = [name for name, figures in results.items() if figures.get("p95_ms", 0) > P95_TARGET_MS]
    concept_met = concept["warm_max_s"] < CONCEPT_TARGET_S
    print(
        f"targets: p95 < {P95_TARGET_MS:g} ms: {'missed by ' + ', '.join(slow) if slow else 'met'}; "
        f"concept search < {CONCEPT_TARGET_S:g} s (warm): {'met' if concept_met else 'missed'}"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
