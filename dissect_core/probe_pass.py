"""The probe pass: one hooked pass over the probe images giving image embeddings, layer activations and the
target's outputs (logits, and its classifier's inputs).

All are cached by content (encoder, target, preprocessing, pooling and probe set in the key), so a pass runs
only for what no earlier run computed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import asdict

import torch
from torch import Tensor

from dissect_core.activations import ActivationRecorder, RecordedLayer
from dissect_core.analysis.outputs import ModelOutputs
from dissect_core.config import DissectConfig
from dissect_core.data.cache import TensorCache, cache_key
from dissect_core.data.probe import ProbeSet, iter_decoded_batches
from dissect_core.encoders import ImageTextEncoder
from dissect_core.errors import DissectError
from dissect_core.models.targets import Target
from dissect_core.progress import Progress
from dissect_core.wiring.output_recorder import OutputRecorder


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


def _fresh_pass(
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
    target's outputs (None when the target did not run or its output is no [B, C] tensor)."""
    embed_images = cached_embeddings is None
    n_images = len(probe)
    run_target = bool(layers) or record_outputs
    transforms = []
    if embed_images:
        transforms.append(encoder.image_transform)
    if run_target:
        transforms.append(target.preprocessing.transform())
    image_embeddings: Tensor | None = None  # [N, D], sized by the first batch
    valid_mask = torch.zeros(n_images, dtype=torch.bool)
    total_batches = math.ceil(n_images / config.batch_size)
    workers = loader_workers(target, n_images, config.batch_size)
    recorder = ActivationRecorder(target.model, layers, n_images, config.n_top_images, config.pool)
    output_recorder = OutputRecorder(target.model, n_images)
    with recorder, output_recorder:
        batches = iter_decoded_batches(probe, transforms, config.batch_size, num_workers=workers)
        for batch_number, (good, _bad, tensors) in enumerate(batches, start=1):
            check_stop()
            if good:
                valid_mask[good] = True
                column = 0
                if embed_images:
                    batch_embeddings = encoder.encode_images(tensors[0]).cpu()
                    if image_embeddings is None:
                        image_embeddings = torch.zeros(n_images, batch_embeddings.shape[1])
                    image_embeddings[good] = batch_embeddings
                    column = 1
                if run_target:
                    output_recorder.add(recorder.run_batch(tensors[column], good), good)
            report("probe pass", batch_number, total_batches)
    if not valid_mask.any():
        raise DissectError(f"none of the {n_images} probe images could be read; check the probe folder's files")
    if cached_embeddings is not None:
        embeddings = cached_embeddings
    else:
        assert image_embeddings is not None  # some image was readable, and each readable one was embedded
        embeddings = image_embeddings[valid_mask]
    outputs = output_recorder.outputs() if run_target else None
    return embeddings, recorder.results() if layers else {}, valid_mask, outputs


def probe_pass(
    probe: ProbeSet,
    target: Target,
    encoder: ImageTextEncoder,
    config: DissectConfig,
    cache: TensorCache,
    report: Progress,
    check_stop: Callable[[], None],
) -> tuple[Tensor, dict[str, RecordedLayer], Tensor, ModelOutputs | None]:
    """Return image embeddings, recorded layers, the readable-image mask and the target's outputs (probe order;
    None when its output is no [B, C] tensor), using caches where they hit."""
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

    embeddings, fresh_layers, valid_mask, fresh_outputs = _fresh_pass(
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
        cache.save("activations", layer_keys[layer], {**asdict(result), "valid": valid_mask})
    if cached_valid is not None and not torch.equal(cached_valid, valid_mask):
        raise DissectError("cached and fresh passes disagree on which images are readable; clear the cache dir")
    return embeddings, recorded, valid_mask, outputs
