"""What a perfect detector of a concept scores: the ceiling of a label's out-of-fold r on these probe images.

A label's `explained_r` correlates the neuron with its concept's simulated presence (the concept's cosine, or its
softmax) on held-out images. A neuron that fires exactly on the images showing the concept (its IDEAL DETECTOR: 1
on those images, 0 elsewhere) does not reach r 1: the encoder's cosine rates related images too, and a concept
shown by a handful of the probe images is a sparse signal a linear simulation predicts poorly. Its r, cross-fitted
with the same folds and simulation as the labels, is the ceiling a neuron of that concept can reach here; a
label's r is then judged against it (`dissect_core.evaluation.verdict`). Roughly, r / ceiling is the neuron's own
correlation with the concept's presence, seen through the encoder.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dissect_core.evaluation.correlation import pooled_within_fold_r
from dissect_core.evaluation.linear_fits import single_concept_fits
from dissect_core.evaluation.signals import ConceptSignals


def detector_ceilings(
    signals: ConceptSignals, detectors: Tensor, concepts: Tensor, folds: Tensor, n_folds: int
) -> Tensor:
    """Return float32 [U]: the out-of-fold r of each concept's simulation against its ideal detector.

    `detectors` [N, U] is 1 on the images that show concept `concepts[u]` (long [U]) and 0 elsewhere. Each fold's
    simulation is fitted on the other folds, as a label's is (`cross_fit_labels`), with the concept fixed. A
    detector that does not vary (no image, or every image) scores 0.
    """
    targets = detectors.float()
    predictions = torch.empty(targets.shape)
    for fold in range(n_folds):
        train = (folds != fold).nonzero().squeeze(1)
        held = (folds == fold).nonzero().squeeze(1)
        predictions[held] = single_concept_fits(signals, targets, train, concepts).predict(signals, held)
    return pooled_within_fold_r(predictions, targets, folds, n_folds)
