"""End-to-end cold and warm dissections, stage by stage: the demo, and ResNet-18's five stages over 2,000 CIFAR-10
images with open_clip ViT-B-16 (random weights, the paper's default encoder) and the 20k concepts.

    .venv/bin/python -m bench.bench_cold_warm [--case demo|resnet18-cifar|both] [--images 2000]

Each run is a fresh process (imports and model loads counted), the cold one with an empty tensor cache, the warm one
rerunning the same job on the cache the cold one filled. The child counts the encoder's image batches and text
calls, so the table shows that a warm rerun does no image pass and no text pass. Prints per stage seconds, images/s
(probe pass) and concepts/s (concept embedding), wall time and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SHARED_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-test"
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
RESNET_STAGES = ("conv1", "layer1", "layer2", "layer3", "layer4")


def balanced_cifar(dest: Path, n_images: int) -> Path:
    """Return a folder linking n_images CIFAR-10 test images, the same number from each class."""
    per_class = n_images // len(CIFAR_CLASSES)
    for name in CIFAR_CLASSES:
        (dest / name).mkdir(parents=True, exist_ok=True)
        for source in sorted((SHARED_CIFAR / name).iterdir())[:per_class]:
            link = dest / name / source.name
            if not link.exists():
                link.symlink_to(source)
    return dest


def case_config(case: str, work: Path, n_images: int) -> Any:
    """Return the DissectConfig of a case."""
    from dissect_core.config import DEFAULT_OFFLINE_ENCODER, DissectConfig

    if case == "demo":
        from app.cli.commands.demo import DEMO_LAYERS, DEMO_MODEL
        from app.cli.demo_images import build_demo_probe

        probe = build_demo_probe(work / "demo-probe")
        return DissectConfig(model=DEMO_MODEL, layers=DEMO_LAYERS, probe=str(probe), encoder=DEFAULT_OFFLINE_ENCODER)
    probe = balanced_cifar(work / "cifar", n_images)
    return DissectConfig(
        model="resnet18", weights="none", layers=RESNET_STAGES, probe=str(probe), encoder="ViT-B-16:none"
    )


def child(case: str, work: Path, n_images: int) -> None:
    """Run one dissection with the cache under `work`; print a JSON line of its stages, counts and peak RSS."""
    import dissect_core.pipeline as pipeline
    from dissect_core.pipeline import run_dissection

    calls = {"image batches": 0, "text calls": 0}
    real_load_encoder = pipeline.load_encoder

    def counted_encoder(*args: Any, **kwargs: Any) -> Any:
        encoder = real_load_encoder(*args, **kwargs)
        encode_images, encode_texts = encoder.encode_images, encoder.encode_texts

        def images(*a: Any, **k: Any) -> Any:
            calls["image batches"] += 1
            return encode_images(*a, **k)

        def texts(*a: Any, **k: Any) -> Any:
            calls["text calls"] += 1
            return encode_texts(*a, **k)

        encoder.encode_images, encoder.encode_texts = images, texts  # type: ignore[method-assign]
        return encoder

    pipeline.load_encoder = counted_encoder
    config = case_config(case, work, n_images)
    result = run_dissection(config, cache_dir=work / "cache", data_dir=work / "data")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    summary = {
        "timings": result.record.facts.timings_s,
        "calls": calls,
        "images": len(result.image_ids),
        "concepts": len(result.concepts),
        "neurons": sum(layer.n_units for layer in result.layers),
        "peak_rss_mib": peak_mib,
    }
    print("RESULT " + json.dumps(summary))


def run_child(case: str, work: Path, n_images: int) -> dict[str, Any]:
    """Run `child` in a fresh interpreter; return its summary with the process's wall seconds."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "bench.bench_cold_warm", "--child", case, "--work", str(work)]
    command += ["--images", str(n_images)]
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=os.environ.copy()).stdout
    summary: dict[str, Any] = json.loads(next(line for line in output.splitlines() if line.startswith("RESULT "))[7:])
    summary["wall"] = time.perf_counter() - started
    return summary


def print_case(case: str, cold: dict[str, Any], warm: dict[str, Any]) -> None:
    """Print a case's cold and warm table."""
    print(f"\n{case}: {cold['neurons']:,} neurons, {cold['images']:,} images, {cold['concepts']:,} concepts")
    print("| stage | cold s | warm s | cold throughput |")
    print("|---|---|---|---|")
    for stage, seconds in cold["timings"].items():
        warm_s = warm["timings"].get(stage, 0.0)
        rate = ""
        if stage == "probe pass":
            rate = f"{cold['images'] / seconds:,.1f} images/s"
        elif stage == "embed concepts":
            rate = f"{cold['concepts'] / seconds:,.0f} concepts/s"
        print(f"| {stage} | {seconds:.1f} | {warm_s:.1f} | {rate} |")
    print(f"| total wall (process, imports included) | {cold['wall']:.1f} | {warm['wall']:.1f} | |")
    print(f"| peak RSS MiB | {cold['peak_rss_mib']:,.0f} | {warm['peak_rss_mib']:,.0f} | |")
    for name in ("image batches", "text calls"):
        print(f"| encoder {name} | {cold['calls'][name]} | {warm['calls'][name]} | |")


def main(argv: list[str] | None = None) -> None:
    """Run each case cold then warm in fresh processes and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=("demo", "resnet18-cifar", "both"), default="both")
    parser.add_argument("--images", type=int, default=2000, help="CIFAR-10 images for resnet18-cifar (default 2000)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, Path(args.work), args.images)
        return
    cases = ("demo", "resnet18-cifar") if args.case == "both" else (args.case,)
    if "resnet18-cifar" in cases and not SHARED_CIFAR.is_dir():
        raise SystemExit(f"no CIFAR-10 images at {SHARED_CIFAR}; run with --case demo")
    for case in cases:
        with tempfile.TemporaryDirectory(prefix=f"bench-{case}-") as work:
            cold = run_child(case, Path(work), args.images)
            warm = run_child(case, Path(work), args.images)
        print_case(case, cold, warm)


if __name__ == "__main__":
    main()
