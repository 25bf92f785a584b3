"""A graded run for "which units detect X?": labels with a concept's word forms and its near concepts, and class
names on its final layer.

On the seeded run of dashboard_seed (evaluated: verdicts, r, label-free scores; with coverage artifacts), the fur
units (unit % 8 == 2) of conv1 are relabelled "dogs" and those of blocks.3 "canine"; the striped units
(unit % 8 == 3) of blocks.3 "stripes". `NearWordsEncoder` puts "dog", "dogs", "puppy" and "canine" close to the fur
direction (so "canine" is a near concept of "dog" and "dog" ranks the fur units first), and anything else where the
fake encoder does. The final layer's units are named classes (CLASS_NAMES), unit 1 "goldfinch".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import torch
from sqlalchemy import select, update

from app.persistence.db import write_session
from app.persistence.models import Layer, Neuron, Run
from dissect_core.run_record import RunRecord
from tests.support.dashboard_seed import (
    DIMENSIONS,
    Dashboard,
    FakeEncoder,
    LayerSpec,
    SeededRun,
    add_account,
    add_coverage_artifacts,
    direction,
    prepare_database,
    seed_run,
)

SEARCH_LAYERS = (LayerSpec("conv1", "conv", 64), LayerSpec("blocks.3", "vit", 256), LayerSpec("fc", "linear", 10))
FUR = 2
#: How far each near word leans off the fur direction (towards direction 6): cosines with fur of about 0.95.
NEAR_WORDS = {"dog": 0.30, "dogs": 0.30, "puppy": 0.25, "canine": 0.35}
CLASS_NAMES = (
    "tench",
    "goldfinch",
    "great white shark",
    "tiger shark",
    "hammerhead",
    "electric ray",
    "stingray",
    "cock",
    "hen",
    "ostrich",
)
#: Labels of the relabelled units, by layer.
RELABELLED = {"conv1": (FUR, "dogs"), "blocks.3": (FUR, "canine")}
STRIPES = ("blocks.3", 3, "stripes")


class NearWordsEncoder(FakeEncoder):
    """The fake encoder, with NEAR_WORDS close to the fur direction."""

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Return unit embeddings [T, DIMENSIONS] of the texts."""
        rows = super().encode_texts(texts)
        for row, text in enumerate(texts):
            if text in NEAR_WORDS:
                rows[row] = torch.nn.functional.normalize(direction(FUR) + NEAR_WORDS[text] * direction(6), dim=0)
        return rows


def relabel(dashboard: Dashboard, run: SeededRun, layer: str, every: int, label: str) -> list[int]:
    """Relabel the layer's units `u` with u % DIMENSIONS == every; return them."""
    with write_session(dashboard.engine) as session:
        layer_id = session.scalar(select(Layer.id).where(Layer.run_id == run.run_id, Layer.name == layer))
        units = [
            unit
            for unit in session.scalars(select(Neuron.unit).where(Neuron.layer_id == layer_id))
            if unit % DIMENSIONS == every
        ]
        session.execute(update(Neuron).where(Neuron.layer_id == layer_id, Neuron.unit.in_(units)).values(label=label))
    return sorted(units)


def name_classes(dashboard: Dashboard, run: SeededRun) -> None:
    """Keep CLASS_NAMES in the run's record, as a run of weights with categories does."""
    with write_session(dashboard.engine) as session:
        stored = session.get(Run, run.run_id)
        assert stored is not None
        record = RunRecord.from_json(stored.settings)
        identities = dataclasses.replace(record.identities, class_names=CLASS_NAMES)
        stored.settings = dataclasses.replace(record, identities=identities).to_json()


def build_search_dashboard(data_dir: Path) -> tuple[Dashboard, SeededRun]:
    """Return a dashboard holding one graded run of `searchnet` (see the module's docstring), and that run."""
    settings, engine = prepare_database(data_dir)
    run = seed_run(engine, settings, model_name="searchnet", layers=SEARCH_LAYERS, evaluated=True)
    add_coverage_artifacts(run)
    dashboard = Dashboard(
        settings=settings,
        engine=engine,
        older=run,
        newer=run,
        encoder=NearWordsEncoder(),
        admin_token=add_account(engine, "admin", "admin"),
    )
    for layer, (every, label) in RELABELLED.items():
        relabel(dashboard, run, layer, every, label)
    relabel(dashboard, run, STRIPES[0], STRIPES[1], STRIPES[2])
    name_classes(dashboard, run)
    return dashboard, run
