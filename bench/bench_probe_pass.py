"""The probe pass against its floor: the target's and the encoder's forward passes alone, on pre-decoded tensors, and
the pipeline's probe pass (decode in worker processes, both forwards, hooks, running top-k) on the same images.

    .venv/bin/python -m bench.bench_probe_pass [--images 256] [--model resnet18] [--encoder ViT-B-16:none]

Models have random weights (the same compute as real ones, nothing downloaded). Images are CIFAR-10 test images from
`../shared/data/cifar10-test` (or `--probe FOLDER`). The floor is timed after a warm-up batch; the pass is timed cold
(an empty tensor cache), as a first dissection of a probe set runs. Prints both, the ratio pass/floor (the issue's
target is at most 1.15), images/s and peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import torch

from dissect_core.allocator import tune_allocator
from dissect_core.config import DissectConfig
from dissect_core.data.cache import TensorCache
from dissect_core.data.probe import ProbeSet, iter_decoded_batches, load_probe_folder
from dissect_core.encoders import ImageTextEncoder, load_encoder
from dissect_core.models.targets import Target, load_target
from dissect_core.probe_pass import probe_pass

SHARED_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-test"
RESNET_STAGES = "conv1,layer1,layer2,layer3,layer4"


def decoded_batches(probe: ProbeSet, target: Target, encoder: ImageTextEncoder, batch_size: int) -> list[list]:
    """Return every batch decoded and preprocessed for both models: [[encoder pixels, target pixels], ...]."""
    transforms = [encoder.image_transform, target.preprocessing.transform()]
    return [tensors for _good, _bad, tensors in iter_decoded_batches(probe, transforms, batch_size)]


@torch.inference_mode()
def floor_seconds(batches: list[list], target: Target, encoder: ImageTextEncoder) -> tuple[float, float]:
    """Return (encoder seconds, target seconds) of the bare forward passes over pre-decoded batches."""
    encoder.encode_images(batches[0][0])  # warm-up: first-call allocations and kernel choices
    target.model(batches[0][1])
    encoder_s = target_s = 0.0
    for encoder_pixels, target_pixels in batches:
        started = time.perf_counter()
        encoder.encode_images(encoder_pixels)
        middle = time.perf_counter()
        target.model(target_pixels)
        target_s += time.perf_counter() - middle
        encoder_s += middle - started
    return encoder_s, target_s


def pass_seconds(probe: ProbeSet, target: Target, encoder: ImageTextEncoder, config: DissectConfig) -> float:
    """Return the seconds of the pipeline's probe pass over the probe set, with an empty cache."""
    with tempfile.TemporaryDirectory() as cache_dir:
        started = time.perf_counter()
        probe_pass(probe, target, encoder, config, TensorCache(Path(cache_dir)), lambda *_: None, lambda: None)
        return time.perf_counter() - started


def minor_faults() -> int:
    """Return this process's minor page faults so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def peak_rss_mib() -> float:
    """Return this process's peak resident memory in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> None:
    """Print the probe pass's time, its floor and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256, help="probe images (default 256)")
    parser.add_argument("--probe", default=str(SHARED_CIFAR), help="folder of probe images")
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--layers", default=RESNET_STAGES)
    parser.add_argument("--encoder", default="ViT-B-16:none", help="encoder spec (default ViT-B-16:none)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--no-tune", action="store_true", help="leave glibc malloc's thresholds as they are")
    args = parser.parse_args(argv)
    if not args.no_tune:
        tune_allocator()
    if not Path(args.probe).is_dir():
        raise SystemExit(f"no probe folder at {args.probe}; pass --probe FOLDER (CIFAR-10 lives in ../shared/)")
    torch.manual_seed(0)
    probe = load_probe_folder(args.probe, max_images=args.images)
    target = load_target(args.model, "none")
    encoder = load_encoder(args.encoder)
    layers = [layer for layer in args.layers.split(",") if layer]
    config = DissectConfig(
        model=args.model,
        weights="none",
        layers=tuple(layers),
        probe=args.probe,
        encoder=args.encoder,
        batch_size=args.batch_size,
    )

    started = time.perf_counter()
    batches = decoded_batches(probe, target, encoder, args.batch_size)
    decode_s = time.perf_counter() - started
    encoder_s, target_s = floor_seconds(batches, target, encoder)
    del batches
    floor_s = encoder_s + target_s
    faults_before = minor_faults()
    probe_s = pass_seconds(probe, target, encoder, config)
    faults = minor_faults() - faults_before
    n = len(probe)
    print(f"{args.model} ({', '.join(layers)}) + {args.encoder}, {n} images, batch {args.batch_size}")
    print("| part | seconds | images/s |")
    print("|---|---|---|")
    print(f"| decode + preprocess (1 process) | {decode_s:.1f} | {n / decode_s:,.1f} |")
    print(f"| encoder forward | {encoder_s:.1f} | {n / encoder_s:,.1f} |")
    print(f"| target forward | {target_s:.1f} | {n / target_s:,.1f} |")
    print(f"| floor (a): both forwards | {floor_s:.1f} | {n / floor_s:,.1f} |")
    print(f"| probe pass (b) | {probe_s:.1f} | {n / probe_s:,.1f} |")
    print(f"ratio b/a = {probe_s / floor_s:.3f} (target ≤ 1.15); peak RSS {peak_rss_mib():,.0f} MiB; ", end="")
    print(f"minor page faults in the pass {faults:,} (allocator tuned: {not args.no_tune})")


if __name__ == "__main__":
    main()
