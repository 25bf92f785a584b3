"""What an intervention does to the model: per-class changes of logit and probability, changed predictions and
accuracy, the downstream units that moved most, and whether the classes it hurts match the unit's label."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from dissect_core.errors import DissectError
from dissect_core.interventions.batches import ImageBatch, model_device, stop_checker
from dissect_core.interventions.hooks import intervened
from dissect_core.interventions.modes import InterventionSpec
from dissect_core.interventions.readouts import PooledRecorder, batch_logits, comparable, rows_at
from dissect_core.models.targets import get_layer
from dissect_core.progress import Progress
from dissect_core.topk import stable_topk_positions

#: Per downstream layer, how many units (those whose mean activation changed most) an effect keeps.
DEFAULT_DOWNSTREAM_UNITS = 10
#: Label–effect agreement: the classes whose logits fell most, the random class sets of the null, and their seed.
DEFAULT_AGREEMENT_CLASSES = 5
DEFAULT_AGREEMENT_DRAWS = 1000
DEFAULT_AGREEMENT_SEED = 0


@dataclass(frozen=True)
class ClassEffect:
    """One class's mean change over the images: of its logit, and of its softmax probability."""

    class_index: int
    class_name: str | None
    mean_delta_logit: float
    mean_delta_probability: float


@dataclass(frozen=True)
class DownstreamEffect:
    """A unit of a later dissected layer and the change of its mean pooled activation (the app adds its label)."""

    layer: str
    unit: int
    mean_delta_activation: float


@dataclass(frozen=True)
class LabelEffectAgreement:
    """How well a unit's label names the classes its ablation hurts.

    `cosine`: the mean text cosine between the label and the names of `top_classes` (the classes whose logits fell
    most); `z` and `p_value` place it among `n_random` random class sets of the same size (p one-sided, add-one).
    """

    cosine: float
    z: float
    p_value: float
    n_random: int
    top_classes: tuple[int, ...]


@dataclass(frozen=True)
class InterventionEffect:
    """What one intervention did over `n_images` probe images (`image_indices`, their probe positions).

    `classes` holds every class, the most hurt (most negative mean_delta_logit) first; `predictions_changed` is the
    share of images whose top-1 class changed; accuracies are top-1 over the images with a label (None without);
    `downstream` the units of each downstream layer whose mean activation changed most, largest |change| first.
    `seconds` is the whole call; `plain_pass_seconds` the forwards without the intervention it ran (None when
    given the baseline).
    """

    n_images: int
    image_indices: tuple[int, ...]
    classes: tuple[ClassEffect, ...]
    predictions_changed: float
    accuracy_before: float | None
    accuracy_after: float | None
    downstream: tuple[DownstreamEffect, ...]
    seconds: float
    plain_pass_seconds: float | None


def mean_delta_logits(baseline_logits: Tensor, intervened_logits: Tensor) -> Tensor:
    """Return each class's mean change of logit [C] (float64), compared at the lower of the two precisions."""
    before, after = comparable(baseline_logits, intervened_logits)
    return (after - before).mean(dim=0)


def class_effects(
    baseline_logits: Tensor, intervened_logits: Tensor, class_names: Sequence[str] | None = None
) -> tuple[ClassEffect, ...]:
    """Return every class's mean change of logit and probability over the images ([N, C] each), sorted by
    mean_delta_logit, most negative first (the lower class index first on ties)."""
    if baseline_logits.shape != intervened_logits.shape or baseline_logits.dim() != 2:
        raise DissectError(
            f"baseline logits {tuple(baseline_logits.shape)} and intervened logits "
            f"{tuple(intervened_logits.shape)} must both be [images, classes] of one shape; pass the same images"
        )
    n_classes = baseline_logits.shape[1]
    if class_names is not None and len(class_names) != n_classes:
        raise DissectError(f"{len(class_names)} class names for {n_classes} classes; pass one name per class or None")
    before, after = comparable(baseline_logits, intervened_logits)
    delta_logit = (after - before).mean(dim=0)
    delta_probability = (after.softmax(dim=1) - before.softmax(dim=1)).mean(dim=0)
    order = torch.sort(delta_logit, stable=True).indices.tolist()
    return tuple(
        ClassEffect(
            class_index=index,
            class_name=class_names[index] if class_names is not None else None,
            mean_delta_logit=float(delta_logit[index]),
            mean_delta_probability=float(delta_probability[index]),
        )
        for index in order
    )


def random_class_sets(n_classes: int, n_top: int, n_random: int, seed: int) -> Tensor:
    """Return `n_random` seeded sets of `n_top` distinct classes [n_random, n_top] (the agreement's null)."""
    if not 1 <= n_top <= n_classes or n_random < 1:
        raise DissectError(
            f"cannot draw {n_random} sets of {n_top} of {n_classes} classes; use 1 <= n_top <= {n_classes}, "
            "n_random >= 1"
        )
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n_random, n_classes, generator=generator).topk(n_top, dim=1).indices


def agreement_against(class_cosines: Tensor, delta_logits: Tensor, null_sets: Tensor) -> LabelEffectAgreement:
    """Return the agreement of one label (its cosine with every class name [C]) with one effect (the change of
    every logit [C]) against the given random class sets [n_random, n_top]."""
    n_top = null_sets.shape[1]
    top = stable_topk_positions((-delta_logits.double()).float().unsqueeze(0), n_top)[0]
    observed = float(class_cosines[top].double().mean())
    null = class_cosines.double()[null_sets].mean(dim=1)
    spread = float(null.std())
    z = (observed - float(null.mean())) / spread if spread > 0 else 0.0
    p_value = (1 + int((null >= observed).sum())) / (1 + null_sets.shape[0])
    return LabelEffectAgreement(observed, z, p_value, null_sets.shape[0], tuple(top.tolist()))


def label_class_cosines(label_embedding: Tensor, class_name_embeddings: Tensor) -> Tensor:
    """Return the cosine [C] between a label's text embedding [E] and each class name's [C, E]."""
    if label_embedding.dim() != 1 or class_name_embeddings.dim() != 2:
        raise DissectError("pass one label embedding [E] and the class names' embeddings [C, E] of the same encoder")
    if label_embedding.shape[0] != class_name_embeddings.shape[1]:
        raise DissectError(
            f"the label embedding has {label_embedding.shape[0]} dims, the class names' "
            f"{class_name_embeddings.shape[1]}; embed both with the run's text encoder"
        )
    label = torch.nn.functional.normalize(label_embedding.double(), dim=0)
    return torch.nn.functional.normalize(class_name_embeddings.double(), dim=1) @ label


def label_effect_agreement(
    label_embedding: Tensor,
    class_name_embeddings: Tensor,
    delta_logits: Tensor | Sequence[ClassEffect],
    *,
    n_top: int = DEFAULT_AGREEMENT_CLASSES,
    n_random: int = DEFAULT_AGREEMENT_DRAWS,
    seed: int = DEFAULT_AGREEMENT_SEED,
) -> LabelEffectAgreement:
    """Return how far the label's mean cosine with the names of the `n_top` classes whose logits fell most stands
    above the same for `n_random` seeded random class sets: z = (cosine - null mean) / null sd (0 when the null
    has no spread), p = (1 + #null >= cosine) / (1 + n_random).

    `delta_logits` is the change of every class's logit [C] (class order), or the ClassEffects of an intervention.
    """
    if not isinstance(delta_logits, Tensor):
        values = torch.zeros(len(delta_logits), dtype=torch.float64)
        for effect in delta_logits:
            values[effect.class_index] = effect.mean_delta_logit
        delta_logits = values
    cosines = label_class_cosines(label_embedding, class_name_embeddings)
    if delta_logits.shape != cosines.shape:
        raise DissectError(
            f"{delta_logits.numel()} logit changes for {cosines.numel()} class names; pass one change per class"
        )
    return agreement_against(cosines, delta_logits, random_class_sets(cosines.numel(), n_top, n_random, seed))


def downstream_effects(
    layer: str, baseline: Tensor, reading: Tensor, n_units: int = DEFAULT_DOWNSTREAM_UNITS
) -> list[DownstreamEffect]:
    """Return the `n_units` units of a layer whose mean pooled activation ([N, K] before and after) changed most,
    largest |change| first (the lower unit first on ties)."""
    before, after = comparable(baseline, reading)
    delta = (after - before).mean(dim=0)
    keep = stable_topk_positions(delta.abs().float().unsqueeze(0), min(n_units, delta.numel()))[0]
    return [DownstreamEffect(layer, int(unit), float(delta[unit])) for unit in keep.tolist()]


def _top1_accuracy(logits: Tensor, labels: Sequence[int | None] | None, positions: list[int]) -> float | None:
    """Return the top-1 accuracy over the images with a label (None when none has one)."""
    if labels is None:
        return None
    known = [(row, labels[position]) for row, position in enumerate(positions) if labels[position] is not None]
    if not known:
        return None
    predicted = logits.argmax(dim=1)
    return sum(int(predicted[row]) == label for row, label in known) / len(known)


def run_intervention(
    model: nn.Module,
    module_name: str,
    spec: InterventionSpec,
    images: Iterable[ImageBatch],
    *,
    baseline_logits: Tensor | None = None,
    downstream_layers: Sequence[str] = (),
    baseline_downstream: Mapping[str, Tensor] | None = None,
    labels: Sequence[int | None] | None = None,
    class_names: Sequence[str] | None = None,
    unit_means: Tensor | None = None,
    should_stop: Callable[[], bool] | None = None,
    progress: Progress | None = None,
    device: torch.device | str | None = None,
    pool: str = "avg",
    n_downstream: int = DEFAULT_DOWNSTREAM_UNITS,
) -> InterventionEffect:
    """Return what `spec` (checked with check_spec) does to the model over the image batches, by one pass with the
    intervention hooked at `module_name`.

    Per-image inputs are indexed by probe position: `baseline_logits` [N, C] (the run's recorded outputs; when
    None a plain pass runs beside), `baseline_downstream` {layer: pooled activations [N, K]} (a plain pass records
    any layer missing), `labels` (class index or None). `pool` is the run's pooling of conv maps. A stored float16
    baseline is compared with the reading rounded to float16 (see `readouts.comparable`).
    """
    start = time.perf_counter()
    if spec.layer != module_name:
        raise DissectError(f"the spec is for layer {spec.layer} but module_name is {module_name}; pass the same layer")
    module = get_layer(model, module_name)
    here = model_device(model, device)
    check_stop = stop_checker(should_stop)
    given_downstream = dict(baseline_downstream or {})
    plain_layers = [layer for layer in downstream_layers if layer not in given_downstream]
    run_plain = baseline_logits is None or bool(plain_layers)
    total_batches = len(images) if isinstance(images, Sequence) else 0
    positions: list[int] = []
    after_logits: list[Tensor] = []
    plain_logits: list[Tensor] = []
    after_down: dict[str, list[Tensor]] = {layer: [] for layer in downstream_layers}
    plain_down: dict[str, list[Tensor]] = {layer: [] for layer in plain_layers}
    plain_seconds = 0.0
    with torch.inference_mode(), PooledRecorder(model, downstream_layers, pool) as recorder:
        for batch_number, (batch_positions, pixels) in enumerate(images, start=1):
            check_stop()
            pixels = pixels.to(here)
            if run_plain:
                plain_start = time.perf_counter()
                plain_logits.append(batch_logits(model(pixels)))
                plain_seconds += time.perf_counter() - plain_start
                plain_reading = recorder.take()
                for layer in plain_layers:
                    plain_down[layer].append(plain_reading[layer])
            with intervened(model, module, spec, unit_means):
                after_logits.append(batch_logits(model(pixels)))
            for layer, pooled in recorder.take().items():
                after_down[layer].append(pooled)
            positions.extend(int(position) for position in batch_positions)
            if progress is not None:
                progress("intervention", batch_number, total_batches)
    if not positions:
        raise DissectError("no image was run; pass at least one batch of readable probe images")
    after = torch.cat(after_logits)
    before = rows_at(baseline_logits, positions, "baseline_logits") if baseline_logits is not None else None
    if before is None:
        before = torch.cat(plain_logits)
    downstream: list[DownstreamEffect] = []
    for layer in downstream_layers:
        layer_before = (
            rows_at(given_downstream[layer], positions, f"baseline_downstream[{layer!r}]")
            if layer in given_downstream
            else torch.cat(plain_down[layer])
        )
        downstream += downstream_effects(layer, layer_before, torch.cat(after_down[layer]), n_downstream)
    rounded_before, rounded_after = comparable(before, after)
    return InterventionEffect(
        n_images=len(positions),
        image_indices=tuple(positions),
        classes=class_effects(before, after, class_names),
        predictions_changed=float((rounded_before.argmax(1) != rounded_after.argmax(1)).double().mean()),
        accuracy_before=_top1_accuracy(rounded_before, labels, positions),
        accuracy_after=_top1_accuracy(rounded_after, labels, positions),
        downstream=tuple(downstream),
        seconds=time.perf_counter() - start,
        plain_pass_seconds=plain_seconds if run_plain else None,
    )
