"""Trust benchmark: how much of each neuron its label explains on held-out images, trained vs random weights.

On 1,300 real ImageNet validation images, EfficientNet-Lite0 with its trained weights and the same
architecture randomly initialised (seed 0), layers conv_stem, blocks.3, blocks.5, conv_head and classifier,
the offline ConSE encoder (EfficientNet-Lite2 + MiniLM): per layer the mean out-of-fold `explained_r` of the
single label on `20k` and on `20k-clean`, the mean `explanation_r` of the multi-concept explanation, the share
of reliable labels and of generic labels; for the classifier the ground-truth r (activation vs the true class
column) and top-1/top-5 with the ImageNet class names as concepts (the shown label is still chosen on all
images, so these are unchanged by the evaluation); the two simulations (cosine, softmax) compared; and the
evaluation's time beside the similarity stage's and the cold run's total.

Run: .venv/bin/python -m bench.bench_trust [--imagenet-dir ../shared/data/imagenet-val-1300]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import torch

from dissect_core.config import DissectConfig
from dissect_core.data.concepts import imagenet_class_names
from dissect_core.data.vocabulary import is_generic_concept
from dissect_core.pipeline import run_dissection
from dissect_core.results import DissectionResult

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-val-1300"
ENCODER = "conse:efficientnet_lite2+minilm"
LAYERS = ("conv_stem", "blocks.3", "blocks.5", "conv_head", "classifier")


def named_labels_file(imagenet_dir: Path, folder: Path) -> Path:
    """Write a labels CSV naming each image's class as torchvision does, so ground truth matches concepts."""
    names = imagenet_class_names()
    path = folder / "labels_named.csv"
    with open(imagenet_dir / "labels.csv", newline="") as source, open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["file", "label"])
        for row in csv.DictReader(source):
            writer.writerow([row["file"], names[int(row["class_index"])]])
    return path


def dissect(imagenet_dir: Path, labels: Path, weights: str, concepts: str, cache: Path, **extra) -> DissectionResult:
    """Return a dissection of the benchmark's layers (the probe pass comes from the cache after the first)."""
    config = DissectConfig(
        model="efficientnet_lite0",
        weights=weights,
        layers=LAYERS,
        probe=str(imagenet_dir / "images"),
        labels_file=str(labels),
        concepts=concepts,
        encoder=ENCODER,
        **extra,
    )
    return run_dissection(config, cache_dir=cache)


def layer_rows(result: DissectionResult) -> dict[str, dict[str, float]]:
    """Return per layer: mean explained_r, mean explanation_r, share reliable, share generic, mean ground truth."""
    rows = {}
    for layer in result.layers:
        evaluations = [n.evaluation for n in layer.neurons if n.evaluation is not None]
        truths = [e.ground_truth_r for e in evaluations if e.ground_truth_r is not None]
        rows[layer.name] = {
            "r": sum(e.explained_r for e in evaluations) / len(evaluations),
            "explanation_r": sum(e.explanation_r for e in evaluations) / len(evaluations),
            "reliable": sum(e.reliable for e in evaluations) / len(evaluations),
            "generic": sum(is_generic_concept(n.label) for n in layer.neurons) / len(layer.neurons),
            "ground_truth_r": sum(truths) / len(truths) if truths else float("nan"),
            "n_ground_truth": len(truths),
        }
    return rows


def classifier_accuracy(result: DissectionResult, imagenet_dir: Path) -> tuple[float, float]:
    """Return top-1 and top-5 (%) of the classifier's labels over the classes present in the probe set."""
    with open(imagenet_dir / "labels.csv", newline="") as handle:
        present = sorted({int(row["class_index"]) for row in csv.DictReader(handle)})
    names = imagenet_class_names()
    neurons = result.layer("classifier").neurons
    top1 = sum(neurons[k].label == names[k] for k in present) / len(present) * 100
    top5 = (
        sum(names[k] in [neurons[k].label, *(alt.concept for alt in neurons[k].runners_up)] for k in present)
        / len(present)
        * 100
    )
    return top1, top5


def print_table(title: str, runs: dict[str, dict[str, dict[str, float]]]) -> None:
    """Print one line per layer with the mean r of each run."""
    print(f"\n{title}")
    header = f"{'layer':<12}" + "".join(f"{name:>24}" for name in runs)
    print(header)
    for layer in LAYERS:
        cells = []
        for rows in runs.values():
            row = rows[layer]
            cells.append(f"r {row['r']:.3f} / {row['explanation_r']:.3f}  rel {row['reliable']:.2f}")
        print(f"{layer:<12}" + "".join(f"{cell:>24}" for cell in cells))


def main() -> None:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imagenet-dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: a fresh folder (a cold run)")
    args = parser.parse_args()
    if not (args.imagenet_dir / "labels.csv").is_file():
        raise SystemExit(f"{args.imagenet_dir}/labels.csv not found; see ../shared/README.md")
    with tempfile.TemporaryDirectory() as folder:
        cache = args.cache_dir or Path(folder) / "cache"
        labels = named_labels_file(args.imagenet_dir, Path(folder))
        started = time.perf_counter()
        trained = dissect(args.imagenet_dir, labels, "DEFAULT", "20k", cache)
        cold_wall = time.perf_counter() - started
        results = {
            ("trained", "20k"): trained,
            ("trained", "20k-clean"): dissect(args.imagenet_dir, labels, "DEFAULT", "20k-clean", cache),
            ("random", "20k"): dissect(args.imagenet_dir, labels, "none@0", "20k", cache),
            ("random", "20k-clean"): dissect(args.imagenet_dir, labels, "none@0", "20k-clean", cache),
        }
        softmax = dissect(args.imagenet_dir, labels, "DEFAULT", "20k", cache, simulation="softmax")
        classes = dissect(args.imagenet_dir, labels, "DEFAULT", "imagenet", cache)
        no_evaluation = dissect(args.imagenet_dir, labels, "DEFAULT", "imagenet", cache, n_folds=0)

    rows = {f"{weights} {concepts}": layer_rows(result) for (weights, concepts), result in results.items()}
    print(f"EfficientNet-Lite0, {len(trained.image_ids)} ImageNet val images, encoder {ENCODER}, 5 folds, cosine")
    print("cells: mean explained_r (single label) / mean explanation_r (up to 5 concepts), share reliable")
    print_table("label and explanation r", rows)

    print(f"\n{'layer':<12}{'generic 20k':>14}{'generic clean':>15}{'expl/label tr':>15}{'trained/random r':>18}")
    for layer in LAYERS:
        t, tc, rnd = rows["trained 20k"][layer], rows["trained 20k-clean"][layer], rows["random 20k"][layer]
        ratio = t["explanation_r"] / t["r"] if t["r"] > 0 else float("inf")
        vs_random = t["r"] / rnd["r"] if rnd["r"] > 0 else float("inf")
        print(f"{layer:<12}{t['generic']:>14.2f}{tc['generic']:>15.2f}{ratio:>15.2f}{vs_random:>18.2f}")

    soft_rows = layer_rows(softmax)
    print(f"\n{'simulation':<12}" + "".join(f"{layer:>12}" for layer in LAYERS))
    for name, table in (("cosine", rows["trained 20k"]), ("softmax", soft_rows)):
        print(f"{name:<12}" + "".join(f"{table[layer]['r']:>12.3f}" for layer in LAYERS))

    class_rows = layer_rows(classes)["classifier"]
    top1, top5 = classifier_accuracy(classes, args.imagenet_dir)
    top1_before, top5_before = classifier_accuracy(no_evaluation, args.imagenet_dir)
    print(
        f"\nclassifier with ImageNet class names as concepts: top-1 {top1:.1f}% top-5 {top5:.1f}% "
        f"(without the evaluation: {top1_before:.1f}% / {top5_before:.1f}%); mean ground-truth r "
        f"{class_rows['ground_truth_r']:.3f} over {class_rows['n_ground_truth']} units; mean explained_r "
        f"{class_rows['r']:.3f}, share reliable {class_rows['reliable']:.2f}"
    )
    for key in (("trained", "20k"), ("random", "20k")):
        gt = layer_rows(results[key])["classifier"]
        print(
            f"{' '.join(key)}: classifier ground-truth r {gt['ground_truth_r']:.3f} over {gt['n_ground_truth']} units"
        )

    timings = trained.record.facts.timings_s
    print(f"\ncold run (trained, 20k) stages: {timings}; wall {cold_wall:.1f} s")
    similarity = timings.get("similarity", 0.0)
    evaluation = timings.get("evaluation", 0.0)
    total = sum(timings.values())
    growth = evaluation / (total - evaluation) * 100
    print(
        f"evaluation {evaluation:.1f} s = {evaluation / similarity:.2f}x the similarity stage ({similarity:.1f} s); "
        f"the cold run's total {total:.1f} s would be {total - evaluation:.1f} s without it (+{growth:.1f}%)"
    )


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
