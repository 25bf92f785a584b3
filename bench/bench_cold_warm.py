"""End-to-end cold and warm dissections, stage by stage: the demo, and ResNet-18's five stages over 2,000 CIFAR-10
images with open_clip ViT-B-16 (random weights, the paper's default encoder) and the 20k concepts.

    .venv/bin/python -m bench.bench_cold_warm [--case demo|resnet18-cifar|both] [--images 2000] [--batch-size 32]

Each run is a fresh process (imports and model loads counted), the cold one with an empty tensor cache, the warm one
rerunning the same job on the cache the cold one filled. The child counts the encoder's image batches and text
calls and the evaluation kernel's calls, so the table shows that a warm rerun does no image pass, no text pass and
no evaluation. Prints per stage seconds, images/s (probe pass) and concepts/s (concept embedding), wall time, peak
RSS, and the peak RSS within each stage (a thread samples /proc/self/status every 10 ms; a sample belongs to the
stage whose lap it fell in).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

SHARED_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-test"
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
RESNET_STAGES = ("conv1", "layer1", "layer2", "layer3", "layer4")
SAMPLE_SECONDS = 0.01


class RssSampler:
    """A daemon thread that records (seconds since start, resident MiB) of this process every SAMPLE_SECONDS."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self._started = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter() - self._started, resident_mib()))
            self._stop.wait(SAMPLE_SECONDS)

    def __enter__(self) -> RssSampler:
        self._started = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def stage_peaks(self, timings: dict[str, float]) -> dict[str, float]:
        """Return the highest sample within each stage, the stages laid end to end in `timings`' order."""
        peaks: dict[str, float] = {}
        end = 0.0
        bounds = []
        for stage, seconds in timings.items():
            bounds.append((stage, end, end + seconds))
            end += seconds
        for at, mib in self.samples:
            stage = next((name for name, start, stop in bounds if start <= at < stop), "after the stages")
            peaks[stage] = max(peaks.get(stage, 0.0), mib)
        return peaks


def resident_mib() -> float:
    """Return this process's resident set size in MiB (VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


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


def case_config(case: str, work: Path, n_images: int, batch_size: int) -> Any:
    """Return the DissectConfig of a case."""
    from dissect_core.config import DEFAULT_OFFLINE_ENCODER, DissectConfig

    if case == "demo":
        from app.cli.commands.demo import DEMO_LAYERS, DEMO_MODEL
        from app.cli.demo_images import build_demo_probe

        probe = build_demo_probe(work / "demo-probe")
        return DissectConfig(
            model=DEMO_MODEL,
            layers=DEMO_LAYERS,
            probe=str(probe),
            encoder=DEFAULT_OFFLINE_ENCODER,
            batch_size=batch_size,
        )
    probe = balanced_cifar(work / "cifar", n_images)
    return DissectConfig(
        model="resnet18",
        weights="none",
        layers=RESNET_STAGES,
        probe=str(probe),
        encoder="ViT-B-16:none",
        batch_size=batch_size,
    )


def child(case: str, work: Path, n_images: int, batch_size: int) -> None:
    """Run one dissection with the cache under `work`; print a JSON line of its stages, counts and peak RSS."""
    import dissect_core.pipeline as pipeline
    from dissect_core.pipeline import run_dissection

    calls = {"image batches": 0, "text calls": 0, "evaluation calls": 0}
    real_load_encoder = pipeline.load_encoder
    real_evaluate_layer = pipeline.evaluate_layer

    def counted_evaluate_layer(*args: Any, **kwargs: Any) -> Any:
        calls["evaluation calls"] += 1
        return real_evaluate_layer(*args, **kwargs)

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
    pipeline.evaluate_layer = counted_evaluate_layer
    config = case_config(case, work, n_images, batch_size)
    with RssSampler() as sampler:
        result = run_dissection(config, cache_dir=work / "cache", data_dir=work / "data")
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    summary = {
        "timings": result.record.facts.timings_s,
        "calls": calls,
        "images": len(result.image_ids),
        "concepts": len(result.concepts),
        "neurons": sum(layer.n_units for layer in result.layers),
        "peak_rss_mib": peak_mib,
        "stage_peak_rss_mib": sampler.stage_peaks(result.record.facts.timings_s),
    }
    print("RESULT " + json.dumps(summary))


def run_child(case: str, work: Path, n_images: int, batch_size: int) -> dict[str, Any]:
    """Run `child` in a fresh interpreter; return its summary with the process's wall seconds."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "bench.bench_cold_warm", "--child", case, "--work", str(work)]
    command += ["--images", str(n_images), "--batch-size", str(batch_size)]
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=os.environ.copy()).stdout
    summary: dict[str, Any] = json.loads(next(line for line in output.splitlines() if line.startswith("RESULT "))[7:])
    summary["wall"] = time.perf_counter() - started
    return summary


def print_case(case: str, cold: dict[str, Any], warm: dict[str, Any]) -> None:
    """Print a case's cold and warm table."""
    print(f"\n{case}: {cold['neurons']:,} neurons, {cold['images']:,} images, {cold['concepts']:,} concepts")
    print("| stage | cold s | warm s | cold throughput | cold peak RSS MiB | warm peak RSS MiB |")
    print("|---|---|---|---|---|---|")
    for stage, seconds in cold["timings"].items():
        warm_s = warm["timings"].get(stage, 0.0)
        rate = ""
        if stage == "probe pass":
            rate = f"{cold['images'] / seconds:,.1f} images/s"
        elif stage == "embed concepts":
            rate = f"{cold['concepts'] / seconds:,.0f} concepts/s"
        cold_peak = cold["stage_peak_rss_mib"].get(stage, 0.0)
        warm_peak = warm["stage_peak_rss_mib"].get(stage, 0.0)
        print(f"| {stage} | {seconds:.1f} | {warm_s:.1f} | {rate} | {cold_peak:,.0f} | {warm_peak:,.0f} |")
    print(f"| total wall (process, imports included) | {cold['wall']:.1f} | {warm['wall']:.1f} | | | |")
    print(f"| peak RSS MiB (ru_maxrss) | {cold['peak_rss_mib']:,.0f} | {warm['peak_rss_mib']:,.0f} | | | |")
    for name in ("image batches", "text calls", "evaluation calls"):
        print(f"| {name} | {cold['calls'][name]} | {warm['calls'][name]} | | | |")


def main(argv: list[str] | None = None) -> None:
    """Run each case cold then warm in fresh processes and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=("demo", "resnet18-cifar", "both"), default="both")
    parser.add_argument("--images", type=int, default=2000, help="CIFAR-10 images for resnet18-cifar (default 2000)")
    parser.add_argument("--batch-size", type=int, default=32, help="probe pass batch size (default 32)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, Path(args.work), args.images, args.batch_size)
        return
    cases = ("demo", "resnet18-cifar") if args.case == "both" else (args.case,)
    if "resnet18-cifar" in cases and not SHARED_CIFAR.is_dir():
        raise SystemExit(f"no CIFAR-10 images at {SHARED_CIFAR}; run with --case demo")
    for case in cases:
        with tempfile.TemporaryDirectory(prefix=f"bench-{case}-") as work:
            cold = run_child(case, Path(work), args.images, args.batch_size)
            warm = run_child(case, Path(work), args.images, args.batch_size)
        print_case(case, cold, warm)


if __name__ == "__main__":
    main()
