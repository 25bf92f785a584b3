"""The same dissection through the local and the Ray executor: wall time per stage, driver and Ray-worker peak
memory, shared-storage bytes, labels that differ and max |Δscore|; then the formulas that take them to 1.28 M images
x 20k concepts x 2,048 units (one layer) and whether the issue's targets hold there.

    .venv/bin/python -m bench.bench_executors [--images 2000] [--size 64] [--actors 2] [--blocks 2]

A random-init ResNet-18 (layer3 and layer4), seen at --size pixels, over the first --images CIFAR-10 test images of
../shared (generated images when it is absent), the tiny random open_clip of tests/fixtures and the 20k concepts.
Each executor runs in a fresh child process (its imports and model loads counted). The child samples its own RSS
and anonymous RSS (the driver: RssAnon leaves out the file pages of matrices mapped from the shard store, which the
kernel can drop), the RSS of every Ray worker process (`ray::` in its command line) and the size of the shard
folder every 50 ms; VmHWM is the driver's peak RSS with file pages.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parents[1]
SHARED_CIFAR = REPOSITORY.parent / "shared" / "data" / "cifar10-test"
SAMPLE_SECONDS = 0.05
GIB = 1024**3

# The target scale (one layer) and its derived sizes (see ../shared/notes/scale-out.md).
N, K, C, D = 1_280_000, 2_048, 20_000, 768
TOP_T = round(100 * N / 50_000)  # adaptive_top_k(100, N) = 2,560
N_TOP, FOLDS, NULL_UNITS = 20, 5, 256


class Sampler:
    """A daemon thread recording the peak RSS of this process, of the Ray workers, and the shard folder's bytes."""

    def __init__(self, shards: Path) -> None:
        import psutil

        self.psutil = psutil
        self.shards = shards
        self.driver_peak = 0
        self.driver_anon_peak = 0
        self.worker_peak = 0  # the largest single Ray worker
        self.workers_total_peak = 0
        self.shard_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        me = self.psutil.Process()
        while not self._stop.wait(SAMPLE_SECONDS):
            self.driver_peak = max(self.driver_peak, me.memory_info().rss)
            self.driver_anon_peak = max(self.driver_anon_peak, status_bytes("RssAnon"))
            sizes = []
            for process in self.psutil.process_iter(["cmdline", "memory_info"]):
                cmdline = " ".join(process.info["cmdline"] or [])
                if cmdline.startswith("ray::") and process.info["memory_info"] is not None:
                    sizes.append(process.info["memory_info"].rss)
            if sizes:
                self.worker_peak = max(self.worker_peak, max(sizes))
                self.workers_total_peak = max(self.workers_total_peak, sum(sizes))
            if self.shards.is_dir():
                total = sum(path.stat().st_size for path in self.shards.rglob("*") if path.is_file())
                self.shard_peak = max(self.shard_peak, total)

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join()


def status_bytes(field: str) -> int:
    """Return a /proc/self/status memory field in bytes (VmHWM: peak resident, getrusage would carry a larger
    parent's peak across exec; RssAnon: anonymous resident, not file pages)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    return 0


def probe_folder(root: Path, n_images: int) -> Path:
    """Return a folder of `n_images` CIFAR-10 test images spread over the classes (links), or of generated images."""
    folder = root / "probe"
    folder.mkdir(parents=True, exist_ok=True)
    if SHARED_CIFAR.is_dir():
        every = sorted(SHARED_CIFAR.rglob("*.jpg"))
        for index, image in enumerate(every[:: max(1, len(every) // n_images)][:n_images]):  # all ten classes
            (folder / f"{index:05d}_{image.name}").symlink_to(image)
        return folder
    sys.path.insert(0, str(REPOSITORY))
    from tests.conftest import make_probe_folder

    return make_probe_folder(folder, n_images=n_images, size=(32, 32))


def child(args: argparse.Namespace) -> dict[str, Any]:
    """Run one dissection through `args.executor` in this process; return what it measured."""
    register_tiny_clip()
    from dissect_core.config import DissectConfig
    from dissect_core.pipeline import run_dissection

    config = DissectConfig(
        model="resnet18",
        weights="none@0",
        layers=("layer3", "layer4"),
        probe=args.probe,
        concepts="20k",
        encoder="tiny_clip:none",
        preprocessing={"resize": args.size, "crop": args.size},
        batch_size=args.batch_size,
        device="cpu",
        executor=args.executor,
        actors=args.actors if args.executor == "ray" else None,
    )
    cache = Path(args.cache)
    sampler = Sampler(cache / "ray-shards")
    executor = None
    if args.executor == "ray":
        import ray

        from dissect_core.executors.ray_executor import RayExecutor

        env = {
            "env_vars": {"PYTHONPATH": str(REPOSITORY), "RAY_USAGE_STATS_ENABLED": "0"},
            "worker_process_setup_hook": "bench.bench_executors.register_tiny_clip",  # in every worker process
        }
        ray.init(address="local", num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, runtime_env=env)
        executor = RayExecutor(config, chunk_images=args.chunk_batches * args.batch_size, n_blocks=args.blocks)
    started = time.perf_counter()
    try:
        result = run_dissection(config, cache_dir=cache, executor=executor)
    finally:
        wall = time.perf_counter() - started
        sampler.stop()
        if args.executor == "ray":
            import ray

            ray.shutdown()
    return {
        "executor": result.record.facts.executor,
        "wall_s": round(wall, 2),
        "timings_s": result.record.facts.timings_s,
        "driver_peak_gib": round(max(sampler.driver_peak, status_bytes("VmHWM")) / GIB, 3),
        "driver_anon_peak_gib": round(sampler.driver_anon_peak / GIB, 3),
        "driver_anon_after_gib": round(status_bytes("RssAnon") / GIB, 3),  # holding the result
        "worker_peak_gib": round(sampler.worker_peak / GIB, 3),
        "workers_total_peak_gib": round(sampler.workers_total_peak / GIB, 3),
        "shard_peak_bytes": sampler.shard_peak,
        "labels": {layer.name: [n.label for n in layer.neurons] for layer in result.layers},
        "scores": {layer.name: [n.score for n in layer.neurons] for layer in result.layers},
        "r": {
            layer.name: [n.evaluation.explained_r if n.evaluation else None for n in layer.neurons]
            for layer in result.layers
        },
        "n_images": len(result.image_ids),
        "units": {layer.name: layer.n_units for layer in result.layers},
        "n_concepts": len(result.concepts),
    }


def register_tiny_clip() -> None:
    """Register tests/fixtures' tiny open_clip architecture in this process (each Ray worker runs it too)."""
    import open_clip

    open_clip.add_model_config(str(REPOSITORY / "tests" / "fixtures" / "tiny_clip.json"))


def run_child(args: argparse.Namespace, executor: str, probe: Path, cache: Path) -> dict[str, Any]:
    """Return `child`'s measurements from a fresh process."""
    command = [
        sys.executable, "-m", "bench.bench_executors", "--child", "--executor", executor, "--probe", str(probe),
        "--cache", str(cache), "--size", str(args.size), "--batch-size", str(args.batch_size), "--actors",
        str(args.actors), "--blocks", str(args.blocks), "--chunk-batches", str(args.chunk_batches), "--cpus",
        str(args.cpus),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPOSITORY, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"the {executor} child failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def extrapolate() -> list[str]:
    """Return the lines that take the measurement to the target scale, formula beside each figure."""
    lines = []
    a_layer = N * K * 4
    e_all = N * D * 4
    top_maps = K * N_TOP * 7 * 7 * 4
    partials = 2 * C * 8  # one block's (maxima, sums) per slot set
    blocks = 32  # 64-unit blocks
    ids = N * 113  # a 64-character sha256 id as a Python str
    folds = N * 8
    stages_driver = top_maps + K * N_TOP * 12 + blocks * partials * (1 + FOLDS) + FOLDS * C * 8 + ids + folds
    summaries = N * (8 + 4) + 512 * C * 8  # log normalisers and carry bars, one 512-row block of float64 rows
    budget = 1 << 30  # DEFAULT_MEMORY_BUDGET_BYTES: the vocabulary spreads' columns, sorted copy and mask at once
    driver = stages_driver + summaries + budget
    lines.append(
        f"Ray driver, anonymous memory: the stages' state (top maps K*20*7*7*4 = {top_maps / GIB:.3f} GiB + top lists "
        f"K*20*12 + block partials 32 blocks*2*C*8*(1+F) = {blocks * partials * (1 + FOLDS) / GIB:.3f} GiB + fold "
        f"log p(m) F*C*8 + image ids N*113 B = {ids / GIB:.3f} GiB + folds N*8) = {stages_driver / GIB:.2f} GiB + "
        f"row summaries N*12 + 512*C*8 = {summaries / GIB:.2f} GiB + the vocabulary spreads' column reads within "
        f"the 1 GiB budget ({budget // (N * 12)} columns of N at a time) = {driver / GIB:.2f} GiB (< 3 GB)"
    )
    lines.append(
        f"Ray driver, mapped from the shard store (file pages, 0 anonymous bytes, the kernel drops them under "
        f"pressure): A N*K*4 = {a_layer / GIB:.1f} GiB per layer, E N*D*4 = {e_all / GIB:.1f} GiB and the unit E "
        f"the factored cosines read, N*D*4 = {e_all / GIB:.1f} GiB, and the target's outputs; the app's artifacts "
        "writer converts them (float16 A) in 64 MB parts into file-backed buffers"
    )
    logits, classifier_inputs = N * 1000 * 2, N * 2048 * 2  # float16, as the app stores them
    lines.append(
        "Ray driver, still whole in memory: none of A or E (the target's logits and classifier inputs are mapped "
        "rows too), and storing them is bounded: the app's `save_outputs` streams the float16 logits N*1000*2 = "
        f"{logits / GIB:.1f} GiB and classifier inputs N*2048*2 = {classifier_inputs / GIB:.1f} GiB of an ImageNet "
        "ResNet-50 to safetensors one 64 MB part at a time (`dissect_core/tensor_files.py`; before, it made whole "
        "float16 copies for safetensors' `save_file`, which takes whole contiguous tensors), and a cached probe pass "
        "loads mapped (`TensorCache.load`, mmap=True)"
    )
    block_units = K // blocks
    worker = N * block_units * 4 + block_units * C * 8 * (1 + FOLDS) + (1 << 30)
    lines.append(
        f"Ray block task: its columns N*64*4 {N * block_units * 4 / GIB:.2f} GiB + totals 64*C*8*(1+F) "
        f"{block_units * C * 8 * (1 + FOLDS) / GIB:.2f} GiB + P rows or gathered factors within the 1 GiB budget = "
        f"{worker / GIB:.1f} GiB per task (the unit E, N*D*4 = {e_all / GIB:.1f} GiB, mapped from the store)"
    )
    shard = 2 * a_layer + 3 * e_all  # A by blocks and as rows; E by chunks, as rows and as unit rows
    lines.append(
        f"shared storage: A twice (blocks, rows) 2*N*K*4 + E three times (chunks, rows, unit rows) 3*N*D*4 = "
        f"{shard / GIB:.1f} GiB for the first layer, + {2 * a_layer / GIB:.1f} GiB per further layer"
    )
    kernel_products = (1 + FOLDS) * K * TOP_T * C + FOLDS * NULL_UNITS * TOP_T * C
    probe_s = N / 2_500  # CLIP ViT-L/14 + target on 8 A100/H100, clip-retrieval's figure
    per_core = 5.5e6  # products/s per core measured by ../shared/notes (11 M/s on this 2-core machine)
    cores_needed = kernel_products / per_core / (probe_s / 3)
    # ASSUMED, not measured: the torch kernel (dissect_core/stages/device_totals.py) materialises the gathered
    # float32 factors, their float64 copy, the shifted sum and its logarithm, ~60 bytes of HBM traffic per product;
    # an H100 SXM moves 3.35 TB/s (NVIDIA H100 datasheet), so ~5e10 products/s per GPU, memory-bound (its 34 TFLOPS
    # of FP64 would allow more). bench/gpu_check_ray.py prints the measured figure on a GPU machine.
    per_gpu = 5e10
    gpus = 8
    gpu_s = kernel_products / (per_gpu * gpus)
    lines.append(
        f"kernel work at scale (1 + F)*K*T*C + F*256*T*C = {kernel_products:.2e} products; the probe pass over 8 GPUs "
        f"N/2,500 img/s = {probe_s / 60:.1f} min; similarity + evaluation <= 1/4 of the run needs them in "
        f"probe/3 = {probe_s / 3 / 60:.1f} min. On CPU block tasks: {cores_needed:,.0f} cores at {per_core:.1e} "
        f"products/s/core (NOT met on 8 GPU nodes of 32 cores). On the GPUs (gpus_per_actor > 0: the totals, fold "
        f"totals and null tasks request the config's GPUs and run the torch kernel there): {kernel_products:.2e} / "
        f"({gpus} GPUs * {per_gpu:.0e} products/s, an ASSUMPTION from the H100's 3.35 TB/s at ~60 B/product, not a "
        f"measurement) = {gpu_s:.1f} s, met with a margin of {probe_s / 3 / gpu_s:,.0f}x for the kernel; the "
        "P rows' matmuls (factored cosines, computed on the GPU) and the evaluation's CPU fits are not in this figure"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=32, help="the target's view, pixels (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--chunk-batches", type=int, default=5)
    parser.add_argument("--cpus", type=int, default=2, help="the local Ray cluster's CPUs")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--executor", default="local", help=argparse.SUPPRESS)
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-executors-") as scratch:
        root = Path(scratch)
        probe = probe_folder(root, args.images)
        results = {name: run_child(args, name, probe, root / f"cache-{name}") for name in ("local", "ray")}
    local, distributed = results["local"], results["ray"]
    print(
        f"{local['n_images']} images x {local['n_concepts']} concepts, units {local['units']}, batch {args.batch_size},"
        f" view {args.size}px, Ray: {args.actors} actors, {args.blocks} blocks, chunks of "
        f"{args.chunk_batches * args.batch_size} images, {args.cpus} CPUs, os.cpu_count()={os.cpu_count()}"
    )
    print(f"{'':24}{'local':>12}{'ray':>12}")
    keys = ("wall_s", "driver_peak_gib", "driver_anon_peak_gib", "driver_anon_after_gib", "worker_peak_gib")
    for key in (*keys, "workers_total_peak_gib", "shard_peak_bytes"):
        print(f"{key:24}{local[key]:>12}{distributed[key]:>12}")
    for stage in local["timings_s"]:
        print(f"{stage + ' s':24}{local['timings_s'][stage]:>12}{distributed['timings_s'].get(stage, '-'):>12}")
    print(f"executor fact: {local['executor']!r} / {distributed['executor']!r}")
    for layer in local["labels"]:
        differ = sum(a != b for a, b in zip(local["labels"][layer], distributed["labels"][layer], strict=True))
        delta = max(abs(a - b) for a, b in zip(local["scores"][layer], distributed["scores"][layer], strict=True))
        r_delta = max(
            (abs(a - b) for a, b in zip(local["r"][layer], distributed["r"][layer], strict=True) if a is not None),
            default=math.nan,
        )
        print(f"{layer}: labels that differ {differ}, max |Δscore| {delta:.2e}, max |Δr| {r_delta:.2e}")
    print("At 1.28 M images x 20k concepts x 2,048 units, one layer:")
    for line in extrapolate():
        print("  " + line)


if __name__ == "__main__":
    main()
