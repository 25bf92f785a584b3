"""What a label is worth: a graded verdict from its held-out evaluation and its concept's coverage, with reasons.

The grades, precisely:
- `explains`: the label's out-of-fold r is significant after the layer's Benjamini–Hochberg correction, at least
  `min_stability` of the folds chose this label on their own training images, the r reaches the effect-size floor,
  and the probe set's coverage of the concept can be judged (enough carrying images, an encoder that recognises
  it). Only this grade is `reliable`.

The effect-size floor is relative to what the concept allows on these images: r must reach `min_ceiling_share` of
the CEILING, the r a perfect detector of the concept reaches (`dissect_core.evaluation.ceiling`; a concept shown by
a handful of images, or one the encoder rates loosely, has a low ceiling), and never fall below the absolute floor
`min_r`. Without a known ceiling the floor assumes a perfect detector reaches r 1.
- `weak`: significant, but failing one of the other three rules: the neuron is predictable from the images, yet
  this label is unstable, explains little, or names a concept the probe set cannot judge.
- `no label`: not significant. A large r that is not significant is a small probe set's chance, so it is not weak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from dissect_core.names import DEFAULT_FALSE_DISCOVERY_RATE, DEFAULT_N_FOLDS

if TYPE_CHECKING:  # results.py holds a LabelVerdict per neuron
    from dissect_core.analysis.coverage import Coverage
    from dissect_core.results import NeuronEvaluation

Verdict = Literal["explains", "weak", "no label"]
#: What counted a concept's carrying images (dissect_core.analysis.coverage); here, so torch-free readers name it.
CoverageSource = Literal["labels", "encoder"]
#: The grades, best first.
VERDICTS: tuple[Verdict, ...] = ("explains", "weak", "no label")
#: The top grade's effect-size floor, relative and absolute: r must reach this share of the concept's ceiling, and
#: at least DEFAULT_MIN_EXPLAINED_R (2.25% of the variance). Chosen together on a grid (shares 0-1 by 0.1, floors
#: 0-0.3 by 0.05) on randomly initialised EfficientNet-Lite0 and ResNet-18: of the pairs keeping every random layer
#: at or below 2.5% (half the 5% target) of its labels at the top grade with the coverage rule waived, the one
#: giving the trained EfficientNet-Lite0 classifier the most (bench/bench_verdicts.py, 2026-12-07, class-stratified
#: folds: 28.9% against 16.3% for the absolute floor 0.25 alone; see the README's "What a label is worth").
DEFAULT_MIN_CEILING_SHARE = 0.6
DEFAULT_MIN_EXPLAINED_R = 0.15
#: The share of folds that must choose the label the neuron shows: 3 of 5.
DEFAULT_MIN_STABILITY = 0.6
#: Slack for shares such as 3/5 computed in floating point.
_SHARE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class VerdictRules:
    """What the top grade asks: a share of folds choosing the label, r floors (a share of the concept's ceiling and
    an absolute one), the FDR the layer was tested at."""

    min_stability: float = DEFAULT_MIN_STABILITY
    min_r: float = DEFAULT_MIN_EXPLAINED_R
    false_discovery_rate: float = DEFAULT_FALSE_DISCOVERY_RATE
    min_ceiling_share: float = DEFAULT_MIN_CEILING_SHARE

    def stable(self, stability: float | None) -> bool:
        """Return whether a share of folds choosing the label meets `min_stability` (never when unknown or NaN)."""
        return stability is not None and math.isfinite(stability) and stability + _SHARE_TOLERANCE >= self.min_stability

    def floor(self, ceiling: float | None) -> float:
        """Return the r a label of a concept with this ceiling must reach (a ceiling of 1 when unknown)."""
        return max(self.min_r, self.min_ceiling_share * (1.0 if ceiling is None else ceiling))


@dataclass(frozen=True)
class LabelVerdict:
    """A label's grade and the reasons for it, as sentences (r and variance, stability, coverage, significance)."""

    verdict: Verdict
    reasons: tuple[str, ...]

    @property
    def reliable(self) -> bool:
        """Return whether the label has the top grade (the API's `reliable`)."""
        return self.verdict == "explains"


def grade_label(
    evaluation: NeuronEvaluation,
    coverage: Coverage,
    rules: VerdictRules | None = None,
    *,
    n_folds: int = DEFAULT_N_FOLDS,
    concept: str | None = None,
) -> LabelVerdict:
    """Return the label's verdict under `rules` (see the module's docstring) and its reasons, one per rule; the
    reasons name the label's `concept` when given."""
    rules = rules or VerdictRules()
    r = evaluation.explained_r
    stable = rules.stable(evaluation.stability)
    large = math.isfinite(r) and r >= rules.floor(coverage.ceiling_r)  # NaN: an undefined correlation
    significant = evaluation.significant
    chosen = round(evaluation.stability * n_folds) if math.isfinite(evaluation.stability) else 0
    reasons = (
        _r_reason(r, coverage.ceiling_r, rules, concept),
        f"chosen by {chosen} of {n_folds} folds"
        + ("" if stable else f" (the top grade needs {_folds(rules, n_folds)})"),
        coverage.note,
        f"significant at {rules.false_discovery_rate:.0%} FDR"
        if significant
        else f"not significant at {rules.false_discovery_rate:.0%} FDR (p {evaluation.p_value:.2g})",
    )
    if not significant:
        return LabelVerdict("no label", reasons)
    if stable and large and coverage.judgeable:
        return LabelVerdict("explains", reasons)
    return LabelVerdict("weak", reasons)


#: Why a weak label misses the top grade, as a layer counts them from stored columns: its folds did not choose it,
#: its concept's coverage cannot be judged, or neither (then only the effect-size floor stands in its way).
WeakCause = Literal["unstable", "uncovered", "floor only"]
WEAK_CAUSES: tuple[WeakCause, ...] = ("uncovered", "unstable", "floor only")


def weak_causes(stability: float | None, judgeable: bool | None, rules: VerdictRules | None = None) -> set[WeakCause]:
    """Return which top-grade rules a weak label misses, from its stored stability and coverage: "unstable",
    "uncovered", both, or "floor only" when it misses neither (a weak label misses at least one rule)."""
    rules = rules or VerdictRules()
    causes: set[WeakCause] = set()
    if not rules.stable(stability):
        causes.add("unstable")
    if not judgeable:
        causes.add("uncovered")
    return causes or {"floor only"}


def _r_reason(r: float, ceiling: float | None, rules: VerdictRules, concept: str | None) -> str:
    """Return the effect size in words, against the concept's ceiling when known, and which floor it misses."""
    detector = "a perfect detector of " + ("the concept" if concept is None else f"'{concept}'")
    if not math.isfinite(r):
        return "r is undefined (the neuron or its label's signal does not vary)"
    variance = f"{100 * max(r, 0.0) ** 2:.1f}% of the variance"
    if ceiling is None or ceiling <= 0:
        text = f"r {r:.2f} explains {variance}"
        if ceiling is not None:
            text += f"; {detector} reaches r {ceiling:.2f} on these images"
    else:
        text = f"r {r:.2f} ({variance}) is {r / ceiling:.0%} of the {ceiling:.2f} {detector} reaches on these images"
    if r < rules.min_r:
        return f"{text}, below the floor r {rules.min_r:.2f}"
    if r < rules.floor(ceiling):
        if ceiling is None:
            return f"{text}, below the floor r {rules.floor(ceiling):.2f} (no perfect detector's r is known)"
        return f"{text}, below the {rules.min_ceiling_share:.0%} the top grade needs"
    return text


def _folds(rules: VerdictRules, n_folds: int) -> str:
    needed = math.ceil(rules.min_stability * n_folds - _SHARE_TOLERANCE)
    return f"{needed} of {n_folds}"
