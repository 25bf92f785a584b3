"""The README's notebook example end to end: a small CNN defined here dissected with `dissect_core.dissect` over a
500-image sample of CIFAR-10's test set, cold (empty cache) and warm (the cache the cold run filled), then saved,
read back with `load_saved`, and pushed to a local server started for the measurement.

    .venv/bin/python -m bench.bench_library [--images 500] [--encoder conse:efficientnet_lite2+minilm] [--no-push]

Each dissection runs in a fresh process (imports and model loads counted in its wall time) against the 20k concepts
with the offline ConSE encoder; the child counts the encoder's text calls and image batches, so the table shows
that the warm call encodes nothing. The push starts `neuron-atlas serve` on a new data folder with an editor's
token, and times building the archive and the request (upload plus the server's checks and store, answered 201).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SHARED_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-test"
REPO = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time
started = time.perf_counter()
import torch
from torch import nn
import dissect_core
from dissect_core.encoders.conse import ConSEEncoder

calls = {"texts": 0, "images": 0}
for method, key in (("encode_texts", "texts"), ("encode_images", "images")):
    original = getattr(ConSEEncoder, method)
    def counting(self, *args, _original=original, _key=key, **kwargs):
        calls[_key] += 1
        return _original(self, *args, **kwargs)
    setattr(ConSEEncoder, method, counting)


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.fc(x.mean(dim=(2, 3)))


args = json.loads(sys.argv[1])
torch.manual_seed(0)
net = TinyCNN()
transform = {"resize": 32, "crop": 32, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}
begun = time.perf_counter()
result = dissect_core.dissect(
    net, ["conv1", "conv2", "fc"], args["probe"], transform=transform, encoder=args["encoder"],
    max_images=args["images"], progress=False,
)
dissect_s = time.perf_counter() - begun
begun = time.perf_counter()
folder = result.save(args["out"])
save_s = time.perf_counter() - begun
begun = time.perf_counter()
loaded = dissect_core.load_saved(folder)
load_s = time.perf_counter() - begun
assert [n.label for n in loaded.result.layers[1].neurons] == [n.label for n in result.layers[1].neurons]
print(json.dumps({
    "dissect_s": dissect_s, "save_s": save_s, "load_s": load_s, "process_s": time.perf_counter() - started,
    "calls": calls, "timings": result.record.facts.timings_s, "n_images": len(result.image_ids),
    "n_neurons": sum(layer.n_units for layer in result.layers), "n_concepts": len(result.concepts),
    "saved_bytes": sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()),
}))
"""


def run_child(args: dict[str, Any], cache: Path) -> dict[str, Any]:
    """Return what one fresh process measured of the README's example."""
    env = {**os.environ, "NEURON_ATLAS_CACHE_DIR": str(cache)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True, env=env, cwd=REPO, check=False
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    measured["wall_s"] = time.perf_counter() - started
    return measured


def cli(data_dir: Path, *arguments: str) -> str:
    """Run `neuron-atlas ARGUMENTS` on the data folder; return its output."""
    env = {**os.environ, "NEURON_ATLAS_DATA_DIR": str(data_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli.main", *arguments], capture_output=True, text=True, env=env, cwd=REPO
    )
    if done.returncode != 0:
        raise SystemExit(f"neuron-atlas {' '.join(arguments)} failed: {done.stderr[-2000:]}")
    return done.stdout


def measure_push(folder: Path, scratch: Path) -> dict[str, Any]:
    """Start a server on a new data folder, push the saved folder as an editor; return the times and archive size."""
    import tarfile

    import httpx

    from dissect_core.client import Client
    from tests.support.served import free_port

    data_dir = scratch / "server-data"
    cli(data_dir, "users", "add", "bench", "--role", "editor", "--no-password")
    token = cli(data_dir, "tokens", "create", "bench").strip().splitlines()[-1].strip()
    port = free_port()
    env = {**os.environ, "NEURON_ATLAS_DATA_DIR": str(data_dir)}
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli.main", "serve", "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code < 500:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        begun = time.perf_counter()
        with tarfile.open(scratch / "archive.tar.gz", "w:gz") as tar:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    tar.add(path, arcname=path.relative_to(folder).as_posix())
        archive_s = time.perf_counter() - begun
        begun = time.perf_counter()
        with Client(url, token=token) as client:
            run_url = client.push(folder)
        push_s = time.perf_counter() - begun
        page = httpx.get(run_url, timeout=60).status_code
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {
        "archive_s": archive_s,
        "archive_bytes": (scratch / "archive.tar.gz").stat().st_size,
        "push_s": push_s,
        "url": run_url,
        "page_status": page,
    }


def main() -> None:
    """Print the cold and warm runs, saving and reading back, and the push, as JSON and a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--encoder", default="conse:efficientnet_lite2+minilm")
    parser.add_argument("--no-push", action="store_true", help="skip starting a server and pushing")
    options = parser.parse_args()
    if not SHARED_CIFAR.is_dir():
        raise SystemExit(f"CIFAR-10's test images are not at {SHARED_CIFAR} (see ../shared/README.md)")
    with tempfile.TemporaryDirectory(prefix="bench-library-") as scratch_name:
        scratch = Path(scratch_name)
        args = {"probe": str(SHARED_CIFAR), "encoder": options.encoder, "images": options.images}
        cold = run_child({**args, "out": str(scratch / "cold-run")}, scratch / "cache")
        warm = run_child({**args, "out": str(scratch / "warm-run")}, scratch / "cache")
        push = None if options.no_push else measure_push(scratch / "warm-run", scratch)
    print(json.dumps({"cold": cold, "warm": warm, "push": push}, indent=1))
    print(
        f"\n{cold['n_images']} images, {cold['n_concepts']} concepts, {cold['n_neurons']} neurons; "
        f"saved folder {cold['saved_bytes'] / 1e6:.1f} MB\n"
    )
    print("| run | process wall s | dissect() s | embed concepts s | probe pass s | text calls | image batches |")
    print("|---|---|---|---|---|---|---|")
    for name, measured in (("cold", cold), ("warm", warm)):
        timings = measured["timings"]
        print(
            f"| {name} | {measured['wall_s']:.1f} | {measured['dissect_s']:.1f} | {timings['embed concepts']:.1f} | "
            f"{timings['probe pass']:.1f} | {measured['calls']['texts']} | {measured['calls']['images']} |"
        )
    print(f"\nsave {warm['save_s']:.2f} s, load_saved {warm['load_s']:.2f} s")
    if push:
        print(
            f"push: archive {push['archive_bytes'] / 1e6:.1f} MB built in {push['archive_s']:.2f} s; upload + "
            f"check + store {push['push_s']:.2f} s (201), run page {push['page_status']}"
        )


if __name__ == "__main__":
    main()
