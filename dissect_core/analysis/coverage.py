"""How well a probe set covers a concept, and what to blame when it does not: the probe set or the encoder.

Two sources count the images that carry a concept. When the probe set has class labels and the concept names one
of its classes (a class's name or a synonym, case-insensitive, lemmatised), the labels count them. Otherwise the
encoder does: an image carries the concept when its cosine reaches the image's CARRY_RANK-th highest cosine over
the run's vocabulary (`dissect_core.analysis.concept_evidence.carrying`).

An encoder count of almost nothing has two causes that call for different fixes. The probe set may hold few images
of the concept (add some), or the encoder may not recognise it at all (ConSE knows only its classifier's classes,
so `purple` is carried by no image among many purple flowers): then no probe set would help. An encoder that can
say which concepts it places answers directly (ConSE: a concept near none of its class prompts, `recognises`).
For the others the two are told apart by the concept's SPREAD over the probe images, the mean cosine of its top
images above its median cosine. A concept the encoder recognises stands out on some images even where they are few
(a horse for `zebra`); one it cannot see is rated about the same on every image. The spread is compared with the
spreads of the vocabulary's concepts that some probe image carries (concepts the encoder demonstrably places): below
BLIND_SHARE of their median, the encoder is blind to it. (On ConSE the spread does not separate the two: on the
demo's 332 photos random letter strings spread 0.44-0.62 of the median, ImageNet class words absent from the photos
0.55-1.29, so ConSE's own answer is used there.)

Labels count a class exactly (every image of it the probe set holds), so fewer of them judge a neuron than the
encoder's count, which misses and misplaces images: MIN_LABELLED against MIN_CARRYING. Significance is asked of
the label separately (`dissect_core.evaluation.verdict`), so a class of 3 images is judged only when a neuron's
out-of-fold r on them is also significant.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from dissect_core.data.vocabulary import lemma
from dissect_core.evaluation.verdict import CoverageSource
from dissect_core.similarity.cosine import CosineSource, as_cosine_source

#: Fewer carrying images than this, counted by the encoder, and a neuron cannot be judged on the concept.
MIN_CARRYING = 5
#: Fewer labelled images than this, and a neuron cannot be judged on the class: folds are stratified by class when
#: the probe set has labels (`fold_of_images`), so with 3 every fold's training images hold 2 of the class's (with 1
#: no fold can fit it). Measured (bench/bench_verdicts.py, 2026-12-07, class-stratified folds): no random layer
#: passes 0.8% at the top grade at any count from 1 to 5, and the trained EfficientNet-Lite0 classifier has 10.9%
#: at 3 against 8.0% at 5.
MIN_LABELLED = 3
#: The share of a concept's probe images, highest cosine first, whose mean cosine its spread compares with the median.
SPREAD_TOP_SHARE = 0.05
#: A concept spreading less than this share of the carried vocabulary concepts' median spread is one the encoder
#: cannot see: a concept the probe set lacks still stands out on related images (provisional; calibrate on ConSE).
BLIND_SHARE = 0.25
#: Fewer carried vocabulary concepts than this, and the reference is every vocabulary concept instead.
MIN_REFERENCE = 10


@dataclass(frozen=True)
class Coverage:
    """How many probe images carry a concept, counted by `source`; whether a neuron can be judged on it and why.

    `judgeable`: at least MIN_LABELLED labelled (or MIN_CARRYING encoder-counted) images carry it and the encoder
    recognises it; `encoder_blind`: the encoder rates every probe image about the same on it, so its count says
    nothing about the probe set; `note`: one sentence for people saying which; `ceiling_r`: the out-of-fold r a
    perfect detector of the concept (firing on exactly its carrying images) reaches on these images
    (`dissect_core.evaluation.ceiling`; None where the run was not evaluated).
    """

    n_carrying: int
    source: CoverageSource
    judgeable: bool
    encoder_blind: bool
    note: str
    ceiling_r: float | None = None


def concept_key(name: str) -> str:
    """Return a concept or class name as compared: lower case, `_`/`-` as spaces, each word lemmatised."""
    words = re.sub(r"[_\-]+", " ", name.casefold()).split()
    return " ".join(lemma(word) for word in words)


def class_synonyms(label: str) -> frozenset[str]:
    """Return the compared forms of a class label's names: `tabby, tabby cat` -> {tabby, tabby cat}."""
    return frozenset(key for key in (concept_key(part) for part in label.split(",")) if key)


def label_counts(concept: str, image_labels: Sequence[str | None] | None) -> int | None:
    """Return how many images are labelled with a class the concept names, or None when it names no class."""
    mask = labelled_images(concept, image_labels)
    return None if mask is None else int(mask.sum())


def labelled_images(concept: str, image_labels: Sequence[str | None] | None) -> Tensor | None:
    """Return bool [N]: which images are labelled with a class the concept names; None when it names no class."""
    if not image_labels:
        return None
    key = concept_key(concept)
    matches: dict[str, bool] = {}
    mask = torch.zeros(len(image_labels), dtype=torch.bool)
    for image, label in enumerate(image_labels):
        if label is None:
            continue
        if label not in matches:
            matches[label] = key in class_synonyms(label)
        mask[image] = matches[label]
    return mask if bool(mask.any()) else None


def spread_of(cosines: Tensor) -> Tensor:
    """Return each column's spread [C] of cosines [N, C] (or a float for [N]): top-share mean minus median."""
    values = cosines.float()
    column = values.dim() == 1
    if column:
        values = values.unsqueeze(1)
    n_images = values.shape[0]
    top = max(1, math.ceil(SPREAD_TOP_SHARE * n_images))
    highest = values.topk(top, dim=0).values.mean(dim=0)
    spread = highest - values.median(dim=0).values
    return spread[0] if column else spread


def vocabulary_spreads(cosine: Tensor | CosineSource, carry_cosines: Tensor, block: int = 2048) -> Tensor:
    """Return the sorted spreads [R] of the vocabulary's reference concepts: those some probe image carries.

    With fewer than MIN_REFERENCE carried concepts every concept is the reference. One read of the matrix's columns.
    """
    source = as_cosine_source(cosine)
    spreads = []
    carried = []
    bars = carry_cosines.float().unsqueeze(1)
    for start in range(0, source.n_concepts, block):
        columns = source.columns(start, min(start + block, source.n_concepts)).float()
        spreads.append(spread_of(columns))
        carried.append((columns >= bars).any(dim=0))
    every = torch.cat(spreads)
    placed = every[torch.cat(carried)]
    reference = placed if len(placed) >= MIN_REFERENCE else every
    return reference.sort().values


def is_encoder_blind(spread: float, reference_spreads: Tensor) -> bool:
    """Return whether a spread is below BLIND_SHARE of the reference spreads' median (never with no reference)."""
    if reference_spreads.numel() == 0:
        return False
    return spread < BLIND_SHARE * float(reference_spreads.double().median())


def concept_coverage(
    concept: str,
    *,
    n_carrying: int,
    n_images: int,
    spread: float,
    reference_spreads: Tensor | None,
    image_labels: Sequence[str | None] | None = None,
    recognised: bool | None = None,
) -> Coverage:
    """Return a concept's coverage: from the probe labels when it names a class, else from the encoder's count.

    `n_carrying` is the encoder's count of carrying images, `spread` the concept's (`spread_of`) and
    `reference_spreads` the vocabulary's (`vocabulary_spreads`; None when the run did not keep them). Whether the
    encoder is blind to it is the encoder's own answer when it has one (`recognised`, from
    `dissect_core.encoders.base.recognised_concepts`: ConSE knows which concepts its classes reach), else the spread
    rule (never with no reference spreads).
    """
    labelled = label_counts(concept, image_labels)
    if labelled is not None:
        judgeable = labelled >= MIN_LABELLED
        note = f"the probe set has {_images(labelled)} labelled '{concept}'"
        if not judgeable:
            note += ": too few to judge a neuron on it"
        return Coverage(labelled, "labels", judgeable, False, note)
    if recognised is False:
        note = (
            f"the encoder does not recognise '{concept}': none of the classes it sees images through is near it, "
            f"so its count ({n_carrying} of {n_images}) says nothing about the probe set; try another encoder"
        )
        return Coverage(n_carrying, "encoder", False, True, note)
    blind = recognised is None and reference_spreads is not None and is_encoder_blind(spread, reference_spreads)
    if blind:
        note = (
            f"the encoder does not recognise '{concept}': it rates every probe image about the same on it, "
            f"so its count ({n_carrying} of {n_images}) says nothing about the probe set; try another encoder"
        )
        return Coverage(n_carrying, "encoder", False, True, note)
    judgeable = n_carrying >= MIN_CARRYING
    note = f"the probe set has {_images(n_carrying)} of '{concept}' (by the encoder, of {n_images})"
    if not judgeable:
        note += ": too few to judge a neuron on it; add images of it to the probe set"
    return Coverage(n_carrying, "encoder", judgeable, False, note)


def _images(count: int) -> str:
    return f"{count} image{'' if count == 1 else 's'}"
