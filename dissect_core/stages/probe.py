"""The probe pass as a stage: one chunk of the probe images through the encoder and the hooked target, and the
exact merge of chunks into what one pass over every image gives.

A chunk is a whole number of batches (`dissect_core.stages.partition.image_chunks`), so each image meets the
networks in the same batch as in a single pass and its rows are bit-identical. Each neuron's top images are kept
per chunk in the stable order of `dissect_core.topk` (value descending, lower image index on ties), so merging
the chunks' lists gives exactly the top images of all of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from dissect_core.activations import ActivationRecorder, RecordedLayer
from dissect_core.analysis.outputs import ModelOutputs
from dissect_core.config import DissectConfig
from dissect_core.data.probe import ProbeSet, iter_decoded_batches
from dissect_core.encoders import ImageTextEncoder
from dissect_core.errors import DissectError
from dissect_core.models.targets import Target
from dissect_core.stages.partition import Span
from dissect_core.topk import stable_topk_positions
from dissect_core.wiring.output_recorder import OutputRecorder

#: Reports one batch of a chunk done: (batches done, batches in the chunk).
BatchProgress = Callable[[int, int], None]


@dataclass
class ChunkPass:
    """One chunk's probe pass, rows in probe order from `span.start`.

    `valid` [n] marks the readable images; `embeddings` [n, D] (zero rows for unreadable images) is None when the
    pass did not embed images or the chunk had none readable; each layer's `activations` [n, K] with its top
    images indexed over the whole probe set (none when the chunk had no readable image); `outputs` the target's
    outputs on the chunk (None when not recorded, or not a [B, C] tensor).
    """

    span: Span
    valid: Tensor
    embeddings: Tensor | None
    layers: dict[str, RecordedLayer]
    outputs: ModelOutputs | None


def probe_chunk(
    probe: ProbeSet,
    span: Span,
    target: Target,
    encoder: ImageTextEncoder,
    config: DissectConfig,
    *,
    embed_images: bool,
    layers: Sequence[str],
    record_outputs: bool,
    workers: int,
    on_batch: BatchProgress | None = None,
    check_stop: Callable[[], None] | None = None,
) -> ChunkPass:
    """Return one chunk's image embeddings (when `embed_images`), the named layers' recordings and the target's
    outputs (when `record_outputs`), decoding with `workers` processes."""
    images = ProbeSet(probe.name, probe.images[span.start : span.stop])
    n_images = len(images)
    run_target = bool(layers) or record_outputs
    transforms = []
    if embed_images:
        transforms.append(encoder.image_transform)
    if run_target:
        transforms.append(target.preprocessing.transform())
    image_embeddings: Tensor | None = None  # [n, D], sized by the first batch
    valid = torch.zeros(n_images, dtype=torch.bool)
    total_batches = math.ceil(n_images / config.batch_size)
    recorder = ActivationRecorder(target.model, layers, n_images, config.n_top_images, config.pool)
    output_recorder = OutputRecorder(target.model, n_images)
    with recorder, output_recorder:
        if on_batch is not None:
            on_batch(0, total_batches)  # the stage shows from its start, not from its first batch's end
        batches = iter_decoded_batches(images, transforms, config.batch_size, num_workers=workers)
        for batch_number, (good, _bad, tensors) in enumerate(batches, start=1):
            if check_stop is not None:
                check_stop()
            if good:
                valid[good] = True
                column = 0
                if embed_images:
                    batch_embeddings = encoder.encode_images(tensors[0]).cpu()
                    if image_embeddings is None:
                        image_embeddings = torch.zeros(n_images, batch_embeddings.shape[1])
                    image_embeddings[good] = batch_embeddings
                    column = 1
                if run_target:
                    output_recorder.add(recorder.run_batch(tensors[column], good), good)
            if on_batch is not None:
                on_batch(batch_number, total_batches)
    recorded = {
        name: replace(layer, top_indices=layer.top_indices + span.start)
        for name, layer in (recorder.results() if layers and valid.any() else {}).items()
    }
    outputs = output_recorder.outputs() if run_target and valid.any() else None
    return ChunkPass(span, valid, image_embeddings, recorded, outputs)


def merge_top_images(parts: Sequence[RecordedLayer], n_top: int) -> tuple[Tensor, Tensor, Tensor | None]:
    """Return the (values, image indices, maps or None) of each neuron's `n_top` best images over every part, in
    the stable order (value descending, lower image index on ties): exactly one pass's top images."""
    values = torch.cat([part.top_values for part in parts], dim=1)
    indices = torch.cat([part.top_indices for part in parts], dim=1)
    keep = stable_topk_positions(values, min(n_top, values.shape[1]), indices)
    maps = None
    if all(part.top_maps is not None for part in parts):
        every_map = torch.cat([part.top_maps for part in parts if part.top_maps is not None], dim=1)
        maps = every_map[torch.arange(len(keep)).unsqueeze(1), keep]
    return values.gather(1, keep), indices.gather(1, keep), maps


def _merged_layer(chunks: Sequence[ChunkPass], layer: str, n_top: int) -> RecordedLayer:
    """Return one layer's recording over every chunk: activations in probe order (zero rows for chunks with no
    readable image) and the merged top images."""
    recorded = [chunk.layers[layer] for chunk in chunks if layer in chunk.layers]
    n_units = recorded[0].activations.shape[1]
    rows = [
        chunk.layers[layer].activations if layer in chunk.layers else torch.zeros(len(chunk.span), n_units)
        for chunk in chunks
    ]
    values, indices, maps = merge_top_images(recorded, n_top)
    return RecordedLayer(recorded[0].kind, torch.cat(rows), values, indices, maps)


def _merged_outputs(chunks: Sequence[ChunkPass]) -> ModelOutputs | None:
    """Return the target's outputs over every chunk (zero rows where a chunk had no readable image), with the
    classifier's inputs only when every chunk that ran recorded them; None when a chunk's output was unusable."""
    ran = [chunk.outputs for chunk in chunks if chunk.valid.any()]
    if any(outputs is None for outputs in ran):
        return None
    present = [outputs for outputs in ran if outputs is not None]
    first = present[0]
    with_inputs = all(outputs.classifier_inputs is not None for outputs in present)

    def rows(name: str) -> Tensor:
        width = getattr(first, name).shape[1]
        parts = []
        for chunk in chunks:
            value = getattr(chunk.outputs, name) if chunk.outputs is not None else None
            parts.append(value if value is not None else torch.zeros(len(chunk.span), width))
        return torch.cat(parts)

    if not with_inputs:
        return ModelOutputs(logits=rows("logits"))
    return ModelOutputs(
        logits=rows("logits"),
        classifier_layer=first.classifier_layer,
        classifier_inputs=rows("classifier_inputs"),
        classifier_weight=first.classifier_weight,
        classifier_bias=first.classifier_bias,
    )


def merged_pass(
    chunks: Sequence[ChunkPass], layers: Sequence[str], n_top: int, record_outputs: bool
) -> tuple[Tensor | None, dict[str, RecordedLayer], Tensor, ModelOutputs | None]:
    """Return what one pass over every chunk's images gives: the readable images' embeddings (None when the chunks
    did not embed), each layer's recording, the readable-image mask [N] and the target's outputs."""
    valid = torch.cat([chunk.valid for chunk in chunks])
    if not valid.any():
        raise DissectError(f"none of the {len(valid)} probe images could be read; check the probe folder's files")
    if len(chunks) == 1:  # one pass: nothing to merge
        only = chunks[0]
        embeddings = only.embeddings[valid] if only.embeddings is not None else None
        return embeddings, dict(only.layers), valid, only.outputs if record_outputs else None
    embeddings = None
    embedded = [chunk.embeddings for chunk in chunks if chunk.embeddings is not None]
    if embedded:
        width = embedded[0].shape[1]
        parts = [
            chunk.embeddings if chunk.embeddings is not None else torch.zeros(len(chunk.span), width)
            for chunk in chunks
        ]
        embeddings = torch.cat(parts)[valid]
    recorded = {layer: _merged_layer(chunks, layer, n_top) for layer in layers}
    return embeddings, recorded, valid, _merged_outputs(chunks) if record_outputs else None
