"""Benchmark of the similarity stage and the pipeline's stages on this CPU.

1. soft_wpmi against the published per-neuron loop on the same inputs (N=2,300, C=20,000, K=1,280):
   wall time of each, the speed-up, and the max |difference| against a float64 run of the loop.
2. Peak RSS of the similarity stage at the paper's scale (N=50,000, C=20,000, K=2,048; synthetic
   embeddings and activations), measured in a fresh subprocess.
3. Per-stage wall time and images/s of a real dissection (EfficientNet-Lite0, ConSE encoder) over the shared
   ImageNet images, when ../shared is present.

Run: .venv/bin/python -m bench.bench_similarity [--skip-memory] [--skip-pipeline]
"""

from __future__ import annotations

import argparse
import math
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from dissect_core.similarity.functions import soft_wpmi
from tests.support.published_loops import soft_wpmi_loop, soft_wpmi_loop_float64_preallocated

REPO = Path(__file__).resolve().parents[1]
SHARED_IMAGENET = REPO.parent / "shared" / "data" / "imagenet-val-1300"


def synthetic_problem(n_images: int, n_concepts: int, n_neurons: int, dim: int = 512, seed: int = 0):
    """Return unit image and text embeddings and activations with some structure (not pure noise)."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.nn.functional.normalize(torch.randn(n_images, dim, generator=generator), dim=1)
    texts = torch.nn.functional.normalize(torch.randn(n_concepts, dim, generator=generator), dim=1)
    activations = images @ torch.randn(dim, n_neurons, generator=generator)
    for start in range(0, n_images, 4096):  # in place, in blocks: the inputs alone set the baseline RSS
        block = activations[start : start + 4096]
        block.add_(0.1 * torch.randn(block.shape, generator=generator)).relu_()
    return images, texts, activations


def best_of(repeats: int, run: Callable[[], torch.Tensor]) -> tuple[float, torch.Tensor]:
    """Return the shortest wall time of `repeats` calls and the last result."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench_speed() -> None:
    n_images, n_concepts, n_neurons = 2_300, 20_000, 1_280
    images, texts, activations = synthetic_problem(n_images, n_concepts, n_neurons)
    cos = (images @ texts.T) * 3  # spread the cosines like CLIP's (about ±0.3 around a mean)
    print(f"soft_wpmi, N={n_images} C={n_concepts} K={n_neurons} top_k=100, {torch.get_num_threads()} threads")
    ours_s, ours = best_of(2, lambda: soft_wpmi(cos, activations))
    loop_s, loop32 = best_of(2, lambda: soft_wpmi_loop(cos, activations))
    truth = soft_wpmi_loop_float64_preallocated(cos, activations)
    print(f"  published per-neuron loop (float32): {loop_s:8.2f} s  (best of 2)")
    print(f"  similarity.functions.soft_wpmi:{ours_s:8.2f} s  (best of 2)  speed-up {loop_s / ours_s:.1f}x")
    print(f"  max |ours - loop in float64|   = {(ours.double() - truth).abs().max().item():.2e}")
    print(f"  max |loop float32 - float64|   = {(loop32.double() - truth).abs().max().item():.2e}")
    print(f"  same best concept as the float64 loop: {(ours.argmax(1) == truth.argmax(1)).float().mean():.4f}")


MEMORY_CHILD = """
import time
from bench.bench_similarity import peak_rss_gib, synthetic_problem
from dissect_core.similarity.cosine import FactoredCosine
from dissect_core.similarity.functions import soft_wpmi
images, texts, activations = synthetic_problem(50_000, 20_000, 2_048)
before = peak_rss_gib()
start = time.perf_counter()
scores = soft_wpmi(FactoredCosine(images, texts), activations)
elapsed = time.perf_counter() - start
peak = peak_rss_gib()
print(f"{{before:.2f}} {{peak:.2f}} {{elapsed:.1f}} {{tuple(scores.shape)}}")
"""


def peak_rss_gib() -> float:
    """Return this process's peak resident set size in GiB.

    Linux's VmHWM starts afresh in an exec'd child; getrusage's ru_maxrss does not (it keeps the parent's peak
    from before the exec), so a child started by a large parent would report the parent's figure.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def bench_memory() -> None:
    print("soft_wpmi memory at N=50,000 C=20,000 K=2,048 (factored cosine, fresh process)")
    # `python -c` puts the working directory on sys.path, so the child imports bench/ from the repository root.
    output = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD.replace("{{", "{").replace("}}", "}")],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout.split()
    before, peak, elapsed = float(output[0]), float(output[1]), float(output[2])
    print(f"  peak RSS before the similarity stage (inputs + torch): {before:.2f} GiB")
    print(f"  peak RSS of the whole process after it:                {peak:.2f} GiB  (limit 3 GiB)")
    print(f"  similarity stage wall time: {elapsed:.1f} s, scores {' '.join(output[3:])}")


def bench_pipeline() -> None:
    if not SHARED_IMAGENET.is_dir():
        print(f"pipeline stages: skipped, {SHARED_IMAGENET} not found")
        return
    from dissect_core.config import DissectConfig
    from dissect_core.pipeline import run_dissection

    layers = ("conv_stem", "blocks.1", "blocks.3", "blocks.5", "conv_head", "classifier")
    config = DissectConfig(
        model="efficientnet_lite0", layers=layers, probe=str(SHARED_IMAGENET / "images"), concepts="20k",
        encoder="conse:efficientnet_lite2+minilm",
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as cache:
        for attempt in ("cold cache", "warm cache"):
            start = time.perf_counter()
            result = run_dissection(config, cache_dir=Path(cache))
            total = time.perf_counter() - start
            n_images = len(result.image_ids)
            n_neurons = sum(layer.n_units for layer in result.layers)
            stages = ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in result.record.facts.timings_s.items())
            print(f"pipeline ({attempt}): {n_neurons} neurons of {len(layers)} layers, {n_images} images, 20k concepts")
            probe_seconds = result.record.facts.timings_s["probe pass"]
            rate = f"{n_images / probe_seconds:.1f} images/s" if probe_seconds >= 1 else "all from the cache"
            print(f"  {stages}; total {total:.1f} s; probe pass {rate}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-pipeline", action="store_true")
    args = parser.parse_args()
    if not args.skip_speed:
        bench_speed()
    if not args.skip_memory:
        bench_memory()
    if not args.skip_pipeline:
        bench_pipeline()
    print(f"peak RSS of this process: {peak_rss_gib():.2f} GiB")


if __name__ == "__main__":
    main()
