"""Benchmark of the similarity stage and the pipeline's stages on this CPU.

1. soft_wpmi against the published per-neuron loop on the same inputs (N=2,300, C=20,000, K=1,280):
   wall time of each, the speed-up, and the max |difference| against a float64 run of the loop.
2. Peak RSS of the similarity stage at the paper's scale (N=50,000, C=20,000, K=2,048; synthetic
   embeddings and activations), measured in a fresh subprocess.
3. Per-stage wall time and images/s of a real dissection (EfficientNet-Lite0, ConSE encoder) over the shared
   ImageNet images, when ../shared is present.

Run: .venv/bin/python bench/bench_similarity.py [--skip-memory] [--skip-pipeline]
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

SHARED_IMAGENET = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-val-1300"


def published_soft_wpmi_loop(clip_feats, target_feats, top_k=100, a=10, lam=1, min_prob=1e-7, p_start=0.998,
                             p_end=0.97):  # fmt: skip
    """The published CLIP-Dissect soft_wpmi (similarity.py), per-neuron loop, moved to CPU."""
    clip_feats = torch.nn.functional.softmax(a * clip_feats, dim=1)
    inds = torch.topk(target_feats, dim=0, k=top_k)[1]
    prob_d_given_e = []
    p_in_examples = p_start - (torch.arange(start=0, end=top_k) / top_k * (p_start - p_end)).unsqueeze(1)
    p_in_examples = p_in_examples.to(clip_feats.dtype)
    for orig_id in range(target_feats.shape[1]):
        curr_clip_feats = clip_feats.gather(0, inds[:, orig_id : orig_id + 1].expand(-1, clip_feats.shape[1]))
        curr_p_d_given_e = 1 + p_in_examples * (curr_clip_feats - 1)
        curr_p_d_given_e = torch.sum(torch.log(curr_p_d_given_e + min_prob), dim=0, keepdim=True)
        prob_d_given_e.append(curr_p_d_given_e)
    prob_d_given_e = torch.cat(prob_d_given_e, dim=0)
    prob_d = torch.logsumexp(prob_d_given_e, dim=0, keepdim=True) - math.log(prob_d_given_e.shape[0])
    return prob_d_given_e - lam * prob_d


def float64_reference(cos: torch.Tensor, activations: torch.Tensor, top_k: int = 100) -> torch.Tensor:
    """The published loop's arithmetic in float64, writing into one preallocated output.

    Run as published in float64, the loop's per-neuron rows kept between 16 MB temporaries fragment the heap
    until the process peaks at about 20 GiB; the same arithmetic into a preallocated tensor stays small.
    """
    probabilities = torch.nn.functional.softmax(10 * cos.double(), dim=1)
    indices = torch.topk(activations, dim=0, k=top_k)[1]
    weights = (0.998 - torch.arange(top_k, dtype=torch.float64) / top_k * (0.998 - 0.97)).unsqueeze(1)
    log_given = torch.empty(activations.shape[1], cos.shape[1], dtype=torch.float64)
    for unit in range(activations.shape[1]):
        log_given[unit] = torch.log(1 + weights * (probabilities[indices[:, unit]] - 1) + 1e-7).sum(0)
    return log_given - (torch.logsumexp(log_given, dim=0, keepdim=True) - math.log(activations.shape[1]))


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
    loop_s, loop32 = best_of(2, lambda: published_soft_wpmi_loop(cos, activations))
    truth = float64_reference(cos, activations)
    print(f"  published per-neuron loop (float32): {loop_s:8.2f} s  (best of 2)")
    print(f"  similarity.functions.soft_wpmi:{ours_s:8.2f} s  (best of 2)  speed-up {loop_s / ours_s:.1f}x")
    print(f"  max |ours - loop in float64|   = {(ours.double() - truth).abs().max().item():.2e}")
    print(f"  max |loop float32 - float64|   = {(loop32.double() - truth).abs().max().item():.2e}")
    print(f"  same best concept as the float64 loop: {(ours.argmax(1) == truth.argmax(1)).float().mean():.4f}")


MEMORY_CHILD = """
import sys, time, torch
sys.path.insert(0, {root!r})
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
    root = str(Path(__file__).resolve().parents[1])
    output = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD.format(root=root)], capture_output=True, text=True, check=True
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
            stages = ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in result.timings.items())
            print(f"pipeline ({attempt}): {n_neurons} neurons of {len(layers)} layers, {n_images} images, 20k concepts")
            probe_seconds = result.timings["probe pass"]
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
