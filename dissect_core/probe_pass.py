"""The probe pass: one hooked pass over the probe images giving image embeddings, layer activations and the
target's outputs (logits, and its classifier's inputs).

All are cached by content (encoder, target, preprocessing, pooling and probe set in the key), so a pass runs
only for what no earlier run computed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict

import torch
from torch import Tensor

from dissect_core.activations import RecordedLayer
from dissect_core.analysis.outputs import ModelOutputs
from dissect_core.config import DissectConfig
from dissect_core.data.cache import TensorCache, cache_key
from dissect_core.data.probe import ProbeSet
from dissect_core.encoders import ImageTextEncoder
from dissect_core.errors import DissectError
from dissect_core.models.targets import Target
from dissect_core.progress import Progress
from dissect_core.stages.partition import Span
from dissect_core.stages.probe import merged_pass, probe_chunk

#: A fresh pass over the probe set: (probe, target, encoder, config, cached embeddings or None, layers to record,
#: whether to record the outputs, report, check_stop) -> (embeddings, recorded layers, readable mask, outputs).
FreshPass = Callable[
    [ProbeSet, Target, ImageTextEncoder, DissectConfig, Tensor | None, list[str], bool, Progress, Callable[[], None]],
    tuple[Tensor, dict[str, RecordedLayer], Tensor, ModelOutputs | None],
]


def _probe_cache_keys(
    probe: ProbeSet, target: Target, encoder: ImageTextEncoder, config: DissectConfig
) -> tuple[str, dict[str, str]]:
    """Return the cache key of the probe set's image embeddings and that of each layer's activations."""
    image_key = cache_key("images", encoder.identity, encoder.preprocess_identity, probe.content_hash)
    layer_keys = {
        layer: cache_key(
            "activations",
            target.identity,
            layer,
            config.pool,
            config.n_top_images,
            asdict(target.preprocessing),
            probe.content_hash,
        )
        for layer in config.layers
    }
    return image_key, layer_keys


def _outputs_key(probe: ProbeSet, target: Target) -> str:
    """Return the cache key of the target's outputs on the probe set."""
    return cache_key("outputs", target.identity, asdict(target.preprocessing), probe.content_hash)


def _cached_outputs(cache: TensorCache, key: str) -> tuple[bool, ModelOutputs | None]:
    """Return whether an earlier pass stored the target's outputs, and those outputs (probe order; None when the
    target's output was no [B, C] tensor)."""
    hit = cache.load("outputs", key)
    if hit is None:
        return False, None
    if hit.get("logits") is None:
        return True, None
    return True, ModelOutputs(**{name: value for name, value in hit.items() if name != "valid"})


def _cached_layers(cache: TensorCache, layer_keys: dict[str, str]) -> tuple[dict[str, RecordedLayer], Tensor | None]:
    """Return the layers whose activations are cached, and the readable-image mask cached with the last of them."""
    recorded: dict[str, RecordedLayer] = {}
    valid: Tensor | None = None
    for layer, key in layer_keys.items():
        hit = cache.load("activations", key)
        if hit is not None:
            recorded[layer] = RecordedLayer(
                hit["kind"], hit["activations"], hit["top_values"], hit["top_indices"], hit.get("top_maps")
            )
            valid = hit["valid"]
    return recorded, valid


def loader_workers(target: Target, n_images: int, batch_size: int, cpu_count: int | None = None) -> int:
    """Return how many processes should decode probe images beside the forward passes.

    On a GPU the CPU is otherwise idle, so decoding in workers overlaps with compute. On a CPU the forward passes
    already use every core; with few cores, workers only take cycles from them (on 2 cores a ConSE probe pass
    took 14.6-18.4 s with 2 workers and 11.6 s with none, its bare forwards 11.7 s).
    """
    cores = cpu_count or os.cpu_count() or 1
    if n_images <= 4 * batch_size:
        return 0
    device = next((parameter.device for parameter in target.model.parameters()), torch.device("cpu"))
    if device.type != "cpu":
        return max(1, min(8, cores - 1))
    return 0 if cores <= 4 else 2


def fresh_local_pass(
    probe: ProbeSet,
    target: Target,
    encoder: ImageTextEncoder,
    config: DissectConfig,
    cached_embeddings: Tensor | None,
    layers: list[str],
    record_outputs: bool,
    report: Progress,
    check_stop: Callable[[], None],
) -> tuple[Tensor, dict[str, RecordedLayer], Tensor, ModelOutputs | None]:
    """Return image embeddings (fresh unless cached), the named layers' recordings, the readable-image mask and the
    target's outputs (None when the target did not run or its output is no [B, C] tensor): the probe stage over
    one chunk of every image."""
    chunk = probe_chunk(
        probe,
        Span(0, 0, len(probe)),
        target,
        encoder,
        config,
        embed_images=cached_embeddings is None,
        layers=layers,
        record_outputs=record_outputs,
        workers=loader_workers(target, len(probe), config.batch_size),
        on_batch=lambda done, total: report("probe pass", done, total),
        check_stop=check_stop,
    )
    embeddings, recorded, valid_mask, outputs = merged_pass([chunk], layers, config.n_top_images, record_outputs)
    if cached_embeddings is not None:
        embeddings = cached_embeddings
    assert embeddings is not None  # some image was readable, and each readable one was embedded
    return embeddings, recorded, valid_mask, outputs


def probe_pass(
    probe: ProbeSet,
    target: Target,
    encoder: ImageTextEncoder,
    config: DissectConfig,
    cache: TensorCache,
    report: Progress,
    check_stop: Callable[[], None],
    fresh_pass: FreshPass | None = None,
) -> tuple[Tensor, dict[str, RecordedLayer], Tensor, ModelOutputs | None]:
    """Return image embeddings, recorded layers, the readable-image mask and the target's outputs (probe order;
    None when its output is no [B, C] tensor), using caches where they hit; `fresh_pass` computes what they miss
    (default: one chunk in this process)."""
    image_key, layer_keys = _probe_cache_keys(probe, target, encoder, config)
    outputs_key = _outputs_key(probe, target)
    cached_images = cache.load("images", image_key)
    recorded, cached_valid = _cached_layers(cache, layer_keys)
    outputs_cached, outputs = _cached_outputs(cache, outputs_key)
    if cached_valid is None and cached_images is not None:
        cached_valid = cached_images["valid"]
    missing_layers = [layer for layer in config.layers if layer not in recorded]
    if cached_images is not None and cached_valid is not None and not missing_layers and outputs_cached:
        return cached_images["embeddings"], recorded, cached_valid, outputs

    embeddings, fresh_layers, valid_mask, fresh_outputs = (fresh_pass or fresh_local_pass)(
        probe,
        target,
        encoder,
        config,
        cached_images["embeddings"] if cached_images is not None else None,
        missing_layers,
        not outputs_cached,
        report,
        check_stop,
    )
    if not outputs_cached:
        outputs = fresh_outputs
        cache.save("outputs", outputs_key, {**(vars(outputs) if outputs else {"logits": None}), "valid": valid_mask})
    if cached_images is None:
        cache.save("images", image_key, {"embeddings": embeddings, "valid": valid_mask})
    for layer, result in fresh_layers.items():
        recorded[layer] = result
        # vars, not asdict: asdict deep-copies every tensor (a second copy of the activations)
        cache.save("activations", layer_keys[layer], {**vars(result), "valid": valid_mask})
    if cached_valid is not None and not torch.equal(cached_valid, valid_mask):
        raise DissectError("cached and fresh passes disagree on which images are readable; clear the cache dir")
    return embeddings, recorded, valid_mask, outputs
