"""Evaluation-stage benchmark: the out-of-fold scoring's time beside the similarity stage's, by component.

Synthetic inputs of the trust benchmark's shape (1,300 images, 20,000 concepts, random 384-d embeddings,
layers of 32, 80, 192, 1,280 and 1,000 ReLU neurons, soft-WPMI at top_k 5), so it runs in a minute without
../shared: the similarity stage once per layer, then `evaluate_layer` with each component timed.

Run: .venv/bin/python -m bench.bench_evaluation
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

import dissect_core.evaluation.evaluate as evaluate
from dissect_core.evaluation.folds import fold_of_images
from dissect_core.evaluation.signals import ConceptSignals
from dissect_core.similarity.cosine import CosineSource, DenseCosine, FactoredCosine
from dissect_core.similarity.functions import image_log_normalisers, soft_wpmi

LAYER_SIZES = (32, 80, 192, 1280, 1000)
N_IMAGES, N_CONCEPTS, DIM = 1300, 20_000, 384


def main() -> None:
    """Print the similarity stage's time, the evaluation's, and the evaluation's components."""
    seconds: dict[str, float] = defaultdict(float)

    def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            result = function(*args, **kwargs)
            seconds[name] += time.perf_counter() - start
            return result

        return wrapper

    for name in ("top_correlated_concepts", "sparse_nonnegative_fits", "single_concept_fits"):
        setattr(evaluate, name, timed(name, getattr(evaluate, name)))
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(N_IMAGES, DIM, generator=generator)
    texts = torch.randn(N_CONCEPTS, DIM, generator=generator)
    cosine = DenseCosine(FactoredCosine(images, texts).dense())
    folds = fold_of_images([f"{i:064x}" for i in range(N_IMAGES)])
    signals = ConceptSignals(cosine, "cosine", 10.0, image_log_normalisers(cosine, 10.0))

    def score_fn(subset: CosineSource, activations: Tensor) -> Tensor:
        return timed("soft-WPMI on training folds (labels and null)", soft_wpmi)(subset, activations, top_k=5)

    soft_wpmi(cosine, torch.rand(N_IMAGES, 8), top_k=5)  # compile the kernel first
    similarity = evaluation = 0.0
    concepts = [str(i) for i in range(N_CONCEPTS)]
    for n_neurons in LAYER_SIZES:
        activations = torch.relu(torch.randn(N_IMAGES, n_neurons, generator=generator))
        start = time.perf_counter()
        labels = soft_wpmi(cosine, activations, top_k=5).argmax(dim=1)
        similarity += time.perf_counter() - start
        start = time.perf_counter()
        evaluate.evaluate_layer(score_fn, cosine, signals, activations, labels, folds, concepts)
        evaluation += time.perf_counter() - start
    print(f"{sum(LAYER_SIZES)} neurons in {len(LAYER_SIZES)} layers, {N_IMAGES} images, {N_CONCEPTS} concepts")
    print(f"similarity stage {similarity:.2f} s; evaluation {evaluation:.2f} s ({evaluation / similarity:.1f}x)")
    for name, value in sorted(seconds.items(), key=lambda item: -item[1]):
        print(f"  {name:<48}{value:>8.2f} s")


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
