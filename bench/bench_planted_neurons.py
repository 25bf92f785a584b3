"""Planted-neuron benchmark (MAIA's synthetic neurons): do the labels, explanations and verdicts find what we planted?

Neurons are built from the 1,300 labelled ImageNet validation images of `../shared/data/imagenet-val-1300` and
dissected like any layer, through the library's scoring and evaluation, over the 20k vocabulary and the offline
ConSE encoder (EfficientNet-Lite2 + MiniLM):
- single concept: the images of one class whose name is a word of the vocabulary (`monarch`, `castle`; classes
  with at least 3 images), or of a group of sibling classes named by a vocabulary word (`dog` = the 118 dog
  breeds, `snake`, `bird`, `butterfly`, ...: the ranges of ImageNet's class order that share a WordNet parent);
- A OR B: the images of either of two single concepts (seeded pairs);
- A AND B: ImageNet has one label per image, so AND is built from the encoder: the images in the top 10% of both
  concepts' cosines, for pairs of vocabulary words whose top-10% sets overlap on 10 to 60 images without one
  containing most of the other. This plants what the encoder sees, so it tests the scoring, not the encoder;
- pure noise.
A planted neuron's activation is 1 on its images and 0 elsewhere, plus Gaussian noise at each noise level. The
level is relative to the planted signal by default: noise of sd level × the 0/1 signal's own sd (sqrt(p(1 - p)) for
a share p of the images), so level 1 means as much noise as signal whether the concept holds 5 images or 150, and
level 0 is the noise-free neuron; `--absolute-noise` plants noise of a fixed sd instead (levels 0.1, 0.3, 0.6, 1.0,
which swamp a class of 5 of 1,300 images, sd 0.062). Pure-noise units are noise of sd 1. All units form one layer
(one Benjamini–Hochberg family, one null).

Per similarity function: how often the label is a planted concept; for the explanation (fitted once, whatever the
similarity): how often a planted concept is among its terms and how often all are; and for the verdict: the
share of planted units at the top grade (recall; a planted unit counts only when its label is a planted concept),
the share of top-graded units that are planted with a planted label (precision), and the pure-noise units at the
top grade (must be 0). The label's coverage comes from the probe labels when the concept names a class (so a
class of fewer than MIN_LABELLED images can never be judged), else from the encoder; its ceiling (the r a perfect
detector of the concept reaches) from the same folds and simulation, as in a run.

Run: .venv/bin/python -m bench.bench_planted_neurons [--cache-dir /tmp/neuron-atlas-bench-24] [--absolute-noise]
     [--similarities soft_wpmi,wpmi]
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from bench.imagenet_probe import DEFAULT_CACHE, ProbeEmbeddings, probe_embeddings
from dissect_core.analysis.coverage import Coverage, concept_key, vocabulary_spreads
from dissect_core.evaluation.evaluate import EvaluationSettings, evaluate_layer
from dissect_core.evaluation.folds import fold_of_images
from dissect_core.evaluation.grading import label_coverages
from dissect_core.evaluation.signals import ConceptSignals
from dissect_core.evaluation.verdict import (
    DEFAULT_MIN_STABILITY,
    VERDICTS,
    Verdict,
    VerdictRules,
    grade_label,
)
from dissect_core.labels import label_neurons
from dissect_core.names import DEFAULT_SIMULATION
from dissect_core.results import NeuronEvaluation
from dissect_core.similarity.cosine import CosineSource, DenseCosine, FactoredCosine
from dissect_core.similarity.functions import CONCEPT_SEARCH_DEFAULTS, get_similarity, resolve_similarity_params
from dissect_core.similarity.row_summaries import image_row_summaries

SIMILARITIES = ("soft_wpmi", "wpmi", "cos_similarity", "cos_similarity_cubed", "rank_reorder")
#: Noise sd as a multiple of the planted 0/1 signal's own sd (default), or as a fixed sd (`--absolute-noise`).
RELATIVE_NOISE_LEVELS = (0.0, 0.5, 1.0, 2.0)
ABSOLUTE_NOISE_LEVELS = (0.1, 0.3, 0.6, 1.0)
N_NOISE_UNITS = 80
N_OR, N_AND = 18, 20
MIN_CLASS_IMAGES = 3
#: Groups of sibling classes, by ranges of ImageNet's class order (one WordNet parent each), named by a 20k word.
CLASS_GROUPS: dict[str, tuple[int, ...]] = {
    "dog": tuple(range(151, 269)),
    "bird": (*range(7, 25), *range(80, 101), *range(127, 147)),
    "snake": tuple(range(52, 69)),
    "lizard": tuple(range(38, 49)),
    "turtle": tuple(range(33, 38)),
    "spider": tuple(range(72, 78)),
    "wolf": tuple(range(269, 273)),
    "cat": tuple(range(281, 286)),
    "bear": tuple(range(294, 298)),
    "beetle": tuple(range(300, 308)),
    "butterfly": tuple(range(321, 327)),
    "monkey": tuple(range(369, 383)),
    "car": (436, 468, 511, 609, 627, 656, 717, 751, 817),
    "boat": (472, 484, 510, 554, 576, 625, 628, 724, 780, 814, 833, 871, 914),
    "fruit": tuple(range(948, 958)),
    "mushroom": (947, *range(991, 998)),
}
#: Candidate words for the AND neurons: the groups' names and a few scene words.
AND_WORDS = (*CLASS_GROUPS, "water", "snow", "grass", "road", "tree", "food", "sea", "building", "toy", "tool")
AND_TOP_SHARE = 0.10


@dataclass(frozen=True)
class PlantedUnit:
    """One synthetic neuron: its kind, the concepts planted in it (vocabulary words) and its noise level."""

    kind: str  # "single", "or", "and" or "noise"
    concepts: tuple[str, ...]
    level: float  # relative or absolute, as planted (`planted_layer`); 1.0 for pure noise


def single_concepts(probe: ProbeEmbeddings) -> dict[str, Tensor]:
    """Return each single planted concept's images (bool [N]): named classes with enough images, and groups."""
    vocabulary = set(probe.concepts)
    concepts: dict[str, Tensor] = {}
    counts = torch.bincount(probe.image_classes, minlength=len(probe.class_labels))
    for index, label in enumerate(probe.class_labels):
        name = label.split(",")[0].strip()
        if name in vocabulary and counts[index] >= MIN_CLASS_IMAGES:
            concepts[name] = probe.image_classes == index
    for name, classes in CLASS_GROUPS.items():
        members = torch.isin(probe.image_classes, torch.tensor(classes))
        if name in vocabulary and bool(members.any()):
            concepts[name] = members
    return concepts


def and_concepts(probe: ProbeEmbeddings, cosine: Tensor, n_pairs: int) -> dict[tuple[str, str], Tensor]:
    """Return seeded AND pairs of AND_WORDS and their images: in the top AND_TOP_SHARE of both words' cosines."""
    position = {concept: index for index, concept in enumerate(probe.concepts)}
    words = [word for word in AND_WORDS if word in position]
    top = max(1, round(AND_TOP_SHARE * cosine.shape[0]))
    sets = {}
    for word in words:
        column = cosine[:, position[word]]
        members = torch.zeros(cosine.shape[0], dtype=torch.bool)
        members[torch.argsort(column, descending=True, stable=True)[:top]] = True
        sets[word] = members
    pairs = []
    for i, first in enumerate(words):
        for second in words[i + 1 :]:
            both = int((sets[first] & sets[second]).sum())
            if 10 <= both <= 60 and both <= 0.5 * top:
                pairs.append((first, second))
    random.Random(0).shuffle(pairs)
    return {pair: sets[pair[0]] & sets[pair[1]] for pair in pairs[:n_pairs]}


def planted_layer(
    probe: ProbeEmbeddings, cosine: Tensor, levels: tuple[float, ...], relative: bool
) -> tuple[Tensor, list[PlantedUnit]]:
    """Return the planted layer's activations [N, K] and what each unit holds (seeded); noise of sd level × the
    0/1 signal's sd when `relative`, else of sd level."""
    singles = single_concepts(probe)
    names = sorted(singles)
    shuffled = names[:]
    random.Random(1).shuffle(shuffled)
    or_pairs = [(shuffled[i], shuffled[-1 - i]) for i in range(min(N_OR, len(shuffled) // 2))]
    ands = and_concepts(probe, cosine, N_AND)
    signals: list[tuple[str, tuple[str, ...], Tensor]] = [("single", (name,), singles[name]) for name in names]
    signals += [("or", pair, singles[pair[0]] | singles[pair[1]]) for pair in or_pairs]
    signals += [("and", pair, members) for pair, members in ands.items()]
    generator = torch.Generator().manual_seed(0)
    n_images = cosine.shape[0]
    columns, units = [], []
    for level in levels:
        for kind, concepts, members in signals:
            signal = members.float()
            sd = level * float(signal.std(correction=0)) if relative else level
            columns.append(signal + sd * torch.randn(n_images, generator=generator))
            units.append(PlantedUnit(kind, concepts, level))
    for _ in range(N_NOISE_UNITS):
        columns.append(torch.randn(n_images, generator=generator))
        units.append(PlantedUnit("noise", (), 1.0))
    return torch.stack(columns, dim=1), units


def noise_levels(units: list[PlantedUnit]) -> list[float]:
    """Return the planted units' noise levels, lowest first."""
    return sorted({unit.level for unit in units if unit.kind != "noise"})


def is_planted(concept: str, unit: PlantedUnit) -> bool:
    """Return whether a concept names one of the unit's planted concepts (compared lemmatised, case-folded)."""
    return concept_key(concept) in {concept_key(planted) for planted in unit.concepts}


@dataclass(frozen=True)
class Scored:
    """One similarity function's labels, evaluations and grades for the planted layer."""

    labels: list[str]
    evaluations: list[NeuronEvaluation]
    grades: list[Verdict]
    coverages: list[Coverage]
    seconds: float


def score_layer(
    similarity: str,
    probe: ProbeEmbeddings,
    cosine: CosineSource,
    signals: ConceptSignals,
    activations: Tensor,
    coverage_inputs: tuple[Tensor, Tensor],
) -> Scored:
    """Return the labels, out-of-fold evaluations and verdicts of the layer under one similarity function."""
    start = time.perf_counter()
    n_images = activations.shape[0]
    params = resolve_similarity_params(similarity, {}, n_images)
    function = get_similarity(similarity)

    def score_fn(subset: CosineSource, acts: Tensor) -> Tensor:
        return function(subset, acts, **params)

    neurons = label_neurons(score_fn(cosine, activations), probe.concepts)
    position = {concept: index for index, concept in enumerate(probe.concepts)}
    label_index = torch.tensor([position[n.label] for n in neurons])
    folds = fold_of_images(probe.image_ids, labels=probe.image_labels())
    evaluations, _ = evaluate_layer(
        score_fn, cosine, signals, activations, label_index, folds, probe.concepts, EvaluationSettings(),
        probe.image_labels(),
    )  # fmt: skip
    carry_cosines, reference = coverage_inputs
    labels = {n.label for n in neurons}
    coverages = label_coverages(
        cosine, carry_cosines, reference, probe.concepts, labels, probe.image_labels(), signals=signals, folds=folds
    )
    grades = [
        grade_label(evaluation, coverages[neuron.label], concept=neuron.label).verdict
        for neuron, evaluation in zip(neurons, evaluations, strict=True)
    ]
    unit_coverages = [coverages[n.label] for n in neurons]
    return Scored([n.label for n in neurons], evaluations, grades, unit_coverages, time.perf_counter() - start)


def share(hits: int, total: int) -> str:
    """Return `hits/total` as a percentage cell."""
    return f"{100 * hits / total:5.1f}" if total else "   - "


def print_label_table(units: list[PlantedUnit], scored: dict[str, Scored]) -> None:
    """Print, per similarity function, kind and noise level, the % of units whose label is a planted concept."""
    kinds = ("single", "or", "and")
    levels = noise_levels(units)
    header = f"{'similarity':<22}" + "".join(f"{kind + ' ' + str(s):>12}" for kind in kinds for s in levels)
    print("\nlabel is a planted concept (% of units), by kind and noise level")
    print(header + f"{'all':>8}{'s':>7}")
    for name, result in scored.items():
        cells, hits_all, total_all = [], 0, 0
        for kind in kinds:
            for level in levels:
                members = [i for i, u in enumerate(units) if u.kind == kind and u.level == level]
                hits = sum(is_planted(result.labels[i], units[i]) for i in members)
                hits_all, total_all = hits_all + hits, total_all + len(members)
                cells.append(f"{share(hits, len(members)):>12}")
        print(f"{name:<22}" + "".join(cells) + f"{share(hits_all, total_all):>8}{result.seconds:>7.0f}")


def print_explanation_table(units: list[PlantedUnit], evaluations: list[NeuronEvaluation]) -> None:
    """Print, per kind and noise level, the % of explanations holding any / all planted concepts, and terms."""
    print("\nexplanation (fitted on all images, the same for every similarity): % holding a planted concept / all")
    print(f"{'kind':<8}{'noise':>6}{'units':>7}{'any %':>8}{'all %':>8}{'terms':>7}")
    for kind in ("single", "or", "and"):
        for level in noise_levels(units):
            members = [i for i, u in enumerate(units) if u.kind == kind and u.level == level]
            terms = [[t.concept for t in evaluations[i].explanation] for i in members]
            anyone = sum(any(is_planted(t, units[i]) for t in ts) for i, ts in zip(members, terms, strict=True))
            every = sum(
                all(any(is_planted(t, PlantedUnit(kind, (c,), level)) for t in ts) for c in units[i].concepts)
                for i, ts in zip(members, terms, strict=True)
            )
            mean_terms = sum(len(ts) for ts in terms) / max(1, len(terms))
            print(
                f"{kind:<8}{level:>6}{len(members):>7}{share(anyone, len(members)):>8}"
                f"{share(every, len(members)):>8}{mean_terms:>7.1f}"
            )
    noise = [i for i, u in enumerate(units) if u.kind == "noise"]
    print(f"noise units: mean terms {sum(len(evaluations[i].explanation) for i in noise) / len(noise):.2f}")


def print_verdict_table(units: list[PlantedUnit], scored: dict[str, Scored]) -> None:
    """Print each similarity function's verdict precision and recall, per noise level, and noise at the top."""
    top = VERDICTS[0]
    print(f"\nverdict: recall = planted units graded '{top}' with a planted label; precision = such units among all")
    print(f"'{top}'; before = today's `reliable` (significant after FDR, r > 0) in place of the grade")
    levels = noise_levels(units)
    header = f"{'similarity':<22}{'grade':<8}" + "".join(f"{'rec ' + str(s):>12}" for s in levels)
    print(header + f"{'recall':>8}{'precision':>11}{'noise top':>11}")
    planted = [i for i, u in enumerate(units) if u.kind != "noise"]
    noise = [i for i, u in enumerate(units) if u.kind == "noise"]
    for name, result in scored.items():
        for rule in ("before", "after"):
            top_graded = [
                (e.significant and e.explained_r > 0) if rule == "before" else g == top
                for e, g in zip(result.evaluations, result.grades, strict=True)
            ]
            correct = [top_graded[i] and is_planted(result.labels[i], units[i]) for i in range(len(units))]
            cells = []
            for level in levels:
                members = [i for i in planted if units[i].level == level]
                cells.append(f"{share(sum(correct[i] for i in members), len(members)):>12}")
            n_top = sum(top_graded)
            recall = share(sum(correct[i] for i in planted), len(planted))
            precision = share(sum(correct), n_top)
            n_noise = sum(top_graded[i] for i in noise)
            print(f"{name:<22}{rule:<8}" + "".join(cells) + f"{recall:>8}{precision:>11}{n_noise:>8}/{len(noise)}")


def print_grade_shares(units: list[PlantedUnit], scored: dict[str, Scored]) -> None:
    """Print the share of each grade per kind under soft-WPMI, the default similarity."""
    result = scored["soft_wpmi"]
    print("\nsoft_wpmi: share of each grade by kind (%)")
    print(f"{'kind':<8}{'units':>7}" + "".join(f"{grade:>10}" for grade in VERDICTS))
    by_kind: dict[str, list[Verdict]] = defaultdict(list)
    for unit, grade in zip(units, result.grades, strict=True):
        by_kind[unit.kind].append(grade)
    for kind, grades in by_kind.items():
        print(f"{kind:<8}{len(grades):>7}" + "".join(f"{share(grades.count(g), len(grades)):>10}" for g in VERDICTS))


def print_blockers(units: list[PlantedUnit], result: Scored) -> None:
    """Print, per noise level, what keeps significant planted units with a planted label from the top grade."""
    print("\nsoft_wpmi: planted units with a planted label, significant: how many fail each top-grade rule")
    print(
        f"{'noise':>5}{'units':>7}{'top':>6}{'r < floor':>11}{'unstable':>10}{'uncovered':>11}{'median r':>10}"
        f"{'ceiling':>9}"
    )
    rules = VerdictRules()
    for level in noise_levels(units):
        members = [
            i
            for i, u in enumerate(units)
            if u.kind != "noise" and u.level == level and is_planted(result.labels[i], u)
            and result.evaluations[i].significant
        ]  # fmt: skip
        evaluations = [result.evaluations[i] for i in members]
        low = sum(result.evaluations[i].explained_r < rules.floor(result.coverages[i].ceiling_r) for i in members)
        unstable = sum(e.stability + 1e-9 < DEFAULT_MIN_STABILITY for e in evaluations)
        uncovered = sum(not result.coverages[i].judgeable for i in members)
        top = sum(result.grades[i] == VERDICTS[0] for i in members)
        rs = sorted(e.explained_r for e in evaluations)
        median = f"{rs[len(rs) // 2]:.3f}" if rs else "-"
        ceilings = sorted(c for i in members if (c := result.coverages[i].ceiling_r) is not None)
        ceiling = f"{ceilings[len(ceilings) // 2]:.3f}" if ceilings else "-"
        print(f"{level:>5}{len(members):>7}{top:>6}{low:>11}{unstable:>10}{uncovered:>11}{median:>10}{ceiling:>9}")


def print_noise_free(units: list[PlantedUnit], result: Scored, singles: dict[str, Tensor], folds: Tensor) -> None:
    """Print how many noise-free single-concept units with a planted, judgeable label reach the top grade, and why
    each other one does not, with the fewest of its images any fold's training images hold."""
    lowest = noise_levels(units)[0]
    members = [
        i
        for i, u in enumerate(units)
        if u.kind == "single" and u.level == lowest and is_planted(result.labels[i], u)
        and result.coverages[i].judgeable
    ]  # fmt: skip
    top = [i for i in members if result.grades[i] == VERDICTS[0]]
    print(
        f"\nsoft_wpmi: single-concept units at noise {lowest} whose label is the planted, judgeable concept: "
        f"{len(top)} of {len(members)} at the top grade; the others:"
    )
    header = f"{'concept':<14}{'label':<14}{'images':>7}{'fewest in training':>20}{'r':>7}{'ceiling':>9}"
    print(header + f"{'folds':>7}  grade")
    for i in members:
        if i in top:
            continue
        images = singles[units[i].concepts[0]]
        fewest = int(images.sum()) - int(torch.bincount(folds[images], minlength=int(folds.max()) + 1).max())
        evaluation, ceiling = result.evaluations[i], result.coverages[i].ceiling_r
        print(
            f"{units[i].concepts[0]:<14}{result.labels[i]:<14}{int(images.sum()):>7}{fewest:>20}"
            f"{evaluation.explained_r:>7.3f}{ceiling if ceiling is not None else math.nan:>9.3f}"
            f"{evaluation.stability:>7.1f}  {result.grades[i]}"
        )


def main() -> None:
    """Build the planted layer, dissect it under each similarity function and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--similarities", default=",".join(SIMILARITIES))
    parser.add_argument(
        "--absolute-noise",
        action="store_true",
        help=f"noise of a fixed sd {ABSOLUTE_NOISE_LEVELS} instead of levels {RELATIVE_NOISE_LEVELS} x the signal's sd",
    )
    args = parser.parse_args()
    levels = ABSOLUTE_NOISE_LEVELS if args.absolute_noise else RELATIVE_NOISE_LEVELS
    probe = probe_embeddings(args.cache_dir)
    dense = DenseCosine(FactoredCosine(probe.image_embeddings, probe.text_embeddings).dense())
    activations, units = planted_layer(probe, dense.matrix, levels, relative=not args.absolute_noise)
    counts: dict[str, int] = defaultdict(int)
    for unit in units:
        counts[unit.kind] += 1
    print(
        f"{activations.shape[1]} planted units on {activations.shape[0]} ImageNet val images "
        f"({', '.join(f'{n} {kind}' for kind, n in counts.items())}; noise "
        f"{'sd' if args.absolute_noise else 'level x signal sd'} {levels}), "
        f"{len(probe.concepts)} concepts, 5 folds"
    )
    a = CONCEPT_SEARCH_DEFAULTS["a"]  # as the pipeline: the simulation reads cosines, `a` only the normalisers
    log_normalisers, carry_cosines = image_row_summaries(dense, a)
    signals = ConceptSignals(dense, DEFAULT_SIMULATION, a, log_normalisers)
    reference = vocabulary_spreads(dense, carry_cosines)
    scored = {
        name: score_layer(name, probe, dense, signals, activations, (carry_cosines, reference))
        for name in args.similarities.split(",")
    }
    print_label_table(units, scored)
    print_explanation_table(units, next(iter(scored.values())).evaluations)
    print_verdict_table(units, scored)
    if "soft_wpmi" in scored:
        print_grade_shares(units, scored)
        print_blockers(units, scored["soft_wpmi"])
        folds = fold_of_images(probe.image_ids, labels=probe.image_labels())
        print_noise_free(units, scored["soft_wpmi"], single_concepts(probe), folds)


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
