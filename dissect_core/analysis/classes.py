"""What drives a classifier's classes: per-class unit contributions and single predictions.

A contribution is the classifier weight W[c, j] times feature j as the classifier receives it (after pooling,
activation and dropout): the logit of class c is the sum of its contributions plus the bias.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dissect_core.errors import DissectError
from dissect_core.topk import stable_topk

#: How many classes a prediction lists.
TOP_PREDICTIONS = 5


def _check_features(weight: Tensor, features: Tensor) -> None:
    """Raise unless `features`' last dimension is the classifier's input width."""
    if weight.dim() != 2 or features.shape[-1] != weight.shape[1]:
        raise DissectError(
            f"classifier weight {tuple(weight.shape)} does not take features {tuple(features.shape)}; pass the "
            "[C, D] weight and the features the classifier receives, D wide"
        )


def class_contributions(weight: Tensor, inputs: Tensor, predicted: Tensor) -> Tensor:
    """Return [C, D]: W[c, j] × the mean of feature j over the images predicted as c (zero rows for classes no
    image is predicted as). `weight` [C, D], `inputs` [N, D] the classifier's inputs, `predicted` [N] classes."""
    _check_features(weight, inputs)
    if predicted.shape != (inputs.shape[0],):
        raise DissectError(
            f"{tuple(predicted.shape)} predictions for {inputs.shape[0]} images; pass one predicted class per image"
        )
    n_classes = weight.shape[0]
    sums = torch.zeros(n_classes, inputs.shape[1], dtype=torch.float64)
    sums.index_add_(0, predicted.long(), inputs.double())
    counts = torch.bincount(predicted.long(), minlength=n_classes).clamp(min=1).unsqueeze(1)
    return (weight.double() * sums / counts).float()


def image_contributions(weight: Tensor, features: Tensor) -> Tensor:
    """Return [C, D]: W[c, j] × feature j of one image (`features` [D], the classifier's input on it)."""
    _check_features(weight, features)
    if features.dim() != 1:
        raise DissectError(f"one image's features must be [D], got {tuple(features.shape)}; pass one row")
    return weight.float() * features.float().unsqueeze(0)


def positive_shares(contributions: Tensor) -> Tensor:
    """Return each contribution's share of the summed positive contributions of its row (0 where none is positive)."""
    positive = contributions.clamp(min=0).sum(dim=-1, keepdim=True)
    return torch.where(positive > 0, contributions / positive.clamp(min=torch.finfo(contributions.dtype).tiny), 0.0)


def top_predictions(logits: Tensor, k: int = TOP_PREDICTIONS) -> tuple[Tensor, Tensor]:
    """Return each image's k most probable (class indices, softmax probabilities) [N, k] (or [k] for one image's
    logits [C]), most probable first, the lower class index on ties."""
    single = logits.dim() == 1
    rows = logits.unsqueeze(0) if single else logits
    probabilities = torch.softmax(rows.float(), dim=1)
    values, classes = stable_topk(probabilities, min(k, rows.shape[1]))
    return (classes[0], values[0]) if single else (classes, values)
