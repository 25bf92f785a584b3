"""Verdict benchmark: per layer the share of labels at each grade, before (`reliable`) and after, and the r floor.

Dissections with the offline ConSE encoder (EfficientNet-Lite2 + MiniLM), the 20k vocabulary, 5 folds:
- EfficientNet-Lite0 trained and randomly initialised (`none`, seed 0), layers conv_stem, blocks.3, blocks.5,
  conv_head and classifier, on the 1,300 labelled ImageNet validation images of ../shared/data/imagenet-val-1300
  (labels given as a labels file naming each image's class, so coverage of a class name comes from the labels);
- a randomly initialised ResNet-18, layers layer1-layer4, on a seeded 1,000-image sample (100 per class) of
  CIFAR-10's test set (../shared/data/cifar10-test; labels from the class folders).
Before = today's `reliable` (significant after the layer's Benjamini–Hochberg correction); after = the graded
verdict (`dissect_core.evaluation.verdict`). Targets: the top grade on at most 5% of a random network's units on
every layer, and on at least half of the trained classifier's units.

The floor table regrades the stored evaluations and coverages under each candidate `min_r` (nothing else
changes): the calibrated floor is the smallest candidate at which every random layer keeps the top grade at or
below half the 5% target (the margin), reported with the trained classifier's share at it.

Run: .venv/bin/python -m bench.bench_verdicts [--cache-dir /tmp/neuron-atlas-bench-24]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import torch

from bench.imagenet_probe import CIFAR10_DIR, DEFAULT_CACHE, ENCODER, IMAGENET_DIR, named_labels_file, require_shared
from dissect_core.config import DissectConfig
from dissect_core.evaluation.verdict import (
    DEFAULT_MIN_EXPLAINED_R,
    DEFAULT_MIN_STABILITY,
    VERDICTS,
    VerdictRules,
    grade_label,
)
from dissect_core.pipeline import run_dissection
from dissect_core.results import DissectionResult, LayerResult

LITE_LAYERS = ("conv_stem", "blocks.3", "blocks.5", "conv_head", "classifier")
RESNET_LAYERS = ("layer1", "layer2", "layer3", "layer4")
CIFAR_IMAGES = 1000
RANDOM_TARGET = 0.05
MARGIN = 0.5  # the random layers' top-grade share must stay within this fraction of RANDOM_TARGET
TRAINED_TARGET = 0.5
FLOORS = tuple(round(0.05 * step, 2) for step in range(0, 11))


def dissections(cache: Path, labels: Path) -> dict[str, DissectionResult]:
    """Return the three benchmark networks' dissections (probe passes from the cache after the first run)."""
    imagenet = str(IMAGENET_DIR / "images")
    configs = {
        "Lite0 trained": DissectConfig(
            model="efficientnet_lite0", weights="DEFAULT", layers=LITE_LAYERS, probe=imagenet,
            labels_file=str(labels), encoder=ENCODER, concepts="20k",
        ),
        "Lite0 random": DissectConfig(
            model="efficientnet_lite0", weights="none", layers=LITE_LAYERS, probe=imagenet,
            labels_file=str(labels), encoder=ENCODER, concepts="20k",
        ),
        "ResNet-18 random": DissectConfig(
            model="resnet18", weights="none", layers=RESNET_LAYERS, probe=str(CIFAR10_DIR), max_images=CIFAR_IMAGES,
            encoder=ENCODER, concepts="20k",
        ),
    }  # fmt: skip
    results = {}
    for name, config in configs.items():
        start = time.perf_counter()
        config.validate()
        results[name] = run_dissection(config, cache_dir=cache)
        print(f"({name}: {time.perf_counter() - start:.0f} s, stages {results[name].record.facts.timings_s})")
    return results


def top_share(layer: LayerResult, min_r: float, coverage_gate: bool = True) -> float:
    """Return the share of the layer's labels at the top grade when the floor is `min_r` (other rules as run;
    without `coverage_gate` every concept counts as judgeable)."""
    rules = VerdictRules(min_r=min_r)
    graded = [
        grade_label(n.evaluation, n.coverage if coverage_gate else replace(n.coverage, judgeable=True), rules).reliable
        for n in layer.neurons
        if n.evaluation is not None and n.coverage is not None
    ]
    return sum(graded) / len(graded) if graded else float("nan")


def print_grades(results: dict[str, DissectionResult]) -> None:
    """Print per network and layer: units, share reliable before, share at each grade after, and why not top."""
    print(f"\nshare of labels at each grade (%), floor r {DEFAULT_MIN_EXPLAINED_R}")
    header = f"{'network':<18}{'layer':<12}{'units':>6}{'before':>8}" + "".join(f"{g:>10}" for g in VERDICTS)
    print(header + f"{'mean r':>8}{'stable':>8}{'covered':>9}{'blind':>7}")
    for network, result in results.items():
        for layer in result.layers:
            graded = [(n.evaluation, n.verdict, n.coverage) for n in layer.neurons]
            rows = [(e, v, c) for e, v, c in graded if e is not None and v is not None and c is not None]
            n = len(rows)
            before = sum(e.significant for e, _, _ in rows)
            grades = Counter(v.verdict for _, v, _ in rows)
            mean_r = sum(e.explained_r for e, _, _ in rows) / n
            stable = sum(e.stability >= DEFAULT_MIN_STABILITY - 1e-9 for e, _, _ in rows)
            covered = sum(c.judgeable for _, _, c in rows)
            blind = sum(c.encoder_blind for _, _, c in rows)
            print(
                f"{network:<18}{layer.name:<12}{n:>6}{100 * before / n:>8.1f}"
                + "".join(f"{100 * grades[g] / n:>10.1f}" for g in VERDICTS)
                + f"{mean_r:>8.3f}{100 * stable / n:>8.1f}{100 * covered / n:>9.1f}{100 * blind / n:>7.1f}"
            )


def print_floor_table(results: dict[str, DissectionResult], coverage_gate: bool) -> float | None:
    """Print the top-grade share per layer at each candidate floor; return the calibrated floor (None if none)."""
    random_layers = [(net, layer) for net, result in results.items() if "random" in net for layer in result.layers]
    classifier = results["Lite0 trained"].layer("classifier")
    trained_others = [layer for layer in results["Lite0 trained"].layers if layer.name != "classifier"]
    gate = "with the coverage rule" if coverage_gate else "without the coverage rule (every concept judgeable)"
    print(f"\ntop-grade share (%) by floor min_r, {gate}: every random layer, its maximum, the trained layers")
    names = [f"{'R18' if 'ResNet' in net else 'L0r'} {layer.name}" for net, layer in random_layers]
    print(
        f"{'min_r':>6}"
        + "".join(f"{name:>16}" for name in names)
        + f"{'max random':>11}{'classifier':>11}"
        + "".join(f"{'L0 ' + layer.name:>14}" for layer in trained_others)
    )
    chosen = None
    for floor in FLOORS:
        shares = [top_share(layer, floor, coverage_gate) for _, layer in random_layers]
        classifier_share = top_share(classifier, floor, coverage_gate)
        print(
            f"{floor:>6.2f}"
            + "".join(f"{100 * s:>16.1f}" for s in shares)
            + f"{100 * max(shares):>11.1f}{100 * classifier_share:>11.1f}"
            + "".join(f"{100 * top_share(layer, floor, coverage_gate):>14.1f}" for layer in trained_others)
        )
        if chosen is None and max(shares) <= MARGIN * RANDOM_TARGET:
            chosen = floor
    return chosen


def main() -> None:
    """Run the three dissections and print the grade and floor tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args()
    require_shared(IMAGENET_DIR)
    require_shared(CIFAR10_DIR)
    with tempfile.TemporaryDirectory() as folder:
        results = dissections(args.cache_dir, named_labels_file(Path(folder)))
    print_grades(results)
    print_floor_table(results, coverage_gate=True)
    # The floor must hold on probe sets that cover every concept, so it is calibrated without the coverage rule.
    chosen = print_floor_table(results, coverage_gate=False)
    if chosen is None:
        print(f"\nno floor in {FLOORS} keeps every random layer within {MARGIN * RANDOM_TARGET:.1%}")
        return
    classifier = top_share(results["Lite0 trained"].layer("classifier"), chosen, coverage_gate=False)
    verdict = "meets" if classifier >= TRAINED_TARGET else "misses"
    print(
        f"\ncalibrated floor: min_r {chosen:.2f} (the smallest with every random layer <= "
        f"{MARGIN * RANDOM_TARGET:.1%} top grade without the coverage rule); trained classifier {classifier:.1%} "
        f"top grade ({verdict} the {TRAINED_TARGET:.0%} target); DEFAULT_MIN_EXPLAINED_R is {DEFAULT_MIN_EXPLAINED_R}"
    )


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
