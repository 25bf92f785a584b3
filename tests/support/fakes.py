"""Small fake dissection results and a fake job executor, importable by spawned worker processes."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from sqlalchemy import Engine

import dissect_core
from app.core.config import Settings
from app.jobs.dissections import StoredDissection
from app.persistence.store import BeforeCommit, store_run
from dissect_core.analysis.coverage import Coverage
from dissect_core.config import DissectConfig
from dissect_core.data.concepts import concept_set_hash
from dissect_core.data.probe import probe_set_hash
from dissect_core.evaluation.verdict import grade_label
from dissect_core.progress import Progress
from dissect_core.results import (
    ConceptScore,
    DissectionResult,
    LayerEvaluation,
    LayerResult,
    NeuronEvaluation,
    NeuronLabel,
    TopImage,
    WeightedConcept,
)
from dissect_core.run_record import InputIdentities, ResolvedSettings, RunFacts, RunRecord, weights_provenance

VIEW = {"resize": 40, "crop": 32}
CONCEPTS = ["cat", "dog", "striped", "car", "sky", "water"]
#: (name, kind, units, map size or None for a vector layer)
LAYERS = (("layer1", "conv", 6, (4, 4)), ("fc", "linear", 4, None))


class FakeCancelled(RuntimeError):
    """What the fake executor raises when asked to stop (the real pipeline raises DissectionCancelled)."""


def make_images(folder: Path, n: int, seed: int = 0, size: tuple[int, int] = (48, 40)) -> list[str]:
    """Write `n` smooth random RGB images into `folder`; return their paths."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(n):
        small = (rng.random((4, 4, 3)) * 255).astype("uint8")
        path = folder / f"image_{index:03d}.png"
        Image.fromarray(small).resize(size, Image.BILINEAR).save(path)
        paths.append(str(path))
    return paths


def fake_evaluation(unit: int, label: str, *, n_units: int, with_ground_truth: bool) -> NeuronEvaluation:
    """Return a made-up evaluation: even units reliable (r 0.3 and up), odd ones not (r under 0.1, p over 0.2)."""
    reliable = unit % 2 == 0
    explained_r = 0.3 + 0.5 * unit / max(1, n_units) if reliable else 0.02 * unit
    explanation = tuple(
        WeightedConcept(concept, round(0.9 / (rank + 1), 4))
        for rank, concept in enumerate([label, *(c for c in CONCEPTS if c != label)][:3])
    )
    return NeuronEvaluation(
        explained_r=explained_r,
        p_value=1e-4 * (unit + 1) if reliable else 0.2 + 0.05 * unit,
        significant=reliable,
        stability=1.0 if reliable else 0.4,
        explanation=explanation,
        explanation_r=explained_r + 0.1,
        ground_truth_r=explained_r - 0.05 if with_ground_truth else None,
    )


def fake_layer_evaluation(neurons: list[NeuronLabel], n_images: int) -> LayerEvaluation:
    """Return the layer evaluation matching `fake_evaluation`'s neurons."""
    reliable = [n.evaluation.explained_r for n in neurons if n.evaluation is not None and n.evaluation.significant]
    return LayerEvaluation(
        n_folds=5,
        simulation="cosine",
        false_discovery_rate=0.05,
        n_images=n_images,
        null_sd=1 / (max(2, n_images) - 1) ** 0.5,
        reliable_min_r=min(reliable) if reliable else None,
        share_reliable=len(reliable) / max(1, len(neurons)),
    )


def fake_result(
    image_paths: list[str],
    *,
    n_top: int = 3,
    seed: int = 0,
    layers: tuple = LAYERS,
    model: str = "resnet18",
    evaluated: bool = False,
    config: DissectConfig | None = None,
) -> DissectionResult:
    """Return a DissectionResult over the images, with random labels, boxes and activation maps; `evaluated`
    adds `fake_evaluation`s (even units reliable, the linear layer's with a ground-truth r) and layer evaluations.
    Its record's config is `config` when given (a job's), else one of `model` over the images' folder."""
    generator = torch.Generator().manual_seed(seed)
    n_images = len(image_paths)
    image_ids = [hashlib.sha256(Path(path).read_bytes()).hexdigest() for path in image_paths]
    results = []
    for name, kind, units, map_size in layers:
        activations = torch.rand(n_images, units, generator=generator)
        top_indices = activations.T.argsort(dim=1, descending=True)[:, :n_top]
        neurons, tops = [], []
        for unit in range(units):
            order = torch.randperm(len(CONCEPTS), generator=generator).tolist()
            scores = sorted(torch.rand(3, generator=generator).tolist(), reverse=True)
            label = CONCEPTS[order[0]]
            evaluation = (
                fake_evaluation(unit, label, n_units=units, with_ground_truth=kind == "linear") if evaluated else None
            )
            # A ceiling at the reliable units' lowest r (0.3) keeps them at the top grade under any share of it.
            coverage = Coverage(12, "encoder", True, False, f"the probe set has 12 images of '{label}'", ceiling_r=0.3)
            neurons.append(
                NeuronLabel(
                    unit=unit,
                    label=label,
                    score=scores[0],
                    runners_up=tuple(ConceptScore(CONCEPTS[i], s) for i, s in zip(order[1:3], scores[1:], strict=True)),
                    evaluation=evaluation,
                    coverage=coverage,
                    verdict=None if evaluation is None else grade_label(evaluation, coverage, concept=label),
                    clarity=0.5 + 0.4 * unit / units,
                    polysemanticity=0.3 - 0.2 * unit / units,
                    redundancy=0.9 - 0.1 * unit / units,
                )
            )
            unit_tops = []
            for rank, image_index in enumerate(top_indices[unit].tolist()):
                x0, y0 = (torch.rand(2, generator=generator) * 0.5).tolist()
                unit_tops.append(
                    TopImage(
                        rank=rank,
                        image_index=image_index,
                        image_id=image_ids[image_index],
                        activation=float(activations[image_index, unit]),
                        peak=(1, 2) if map_size else None,
                        box=(x0, y0, x0 + 0.5, y0 + 0.5),
                    )
                )
            tops.append(unit_tops)
        maps = torch.rand(units, n_top, *map_size, generator=generator) if map_size else None
        layer_evaluation = fake_layer_evaluation(neurons, n_images) if evaluated else None
        results.append(LayerResult(name, kind, neurons, tops, activations, top_indices, maps, layer_evaluation))
    return DissectionResult(
        record=fake_record(config or fake_config(image_paths, layers, model, n_top), image_ids, n_top),
        image_ids=image_ids,
        image_paths=list(image_paths),
        concepts=list(CONCEPTS),
        layers=results,
        image_embeddings=torch.randn(n_images, 8, generator=generator),
        log_normalisers=torch.randn(n_images, generator=generator),
    )


def fake_config(image_paths: list[str], layers: tuple, model: str, n_top: int) -> DissectConfig:
    """Return the config a fake result's record names by default: `model`'s layers over the images' folder."""
    return DissectConfig(
        model=model,
        layers=tuple(layer[0] for layer in layers),
        probe=str(Path(image_paths[0]).parent),
        encoder="tiny_clip:none",
        similarity_params={"top_k": n_top},
    )


def fake_record(config: DissectConfig, image_ids: list[str], n_top: int) -> RunRecord:
    """Return the record the pipeline would keep of a fake run of `config` over the images: a CPU run, the
    FakeEncoder's view, and the identities and facts of the images and CONCEPTS."""
    return RunRecord(
        config=config,
        resolved=ResolvedSettings(
            device="cpu", similarity_params={"top_k": n_top}, view=(VIEW["resize"], VIEW["crop"])
        ),
        identities=InputIdentities(
            probe_hash=probe_set_hash(image_ids),
            concept_hash=concept_set_hash(CONCEPTS),
            target=f"fake:{config.model}",
            encoder=config.encoder,
            code_version=dissect_core.__version__,
        ),
        facts=RunFacts(
            n_images=len(image_ids),
            n_concepts=len(CONCEPTS),
            timings_s={"load": 0.1},
            weights=weights_provenance(config),
        ),
    )


def job_config(probe: Path, marker: int) -> DissectConfig:
    """Return a valid config for the fake executor; `marker` (stored as max_images) names the job in logs."""
    return DissectConfig(model="resnet18", layers=("layer1", "fc"), probe=str(probe), max_images=marker)


def log_event(settings: Settings, event: str, marker: Any) -> None:
    """Append one line to the executions log (O_APPEND keeps lines whole across processes)."""
    line = f"{event} {marker} {os.getpid()}\n".encode()
    fd = os.open(settings.data_dir / "executions.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_events(settings: Settings) -> list[tuple[str, str]]:
    """Return (event, marker) pairs from the executions log."""
    path = settings.data_dir / "executions.log"
    if not path.exists():
        return []
    return [tuple(line.split()[:2]) for line in path.read_text().splitlines()]  # type: ignore[misc]


def fake_executor(
    settings: Settings,
    config: DissectConfig,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    engine: Engine | None = None,
    before_commit: BeforeCommit | None = None,
    target_model_id: int | None = None,
) -> StoredDissection:
    """Stand-in for execute_dissection: optional slow steps, optional failure, then a real store_run.

    Behaviour comes from `<data_dir>/behaviour.json`: {"steps": N, "step_s": S, "fail": "message"}.
    """
    from dissect_core.errors import DissectError

    behaviour_file = settings.data_dir / "behaviour.json"
    behaviour = json.loads(behaviour_file.read_text()) if behaviour_file.exists() else {}
    marker = config.max_images
    log_event(settings, "start", marker)
    steps = int(behaviour.get("steps", 0))
    for step in range(steps):
        if progress:
            progress("fake", step, steps)
        if should_stop and should_stop():
            log_event(settings, "stopped", marker)
            raise FakeCancelled("stopped on request")
        time.sleep(float(behaviour.get("step_s", 0.0)))
    if behaviour.get("fail") and marker in behaviour.get("fail_markers", [marker]):
        raise DissectError(behaviour["fail"])
    paths = sorted(str(path) for path in Path(config.probe).glob("*.png"))
    result = fake_result(paths, seed=marker or 0, config=config)
    run_id = store_run(engine, settings, result, target_model_id=target_model_id, before_commit=before_commit)
    log_event(settings, "stored", marker)
    return StoredDissection(run_id=run_id, result=result)
