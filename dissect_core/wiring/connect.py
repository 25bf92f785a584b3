"""The connections stage: for every ordered pair of dissected layers, the weights joining them when one module does
(dissect_core.models.wiring), else an attribution over a sample of probe images sized to a share of the run's cost
(dissect_core.wiring.attribution); and which dissected layer feeds the model's classifier."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

from dissect_core.analysis.connections import LayerConnections
from dissect_core.models.wiring import path_note, path_weights, trace_layers, weight_path
from dissect_core.wiring.attribution import AttributionPlan, attribute, seconds_per_image

#: The attributions' share of the target's forward passes over the probe set: a cold run also decodes and embeds
#: every image and scores every layer, so this keeps them under 15% of it.
ATTRIBUTION_SHARE = 0.10
#: The most probe images an attribution averages over.
MAX_ATTRIBUTION_IMAGES = 256
#: Images the cost of an attribution is measured on (one: the timing is itself an attribution's worth of work).
CALIBRATION_IMAGES = 1


def forward_order(model: nn.Module, layers: list[str], pixels: Tensor) -> list[str]:
    """Return the layers in the order one forward pass first runs them (layers it never runs left out)."""
    order: list[str] = []

    def seen(name: str) -> Callable[..., None]:
        return lambda *_: order.append(name) if name not in order else None

    handles = [model.get_submodule(name).register_forward_hook(seen(name)) for name in layers]
    try:
        with torch.no_grad():
            model(pixels)
    finally:
        for handle in handles:
            handle.remove()
    return order


def attribution_images(cost_per_image: float, forward_per_image: float, n_probe_images: int) -> int:
    """Return how many images the attributions average over: a power of two whose cost stays within
    ATTRIBUTION_SHARE of the probe set's forward passes (at least 1, at most MAX_ATTRIBUTION_IMAGES)."""
    affordable = ATTRIBUTION_SHARE * n_probe_images * forward_per_image / max(cost_per_image, 1e-12)
    n_images = 1
    while n_images * 2 <= min(affordable, MAX_ATTRIBUTION_IMAGES, n_probe_images):
        n_images *= 2
    return n_images


def _seconds(run: Callable[[], object]) -> float:
    """Return the seconds `run` takes."""
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def connect_layers(
    model: nn.Module,
    layers: list[str],
    units: dict[str, int],
    sample_pixels: Callable[[int], Tensor],
    n_probe_images: int,
    pool: str,
) -> list[LayerConnections]:
    """Return the connections of every ordered pair of dissected layers (upstream first in forward order).

    `units` gives each layer's unit count; `sample_pixels(n)` the target's view of n seeded probe images.
    """
    calibration = sample_pixels(min(CALIBRATION_IMAGES, n_probe_images))
    order = forward_order(model, layers, calibration)
    graph = trace_layers(model, order)
    connections: list[LayerConnections] = []
    attributed: dict[str, list[str]] = {}
    for position, upstream in enumerate(order):
        for downstream in order[position + 1 :]:
            path = weight_path(model, graph, upstream, downstream)
            weights = path_weights(model, path) if path is not None else None
            if path is None or weights is None or weights.shape != (units[downstream], units[upstream]):
                attributed.setdefault(upstream, []).append(downstream)
                continue
            folded = bool(path.before or path.after)
            connections.append(LayerConnections(upstream, downstream, "weight", weights, None, folded, path_note(path)))
    plans = [AttributionPlan(up, tuple(down), units[up]) for up, down in attributed.items()]
    if plans:
        forward_per_image = _seconds(lambda: forward_order(model, [], calibration)) / len(calibration)
        cost = sum(seconds_per_image(model, calibration, plan, pool) for plan in plans)
        n_images = attribution_images(cost, forward_per_image, n_probe_images)
        pixels = sample_pixels(n_images)
        for plan in plans:
            for downstream, weights in attribute(model, pixels, plan, pool).items():
                note = (
                    f"attribution: mean over {n_images} sampled probe images of {plan.upstream}'s map × the gradient "
                    f"of {downstream}'s {pool}-pooled unit, summed over space (forward-mode derivatives)"
                )
                connections.append(
                    LayerConnections(plan.upstream, downstream, "attribution", weights, n_images, False, note)
                )
    order_of = {name: index for index, name in enumerate(order)}
    return sorted(connections, key=lambda c: (order_of[c.from_layer], order_of[c.to_layer]))


def feeding_layer(
    model: nn.Module, layers: list[str], classifier: str, width: int, units: dict[str, int]
) -> str | None:
    """Return the dissected layer whose units are the classifier's `width` inputs (weights join them), or None."""
    graph = trace_layers(model, [*layers, classifier])
    for layer in layers:
        path = weight_path(model, graph, layer, classifier)
        if path is not None and path.module == classifier and units[layer] == width and layer != classifier:
            return layer
    return None
