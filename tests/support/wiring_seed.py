"""A seeded run's wiring, stored through the store's writer, with answers known by hand.

The newer seeded run (conv1 64 units, blocks.3 2,048, fc 10) gets: class names for fc's 10 units; a toy classifier
fc fed by blocks.3 (weight W [10, 2048], inputs x [N, 2048] with logits x·Wᵀ + b); connections conv1 → blocks.3
(attribution over ATTRIBUTION_IMAGES images) and blocks.3 → fc (the weights W); and one weight finding."""

from __future__ import annotations

import dataclasses

import torch
from sqlalchemy import Engine

from app.persistence.db import write_session
from app.persistence.models import Run
from app.persistence.store.analysis_files import save_agreement, save_connections, save_outputs
from app.persistence.store.layout import ArtifactsLayout
from dissect_core.analysis.connections import LayerConnections
from dissect_core.analysis.outputs import ModelOutputs
from dissect_core.analysis.weight_agreement import WeightConceptAgreement
from dissect_core.run_record import RunRecord
from tests.support.dashboard_seed import N_IMAGES, SeededRun

CLASS_NAMES = (
    "goldfinch",
    "tricycle",
    "jean, blue jean, denim",
    "zebra",
    "water ouzel, dipper",
    "brick wall",
    "sky lantern",
    "grass snake",
    "fur coat",
    "wheel",
)
FEEDING_LAYER, CLASS_LAYER, FIRST_LAYER = "blocks.3", "fc", "conv1"
ATTRIBUTION_IMAGES = 32
#: The unit of blocks.3 that drives every class most (its weight to each class and its features are large).
STRONG_UNIT = 7
CURVE = [(4, 0.62), (8, 0.58), (16, 0.55), (32, 0.52)]


def classifier_weight() -> torch.Tensor:
    """Return W [10, 2048]: small signed weights, unit STRONG_UNIT weighing 2 + c/10 into class c."""
    weight = (torch.rand(len(CLASS_NAMES), 2048, generator=torch.Generator().manual_seed(5)) - 0.5) / 10
    weight[:, STRONG_UNIT] = 2.0 + torch.arange(len(CLASS_NAMES)) / 10
    return weight


def classifier_inputs() -> torch.Tensor:
    """Return x [N, 2048] >= 0 (after an activation), exact in float16 (as stored): multiples of 1/8 up to 1."""
    inputs = torch.randint(0, 9, (N_IMAGES, 2048), generator=torch.Generator().manual_seed(6)).float() / 8
    inputs[:, STRONG_UNIT] = 4.0
    return inputs


def classifier_bias() -> torch.Tensor:
    """Return b [10]: image i is predicted as class i % 10 by a wide margin."""
    return torch.zeros(len(CLASS_NAMES))


def seeded_logits() -> torch.Tensor:
    """Return the logits [N, 10]: x·Wᵀ + b, plus 50 on class i % 10 for image i (so each class has predictions)."""
    logits = classifier_inputs() @ classifier_weight().T + classifier_bias()
    logits[torch.arange(N_IMAGES), torch.arange(N_IMAGES) % len(CLASS_NAMES)] += 50.0
    return logits


def attribution_weights() -> torch.Tensor:
    """Return conv1 → blocks.3 attribution [2048, 64]: signed, unit 0 of blocks.3 fed most by conv1 unit 3 (−)."""
    weights = torch.rand(2048, 64, generator=torch.Generator().manual_seed(7)) - 0.5
    weights[0, 3] = -5.0
    return weights


def write_wiring(run: SeededRun, engine: Engine) -> None:
    """Store the run's outputs, connections and weight finding through the writer, and its class names."""
    layout = ArtifactsLayout(run.artifacts_dir)
    save_outputs(
        layout,
        ModelOutputs(
            logits=seeded_logits(),
            classifier_layer=CLASS_LAYER,
            classifier_inputs=classifier_inputs(),
            classifier_weight=classifier_weight(),
            classifier_bias=classifier_bias(),
            feeding_layer=FEEDING_LAYER,
        ),
    )
    save_connections(
        layout,
        [
            LayerConnections(
                FIRST_LAYER,
                FEEDING_LAYER,
                "attribution",
                attribution_weights(),
                ATTRIBUTION_IMAGES,
                False,
                "map × gradient, summed over space",
            ),
            LayerConnections(FEEDING_LAYER, CLASS_LAYER, "weight", classifier_weight(), None, False, "fc.weight"),
        ],
    )
    save_agreement(
        layout,
        [WeightConceptAgreement(FEEDING_LAYER, CLASS_LAYER, 0.12, 0.01, 0.386, 0.5, CURVE)],
    )
    with write_session(engine) as session:
        stored = session.get(Run, run.run_id)
        assert stored is not None
        record = RunRecord.from_json(stored.settings)
        identities = dataclasses.replace(record.identities, class_names=CLASS_NAMES)
        stored.settings = dataclasses.replace(record, identities=identities).to_json()
