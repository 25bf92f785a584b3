"""A stored run rebuilt for a job that runs its model again: for interventions and sweeps (`load_run_inputs`) its
target as the record describes it, its probe set checked against the record's hash, the recorded outputs and
downstream activations, its class names and its labels, and text embeddings with the run's encoder; for one
uploaded image only its model (`load_run_model`), so a run whose probe folder moved still reads images."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.persistence.models import Layer, Neuron, ProbeImage, Run
from app.persistence.store.layout import ArtifactsLayout
from app.read.artifacts.activations import ActivationsUnavailable, load_layer_activations
from app.read.artifacts.reader import ArtifactsReader
from app.read.classes.names import comparable
from dissect_core.config import DissectConfig
from dissect_core.errors import DissectError
from dissect_core.names import DEFAULT_PROBE_SAMPLE_SEED
from dissect_core.run_record import RunRecord

if TYPE_CHECKING:
    import torch

    from dissect_core.data.probe import ProbeSet
    from dissect_core.encoders import ImageTextEncoder
    from dissect_core.models.targets import Target


@dataclass
class RunInputs:
    """What a job needs to run a stored run's model again, on `device`.

    `readable` are the probe positions of the run's stored images (stored order); `baseline_logits` [P, C] the
    recorded outputs placed at their probe positions (float16, as stored; None for a run stored before outputs were
    kept); `labels` each probe image's class index (None where its label names no class).
    """

    run_id: int
    config: DissectConfig
    record: RunRecord
    target: Target
    probe: ProbeSet
    readable: list[int]
    baseline_logits: torch.Tensor | None
    labels: list[int | None]
    class_names: tuple[str, ...] | None
    layers: list[str]
    device: torch.device


def recorded_config(run: Run, settings: Settings) -> tuple[RunRecord, DissectConfig]:
    """Return the run's record and the config it was asked with, its files found under the data folder."""
    record = RunRecord.from_json(run.settings)
    return record, DissectConfig.from_dict(record.config.to_dict(), base_dir=settings.data_dir)


def _probe_set(run: Run, record: RunRecord, config: DissectConfig, settings: Settings) -> ProbeSet:
    """Return the run's probe set as its record names it, or raise when it is gone or its images changed."""
    from dissect_core.data.probe import load_probe

    seed = record.identities.sample_seed if record.identities.sample_seed is not None else DEFAULT_PROBE_SAMPLE_SEED
    fix = f"restore the images run {run.id} was dissected on, or dissect the model again on the new ones"
    try:
        probe = load_probe(config.probe, config.labels_file, config.max_images, settings.data_dir, seed)
    except DissectError as error:
        raise DissectError(f"run {run.id}'s probe set cannot be loaded ({error}); {fix}") from None
    expected = record.identities.probe_hash or run.probe_set.content_hash
    if probe.content_hash != expected:
        raise DissectError(
            f"run {run.id}'s probe folder changed since it was dissected (its images hash to "
            f"{probe.content_hash[:12]}, the run's to {expected[:12]}); {fix}"
        )
    return probe


def _readable_positions(session: Session, run: Run, probe: ProbeSet) -> list[int]:
    """Return the probe positions of the run's stored (readable) images, in stored order."""
    hashes = session.scalars(
        select(ProbeImage.content_hash).where(ProbeImage.run_id == run.id).order_by(ProbeImage.index)
    ).all()
    positions: list[int] = []
    cursor = 0
    for content_hash in hashes:  # stored images keep probe order, so one forward scan matches them
        while cursor < len(probe.images) and probe.images[cursor].content_hash != content_hash:
            cursor += 1
        if cursor == len(probe.images):
            raise DissectError(
                f"run {run.id} stored an image its probe folder no longer holds in that order; dissect the model again"
            )
        positions.append(cursor)
        cursor += 1
    return positions


def _class_labels(probe: ProbeSet, class_names: Sequence[str] | None) -> list[int | None]:
    """Return each probe image's class index, by its label's name (None where it names no class)."""
    if not class_names:
        return [None] * len(probe)
    index = {comparable(name): position for position, name in enumerate(class_names)}
    return [index.get(comparable(image.label)) if image.label else None for image in probe.images]


def _check_target(run: Run, record: RunRecord, target: Target) -> None:
    recorded = record.identities.target
    if recorded is not None and target.identity != recorded:
        raise DissectError(
            f"run {run.id}'s model is no longer what it was dissected with ({target.identity} now, {recorded} then: "
            "was its checkpoint replaced?); restore the checkpoint, or dissect the model again"
        )


@dataclass
class RunModel:
    """A stored run's model rebuilt on `device`, without its probe set: what a job on one image needs."""

    run_id: int
    config: DissectConfig
    record: RunRecord
    target: Target
    class_names: tuple[str, ...] | None
    layers: list[str]
    device: torch.device


def load_run_model(session: Session, settings: Settings, run: Run) -> RunModel:
    """Return the stored run's model rebuilt on this machine's device (CUDA when present, else the CPU), checked
    against the record, or raise DissectError naming what is missing and the fix. Its probe images are not read."""
    return _rebuilt_model(session, run, *recorded_config(run, settings))


def _rebuilt_model(session: Session, run: Run, record: RunRecord, config: DissectConfig) -> RunModel:
    from dissect_core.models.targets import load_target
    from dissect_core.pipeline import choose_device

    device = choose_device(None)
    preprocessing = dict(record.resolved.preprocessing) or dict(config.preprocessing or {})
    target = load_target(config.model, config.weights, config.checkpoint, device, preprocessing)
    _check_target(run, record, target)
    layers = list(session.scalars(select(Layer.name).where(Layer.run_id == run.id).order_by(Layer.position)))
    return RunModel(run.id, config, record, target, record.identities.class_names, layers, device)


def stored_image_count(session: Session, run_id: int) -> int:
    """Return how many probe images the run stored (its readable ones)."""
    return session.scalar(select(func.count()).select_from(ProbeImage).where(ProbeImage.run_id == run_id)) or 0


def load_run_inputs(session: Session, settings: Settings, run: Run, reader: ArtifactsReader) -> RunInputs:
    """Return the stored run rebuilt on this machine's device with its probe set checked against the record's hash
    (`load_run_model`, then the probe set), or raise DissectError naming what is missing and the fix."""
    import torch

    record, config = recorded_config(run, settings)
    probe = _probe_set(run, record, config, settings)  # before the model: a moved folder is the commoner problem
    model = _rebuilt_model(session, run, record, config)
    readable = _readable_positions(session, run, probe)
    outputs = reader.outputs(run.artifacts_dir)
    baseline = None
    if outputs is not None and outputs.logits.shape[0] == len(readable):
        baseline = torch.zeros(len(probe), outputs.logits.shape[1], dtype=torch.float16)
        baseline[readable] = outputs.logits.to(torch.float16)  # stored as float16: compared at that precision
    return RunInputs(
        run.id, model.config, model.record, model.target, probe, readable, baseline,
        _class_labels(probe, model.class_names), model.class_names, model.layers, model.device,
    )  # fmt: skip


def downstream_baselines(
    settings: Settings, run: Run, inputs: RunInputs, layers: Sequence[str]
) -> dict[str, torch.Tensor]:
    """Return the stored pooled activations of `layers` placed at their probe positions (layers whose activations
    were not stored are left out: the intervention records them in a plain pass)."""
    import torch

    layout = ArtifactsLayout.of_run(run.artifacts_dir, settings.data_dir)
    baselines = {}
    for layer in layers:
        try:
            stored = load_layer_activations(layout, layer, len(inputs.readable))
        except ActivationsUnavailable:
            continue
        placed = torch.zeros(len(inputs.probe), stored.shape[1], dtype=stored.dtype)
        placed[inputs.readable] = stored
        baselines[layer] = placed
    return baselines


def unit_labels(session: Session, run_id: int, layer: str, units: Sequence[int] | None = None) -> dict[int, str]:
    """Return the labels of a layer's units (all, or `units`), by unit."""
    query = select(Neuron.unit, Neuron.label).join(Layer, Neuron.layer_id == Layer.id)
    query = query.where(Layer.run_id == run_id, Layer.name == layer)
    if units is not None:
        query = query.where(Neuron.unit.in_(list(units)))
    return {unit: label for unit, label in session.execute(query).tuples()}


def embed_texts(
    settings: Settings, encoder: ImageTextEncoder, texts: Sequence[str], template: str | None
) -> torch.Tensor:
    """Return the [T, E] text embeddings of `texts` (with the run's prompt template), from the cache when kept."""
    from dissect_core.data.cache import TensorCache, cache_key

    digest = hashlib.sha256(json.dumps(list(texts)).encode()).hexdigest()
    cache = TensorCache(settings.cache_dir)
    key = cache_key("text", encoder.identity, template, digest)
    cached = cache.load("text", key)
    if cached is not None:
        return cached["embeddings"]
    prompts = [template.format(text) for text in texts] if template else list(texts)
    embeddings = encoder.encode_texts(prompts).detach().float().cpu()
    cache.save("text", key, {"embeddings": embeddings})
    return embeddings
