"""The run's wiring stage, after its layers are labelled: the model's outputs on the readable images, the
connections between dissected layers and the paper's weight finding, ready for `DissectionResult`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from dissect_core.analysis.connections import LayerConnections
from dissect_core.analysis.outputs import ModelOutputs
from dissect_core.analysis.weight_agreement import WeightConceptAgreement
from dissect_core.config import DissectConfig
from dissect_core.data.probe import decode_image
from dissect_core.encoders import ImageTextEncoder
from dissect_core.models.targets import Target
from dissect_core.results import LayerResult
from dissect_core.wiring.connect import connect_layers, feeding_layer
from dissect_core.wiring.weight_finding import weight_findings

#: The seed of the probe images an attribution samples.
SAMPLE_SEED = 0


@dataclass
class Wiring:
    """What the wiring stage found (see `DissectionResult`'s fields of the same names)."""

    outputs: ModelOutputs | None
    connections: list[LayerConnections] = field(default_factory=list)
    weight_concept_agreement: list[WeightConceptAgreement] = field(default_factory=list)


def _readable_outputs(outputs: ModelOutputs | None, kept: Tensor) -> ModelOutputs | None:
    """Return the outputs of the readable images only (as the layers' activations are kept): `outputs` itself when
    it holds only those (every image was readable, or the Ray executor wrote only their rows), so rows mapped from a
    file are never copied."""
    if outputs is None or len(kept) == len(outputs.logits):
        return outputs
    inputs = outputs.classifier_inputs
    return replace(outputs, logits=outputs.logits[kept], classifier_inputs=None if inputs is None else inputs[kept])


def _pixel_sampler(target: Target, image_paths: Sequence[str]) -> Callable[[int], Tensor]:
    """Return a function giving the target's view of the first n images of a seeded shuffle of `image_paths`."""
    order = torch.randperm(len(image_paths), generator=torch.Generator().manual_seed(SAMPLE_SEED)).tolist()
    transform = target.preprocessing.transform()
    device = next((p.device for p in target.model.parameters()), torch.device("cpu"))

    def sample(n_images: int) -> Tensor:
        return torch.stack([transform(decode_image(image_paths[i])) for i in order[:n_images]]).to(device)

    return sample


def wire_run(
    config: DissectConfig,
    target: Target,
    encoder: ImageTextEncoder,
    layers: list[LayerResult],
    image_paths: Sequence[str],
    probe_outputs: ModelOutputs | None,
    kept: Tensor,
    concepts: Sequence[str],
    concept_embeddings: Tensor,
    class_names: Sequence[str] | None,
) -> Wiring:
    """Return the run's outputs (readable images), connections and weight finding.

    `image_paths` are the readable images'; `probe_outputs` the probe pass's (every probe image's rows, of which
    `kept` picks the readable ones, or the readable images' rows already); `concept_embeddings` [concepts, E] the
    embeddings of the run's `concepts`; `class_names` the output units' names
    (`dissect_core.models.class_names.run_class_names`) the weight finding compares labels with.
    """
    outputs = _readable_outputs(probe_outputs, kept)
    units = {layer.name: layer.n_units for layer in layers}
    names = [layer.name for layer in layers]
    model = target.model
    sampler = _pixel_sampler(target, image_paths)
    connections = connect_layers(model, names, units, sampler, len(image_paths), config.pool)
    if outputs is None or outputs.classifier_layer is None or outputs.classifier_inputs is None:
        return Wiring(outputs, connections)
    width = outputs.classifier_inputs.shape[1]
    outputs = replace(outputs, feeding_layer=feeding_layer(model, names, outputs.classifier_layer, width, units))

    def embed_class_names(class_names: list[str]) -> Tensor:
        template = config.prompt_template
        return encoder.encode_texts([template.format(name) if template else name for name in class_names])

    findings = weight_findings(
        connections, layers, outputs.classifier_layer, class_names, concepts, concept_embeddings, embed_class_names
    )
    return Wiring(outputs, connections, findings)
