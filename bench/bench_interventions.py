"""Issue 23's figures: what one intervention costs, and whether a unit's label predicts what its ablation does.

    .venv/bin/python -m bench.bench_interventions [--probe demo|imagenet] [--units 64] [--cache-dir DIR]

On EfficientNet-Lite0 (`efficientnet_lite0`, the shipped ImageNet weights) over the demo's photographs (built as
`neuron-atlas demo` builds them; 332 images) or the 1,300 ImageNet validation images of ../shared/data:
- time: one `conv_head` ablation (unit 705, mode zero, against the plain pass's logits stored as float16, as a
  run stores them) against one plain pass over the same decoded batches (forwards only, best of `--repeats`),
  and the ablation end to end (decoding included);
- sweep: the first `--units` units of `conv_head` zeroed one by one (`sweep_layer`), the label–effect agreement
  of each (the unit's label against the ImageNet class names of the 5 classes its ablation hurts most, in the
  run's text encoder, against 1,000 random 5-class sets), for the trained network and a randomly initialised one
  (`--weights none`, seed 0; the trained network's class names are lent to it), and the Spearman correlation of
  the agreement z with each label's `explained_r`.
Labels and explained_r come from one dissection of `conv_head` per network with the library (offline ConSE
encoder, 20k concepts, 5 folds), cached in --cache-dir with the probe pass. Prints; no timed asserts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict
from pathlib import Path

import torch
from torch import Tensor

from bench.imagenet_probe import IMAGENET_DIR, image_classes_by_file, require_shared
from dissect_core.config import DEFAULT_OFFLINE_ENCODER, DissectConfig
from dissect_core.data.probe import ProbeSet, load_probe_folder
from dissect_core.interventions.batches import ImageBatch, probe_batches, sample_images
from dissect_core.interventions.effects import run_intervention
from dissect_core.interventions.modes import DEFAULT_MAX_INTERVENTION_IMAGES, InterventionSpec, check_spec
from dissect_core.interventions.sweep import UnitSweepResult, sweep_layer
from dissect_core.models.class_names import weights_class_names
from dissect_core.models.targets import Target, load_target

MODEL = "efficientnet_lite0"
LAYER = "conv_head"
UNIT = 705  # the "hare" unit
CONCEPTS = "20k"
BATCH_SIZE = DissectConfig.defaults()["batch_size"]
DEFAULT_CACHE = Path("/tmp/neuron-atlas-bench-23")


def probe_folder(which: str, cache_dir: Path) -> Path:
    """Return the folder of probe images: the demo's photographs (built once in the cache) or the ImageNet set."""
    if which == "imagenet":
        require_shared(IMAGENET_DIR)
        return IMAGENET_DIR / "images"
    from app.cli.demo_images import build_demo_probe

    return build_demo_probe(cache_dir / "demo-probe")


def unit_labels(weights: str, folder: Path, cache_dir: Path) -> tuple[list[str], list[float]]:
    """Return each conv_head unit's label and explained_r from a dissection with the library (cached as JSON)."""
    record = cache_dir / f"labels-{weights}-{folder.parent.name}-{folder.name}.json"
    if record.is_file():
        saved = json.loads(record.read_text())
        return saved["labels"], saved["explained_r"]
    from dissect_core.pipeline import run_dissection

    config = DissectConfig(
        model=MODEL, weights=weights, layers=(LAYER,), probe=str(folder), concepts=CONCEPTS,
        encoder=DEFAULT_OFFLINE_ENCODER,
    )  # fmt: skip
    start = time.perf_counter()
    neurons = run_dissection(config, cache_dir=cache_dir).layer(LAYER).neurons
    print(f"  dissected {MODEL} ({weights}) {LAYER} in {time.perf_counter() - start:.0f} s (cached from now on)")
    labels = [neuron.label for neuron in neurons]
    explained = [neuron.evaluation.explained_r if neuron.evaluation else float("nan") for neuron in neurons]
    record.write_text(json.dumps({"labels": labels, "explained_r": explained}))
    return labels, explained


def decoded_batches(probe: ProbeSet, target: Target) -> tuple[list[ImageBatch], float]:
    """Return every probe image's batch, decoded and preprocessed once, and the seconds that took."""
    start = time.perf_counter()
    positions = sample_images(len(probe), DEFAULT_MAX_INTERVENTION_IMAGES, seed=0)
    batches = list(probe_batches(probe, positions, target.preprocessing, BATCH_SIZE))
    return batches, time.perf_counter() - start


@torch.inference_mode()
def plain_pass(target: Target, batches: list[ImageBatch]) -> tuple[Tensor, float]:
    """Return the logits of one plain pass over the batches [N, C] and its seconds (forwards only)."""
    start = time.perf_counter()
    logits = torch.cat([target.model(pixels).float() for _, pixels in batches])
    return logits, time.perf_counter() - start


def _listed(seconds: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in seconds)


def time_ablation(folder: Path, image_labels: list[int | None] | None, repeats: int) -> None:
    """Print one conv_head ablation's seconds against one plain pass's over the same images."""
    target = load_target(MODEL, "DEFAULT")
    probe = load_probe_folder(folder)
    batches, decode_seconds = decoded_batches(probe, target)
    n_images = sum(len(positions) for positions, _ in batches)
    names = weights_class_names(MODEL, None)
    spec = check_spec(InterventionSpec(LAYER, (UNIT,), "zero"), {LAYER: 1280})
    plain_seconds, ablation_seconds = [], []
    for _ in range(repeats):
        logits, seconds = plain_pass(target, batches)
        plain_seconds.append(seconds)
        effect = run_intervention(
            target.model, LAYER, spec, batches, baseline_logits=logits.half(), labels=image_labels, class_names=names
        )
        ablation_seconds.append(effect.seconds)
    start = time.perf_counter()
    streamed = probe_batches(probe, list(range(len(probe))), target.preprocessing, BATCH_SIZE)
    run_intervention(target.model, LAYER, spec, streamed, baseline_logits=logits.half())
    end_to_end = time.perf_counter() - start
    plain, ablation = min(plain_seconds), min(ablation_seconds)
    print(f"\n## one {LAYER} ablation (unit {UNIT}, zero) over {n_images} images, batch {BATCH_SIZE}")
    print(f"decode + preprocess once: {decode_seconds:.2f} s")
    print(f"plain pass (forwards):    {plain:.2f} s   (best of {_listed(plain_seconds)})")
    print(f"ablation (forwards):      {ablation:.2f} s   (best of {_listed(ablation_seconds)})")
    print(f"ratio ablation / plain:   {ablation / plain:.2f}")
    print(f"ablation end to end (decoding included): {end_to_end:.2f} s")
    hurt = ", ".join(f"{c.class_name.split(',')[0] if c.class_name else c.class_index} {c.mean_delta_logit:+.3f}"
                     for c in effect.classes[:5])  # fmt: skip
    print(f"most hurt: {hurt}")
    print(f"predictions changed: {effect.predictions_changed:.3%}; accuracy {effect.accuracy_before} -> "
          f"{effect.accuracy_after}")  # fmt: skip


def spearman(x: list[float], y: list[float]) -> float:
    """Return the Spearman rank correlation of two lists (NaN pairs dropped)."""
    from scipy.stats import spearmanr

    pairs = [(a, b) for a, b in zip(x, y, strict=True) if a == a and b == b]
    return float(spearmanr([a for a, _ in pairs], [b for _, b in pairs]).statistic)


def sweep(weights: str, folder: Path, cache_dir: Path, n_units: int) -> list[dict]:
    """Return the sweep of the first `n_units` conv_head units of one network with their explained_r, one dict
    per unit (cached as JSON, so a rerun prints without sweeping again)."""
    record = cache_dir / f"sweep-{weights}-{folder.parent.name}-{folder.name}-{n_units}.json"
    if record.is_file():
        return json.loads(record.read_text())
    rows = [
        {**asdict(result.agreement), "predictions_changed": result.predictions_changed, "seconds": result.seconds,
         "explained_r": explained}
        for result, explained in zip(*_sweep(weights, folder, cache_dir, n_units), strict=True)
    ]  # fmt: skip
    record.write_text(json.dumps(rows))
    return rows


def _sweep(weights: str, folder: Path, cache_dir: Path, n_units: int) -> tuple[list[UnitSweepResult], list[float]]:
    """Return the sweep of the first `n_units` conv_head units of one network, and their explained_r."""
    from dissect_core.encoders import load_encoder

    labels, explained = unit_labels(weights, folder, cache_dir)
    target = load_target(MODEL, weights)
    batches, _ = decoded_batches(load_probe_folder(folder), target)
    logits, _ = plain_pass(target, batches)
    encoder = load_encoder(DEFAULT_OFFLINE_ENCODER)
    names = weights_class_names(MODEL, None) or []  # the trained network's names, lent to the random one
    units = list(range(n_units))
    results = sweep_layer(
        target.model, LAYER, units, batches, baseline_logits=logits.half(),
        label_embeddings=encoder.encode_texts([labels[unit] for unit in units]).float(),
        class_name_embeddings=encoder.encode_texts(names).float(),
    )  # fmt: skip
    return results, [explained[unit] for unit in units]


def report_sweep(weights: str, rows: list[dict]) -> None:
    """Print one network's sweep: agreement, its significance and its relation to explained_r."""
    z = [row["z"] for row in rows]
    significant = sum(row["p_value"] < 0.05 for row in rows)
    print(
        f"| {weights} | {len(rows)} | {statistics.mean(row['cosine'] for row in rows):.3f} "
        f"| {statistics.mean(z):+.2f} | {statistics.median(z):+.2f} | {significant / len(rows):.0%} "
        f"| {statistics.mean(row['predictions_changed'] for row in rows):.2%} "
        f"| {spearman(z, [row['explained_r'] for row in rows]):+.2f} | {rows[0]['seconds']:.3f} |"
    )


def main() -> None:
    """Time one ablation, then sweep conv_head on the trained and the random network."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probe", choices=("demo", "imagenet"), default="demo")
    parser.add_argument("--units", type=int, default=64, help="sweep the first N units of conv_head")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--skip-sweep", action="store_true")
    args = parser.parse_args()
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    folder = probe_folder(args.probe, args.cache_dir)
    image_labels: list[int | None] | None = None
    if args.probe == "imagenet":
        by_file = image_classes_by_file()
        image_labels = [by_file[Path(image.path).name] for image in load_probe_folder(folder).images]
    print(f"probe {folder}; {torch.get_num_threads()} torch threads")
    if not args.skip_timing:
        time_ablation(folder, image_labels, args.repeats)
    if args.skip_sweep:
        return
    sweeps = {weights: sweep(weights, folder, args.cache_dir, args.units) for weights in ("DEFAULT", "none")}
    print(f"\n## {LAYER} sweep, first {args.units} units, zero, 5 most hurt classes vs 1,000 random 5-class sets")
    print("| weights | units | mean cosine | mean z | median z | p < 0.05 | predictions changed | "
          "Spearman(z, explained_r) | s / unit |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for weights, rows in sweeps.items():
        report_sweep(weights, rows)


if __name__ == "__main__":
    main()
