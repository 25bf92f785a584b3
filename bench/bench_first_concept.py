"""First typed concept with and without preloading: how long the first and later concepts typed on a layer page
take in a freshly started server, with the run's text encoder loaded in the background (app/read/concepts/preload.py) or
only once a concept is typed.

Seeds a data folder with a 2,048-neuron layer (tests/support/dashboard_seed.py) whose run is given the bench's
encoder and concept-search artifacts of its width (N_IMAGES probe images, top TOP_K images per neuron), then for
each scenario starts `create_app` under uvicorn in a fresh process with the app's own encoder loader, waits until
it answers, opens the layer page as a browser would, waits the user's think time and types concepts. The
server preloads the run as it starts and again when the page is opened, within a second of each other here: a
run that is not among the newest is loaded from the page opening on, just as this one from the start.

    .venv/bin/python -m bench.bench_first_concept [--encoder conse:efficientnet_lite2+minilm] [--think 10]

Target: the first concept under a second once the preload has had the seconds an encoder takes to load.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.bench_dashboard import fetch_json, free_port, wait_until_up

REPO = Path(__file__).resolve().parents[1]
BENCH_ENCODER = "conse:efficientnet_lite2+minilm"
LAYER = "blocks.3"
N_UNITS = 2048
N_IMAGES = 2_000
TOP_K = 20
WORDS = ("striped", "dotted", "zigzag", "fur", "water", "brick")
#: Width of the ConSE encoders' sentence-text embeddings.
CONSE_TEXT_DIMS = {"minilm": 384, "mpnet": 768}
FIRST_TARGET_S = 1.0


def embedding_dim(spec: str) -> int:
    """Return the width of an encoder's embeddings from its spec, loading no weights."""
    if spec.startswith("conse:"):
        return CONSE_TEXT_DIMS[spec.rpartition("+")[2]]
    import open_clip

    config = open_clip.get_model_config(spec.partition(":")[0])
    if config is None:
        raise SystemExit(f"open_clip has no architecture in {spec!r}")
    return int(config["embed_dim"])


def seed(data_dir: Path, encoder: str) -> int:
    """Seed the data folder and give the newer run the encoder and artifacts of its width; return the run's id."""
    import torch
    from sqlalchemy import update

    from app.persistence.models import Run
    from app.persistence.store.artifacts import save_layer, save_run_tensors
    from app.persistence.store.layout import ArtifactsLayout
    from tests.support.dashboard_seed import build_dashboard

    dashboard = build_dashboard(data_dir)
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(N_IMAGES, embedding_dim(encoder), generator=generator)
    layout = ArtifactsLayout(dashboard.newer.artifacts_dir)
    normalisers = torch.randn(N_IMAGES, generator=generator) + 10.0
    save_run_tensors(
        layout, image_embeddings=torch.nn.functional.normalize(embeddings, dim=1), log_normalisers=normalisers
    )
    save_layer(layout, LAYER, top_indices=torch.randint(0, N_IMAGES, (N_UNITS, TOP_K), generator=generator))
    with dashboard.engine.begin() as connection:
        connection.execute(update(Run).values(encoder=encoder))
    dashboard.engine.dispose()
    return dashboard.newer.run_id


def serve(data_dir: Path, port: int, preload_runs: int) -> None:
    """Run the app over `data_dir` with uvicorn and its own encoder loader (the server process)."""
    import uvicorn

    from app.core.config import Settings
    from app.web.main import create_app

    app = create_app(Settings.for_data_dir(data_dir, preload_runs=preload_runs))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def scenario(data_dir: Path, run_id: int, preload_runs: int, think_s: float) -> dict[str, float]:
    """Start a server, open the layer page, wait `think_s`, type concepts; return the timings in seconds."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "bench.bench_first_concept", "--serve", str(data_dir), "--port", str(port)]
    started = time.perf_counter()
    server = subprocess.Popen([*command, "--preload", str(preload_runs)], cwd=REPO)
    try:
        wait_until_up(base, server)
        up_s = time.perf_counter() - started
        with urllib.request.urlopen(f"{base}/runs/{run_id}/layers/{LAYER}", timeout=60) as page:
            page.read()
        time.sleep(think_s)
        concept_url = f"{base}/api/v1/runs/{run_id}/layers/{LAYER}/concepts?limit=24&q="
        first, body = fetch_json(concept_url + WORDS[0])
        later = [fetch_json(concept_url + word)[0] for word in WORDS[1:]]
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert body["n_units"] == N_UNITS, body
    return {"up_s": up_s, "first_s": first, "later_median_s": statistics.median(later), "later_max_s": max(later)}


def main(argv: list[str] | None = None) -> int:
    """Seed once, time each scenario in a fresh server, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default=BENCH_ENCODER, help=f"the run's text encoder ({BENCH_ENCODER})")
    parser.add_argument("--think", type=float, default=10.0, help="seconds between opening the page and typing")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--preload", type=int, default=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.port, args.preload)
        return 0

    scenarios = (("off", 0, 0.0), ("on", 2, 0.0), ("on", 2, args.think), ("on", 2, 2 * args.think))
    with tempfile.TemporaryDirectory(prefix="atlas-bench-") as tmp:
        run_id = seed(Path(tmp) / "data", args.encoder)
        rows = [(name, think, scenario(Path(tmp) / "data", run_id, runs, think)) for name, runs, think in scenarios]

    print(f"{args.encoder}, {N_UNITS}-neuron layer, {N_IMAGES} images x top {TOP_K}; a fresh server per row")
    print("| preload | typed after page open | server up | first concept | later (median / max) |")
    print("|---|---|---|---|---|")
    for name, think, t in rows:
        print(
            f"| {name} | {think:g} s | {t['up_s']:.1f} s | **{t['first_s']:.2f} s** "
            f"| {t['later_median_s']:.3f} / {t['later_max_s']:.3f} s |"
        )
    met = [f"{think:g} s" for name, think, t in rows if name == "on" and t["first_s"] < FIRST_TARGET_S]
    print(f"first concept < {FIRST_TARGET_S:g} s with preloading when typed after: {', '.join(met) or 'never'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
