"""The paper's job on one GPU, single-process and through Ray with two actors sharing the GPU: wall time per stage,
images/s, labels that differ and max |Δscore| (cuDNN picks kernels by batch shape, so bit-identity is not promised
on a GPU; labels should agree but for near-ties), then soft-WPMI's kernel on the widest layer by the compiled CPU
kernel and by the torch kernel the Ray block tasks run on a GPU (seconds, products/s, labels that differ, max
|Δscore|; --dry-run runs the torch kernel on the CPU).

    .venv/bin/python -m bench.gpu_check_ray [--images 10000] [--batch-size 200]     # on a GPU machine, < 8 min
    .venv/bin/python -m bench.gpu_check_ray --dry-run                               # on a CPU, tiny, ~1-2 min

A ResNet-50 with random weights (the paper's target, 5 layers: conv1, layer1..layer4), open_clip ViT-B-16 with
random weights (the paper's encoder architecture; nothing is downloaded), the 20k concepts, and generated smooth
random images (the machine may reach no data). --dry-run: a random ResNet-18 at 32 x 32 pixels, two layers, the tiny
open_clip of tests/fixtures, 96 images and the 100 CIFAR-100 class names, on the CPU.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

REPOSITORY = Path(__file__).resolve().parents[1]


def make_images(folder: Path, n_images: int, size: int) -> Path:
    """Write `n_images` smooth random RGB images of `size` x `size` pixels into `folder`; return it."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(n_images):
        small = (rng.random((6, 6, 3)) * 255).astype("uint8")
        Image.fromarray(small).resize((size, size), Image.Resampling.BILINEAR).save(folder / f"{index:06d}.png")
    return folder


def register_tiny_clip() -> None:
    """Register tests/fixtures' tiny open_clip architecture in this process (a Ray worker runs it too)."""
    import open_clip

    open_clip.add_model_config(str(REPOSITORY / "tests" / "fixtures" / "tiny_clip.json"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--chunk-batches", type=int, default=10)
    parser.add_argument("--blocks", type=int, default=8, help="neuron blocks per layer on the Ray side")
    parser.add_argument("--dry-run", action="store_true", help="tiny, on the CPU")
    args = parser.parse_args()

    import ray
    import torch

    from dissect_core.config import DissectConfig
    from dissect_core.executors.ray_executor import RayExecutor
    from dissect_core.pipeline import run_dissection

    if args.dry_run:
        register_tiny_clip()
        n_images, batch, device = 96, 16, "cpu"
        settings: dict[str, Any] = {
            "model": "resnet18", "layers": ("layer3", "layer4"), "encoder": "tiny_clip:none",
            "preprocessing": {"resize": 32, "crop": 32}, "gpus_per_actor": 0.0,
        }  # fmt: skip
    else:
        if not torch.cuda.is_available():
            raise SystemExit("no GPU here: run with --dry-run for the CPU check")
        n_images, batch, device = args.images, args.batch_size, "cuda"
        settings = {
            "model": "resnet50", "layers": ("conv1", "layer1", "layer2", "layer3", "layer4"),
            "encoder": "ViT-B-16:none", "gpus_per_actor": 0.5,
        }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="gpu-check-ray-") as scratch:
        root = Path(scratch)
        started = time.perf_counter()
        probe = make_images(root / "probe", n_images, 64)
        print(f"{n_images} images generated in {time.perf_counter() - started:.1f} s; device {device}", flush=True)
        concepts = "cifar100" if args.dry_run else "20k"
        config = DissectConfig(
            probe=str(probe), weights="none@0", concepts=concepts, batch_size=batch, device=device, actors=2, **settings
        )
        started = time.perf_counter()
        local = run_dissection(config, cache_dir=root / "cache-local")
        local_wall = time.perf_counter() - started
        print(f"local: {local_wall:.1f} s {local.record.facts.timings_s}", flush=True)

        env: dict[str, Any] = {"env_vars": {"PYTHONPATH": str(REPOSITORY), "RAY_USAGE_STATS_ENABLED": "0"}}
        if args.dry_run:
            env["worker_process_setup_hook"] = "bench.gpu_check_ray.register_tiny_clip"
        ray.init(
            address="local", num_cpus=os.cpu_count(), num_gpus=1 if device == "cuda" else 0, include_dashboard=False,
            log_to_driver=False, runtime_env=env,
        )  # fmt: skip
        try:
            executor = RayExecutor(config, chunk_images=args.chunk_batches * batch, n_blocks=args.blocks)
            started = time.perf_counter()
            distributed = run_dissection(config, cache_dir=root / "cache-ray", executor=executor)
            ray_wall = time.perf_counter() - started
        finally:
            ray.shutdown()
    print(f"ray:   {ray_wall:.1f} s {distributed.record.facts.timings_s}")
    print(f"executor facts: {local.record.facts.executor!r} / {distributed.record.facts.executor!r}")
    stages = sorted(set(local.record.facts.timings_s) | set(distributed.record.facts.timings_s))
    print(f"{'stage':18}{'local s':>10}{'ray s':>10}")
    for stage in stages:
        seconds = [result.record.facts.timings_s.get(stage, "-") for result in (local, distributed)]
        print(f"{stage:18}{seconds[0]:>10}{seconds[1]:>10}")
    for name, result in (("local", local), ("ray", distributed)):
        probe_s = result.record.facts.timings_s.get("probe pass", float("nan"))
        print(f"{name}: probe pass {len(result.image_ids) / probe_s:,.0f} images/s")
    for one, other in zip(local.layers, distributed.layers, strict=True):
        differ = sum(a.label != b.label for a, b in zip(one.neurons, other.neurons, strict=True))
        delta = max(abs(a.score - b.score) for a, b in zip(one.neurons, other.neurons, strict=True))
        r_delta = max(
            (
                abs(a.evaluation.explained_r - b.evaluation.explained_r)
                for a, b in zip(one.neurons, other.neurons, strict=True)
                if a.evaluation is not None and b.evaluation is not None
            ),
            default=float("nan"),
        )
        print(
            f"{one.name}: {one.n_units} units, labels that differ {differ}, max |Δscore| {delta:.2e}, "
            f"max |Δr| {r_delta:.2e}"
        )
    kernel_check(local, config, device)


def kernel_check(result: Any, config: Any, device: str) -> None:
    """Print soft-WPMI's scores on the run's widest layer by the compiled CPU kernel and by the torch kernel the Ray
    block tasks run on a GPU (`dissect_core.stages.device_totals`): seconds, products/s, labels that differ and
    max |Δscore| (the scores of a Ray block task on a GPU against those of the single process)."""
    import torch

    from dissect_core.data.concepts import load_concepts
    from dissect_core.encoders import load_encoder
    from dissect_core.similarity.functions import resolve_similarity_params, weighted_log_kernel
    from dissect_core.stages.scoring import layer_cosines, similarity_on

    concepts = load_concepts(config.concepts).concepts
    text = load_encoder(config.encoder, torch.device(device)).encode_texts(concepts).float().cpu()
    layer = max(result.layers, key=lambda layer: layer.n_units)
    cosine = layer_cosines(result.image_embeddings, text)
    params = resolve_similarity_params("soft_wpmi", {}, len(result.image_ids))
    kernel = weighted_log_kernel("soft_wpmi", params)
    assert kernel is not None
    products = layer.n_units * kernel.top_k * len(concepts)
    scores = {}
    for name, on in (("cpu (numba)", None), (f"torch on {device}", torch.device(device))):
        similarity_on("soft_wpmi", params, on)(cosine, layer.activations[:, :2])  # compile, warm up
        started = time.perf_counter()
        scores[name] = similarity_on("soft_wpmi", params, on)(cosine, layer.activations)
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        print(f"kernel {name}: {layer.name} {layer.n_units} units x top_k {kernel.top_k} x {len(concepts)} concepts "
              f"in {seconds:.2f} s = {products / seconds:.3g} products/s")  # fmt: skip
    one, other = scores.values()
    differ = int((one.argmax(dim=1) != other.argmax(dim=1)).sum())
    print(f"kernel: labels that differ {differ} of {layer.n_units}, max |Δscore| {(one - other).abs().max():.2e}")


if __name__ == "__main__":
    main()
