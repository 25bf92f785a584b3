"""Which weights a run used, as pages, exports and the API show it: a named set (`DEFAULT`), a seeded random
initialisation (`none@SEED`), a checkpoint or TorchScript file (its name and sha256), or a network handed to the
library in memory (its state dict's sha256)."""

from __future__ import annotations

from pathlib import PurePath

from app.read.schemas.runs import WeightsView
from dissect_core.errors import DissectError
from dissect_core.models.in_memory import IN_MEMORY_PREFIX
from dissect_core.names import is_torchscript_name, random_init_seed
from dissect_core.run_record import SHA256_PREFIX, RunRecord

#: How many hex digits of a sha256 the one-line label shows (the field holds all 64).
SHORT_SHA = 12


def _seed(weights: str | None) -> int | None:
    """Return the seed of random weights (`none`, `none@SEED`), else None (also for a malformed seed)."""
    try:
        return random_init_seed(weights) if weights else None
    except DissectError:
        return None


def _sha256(record: RunRecord) -> str | None:
    """Return the recorded hash of the weights: the file's, or an in-memory network's state dict's."""
    for recorded in (record.facts.weights, record.config.weights):
        if recorded and recorded.startswith(SHA256_PREFIX):
            return recorded[len(SHA256_PREFIX) :]
    return None


def weights_view(record: RunRecord, model_name: str) -> WeightsView:
    """Return where a run's weights came from, with its one-line label (`model_name`: the model row's name, which
    names an uploaded checkpoint)."""
    config = record.config
    sha256 = _sha256(record)
    if config.model.startswith(IN_MEMORY_PREFIX):
        name = config.model[len(IN_MEMORY_PREFIX) :]
        return WeightsView(kind="in_memory", name=name, sha256=sha256)
    weights_file = config.checkpoint or (config.model if is_torchscript_name(config.model) else None)
    if weights_file:
        file_name = PurePath(weights_file).name
        if config.checkpoint:
            return WeightsView(kind="checkpoint", name=model_name, sha256=sha256, file_name=file_name)
        return WeightsView(kind="torchscript", name=model_name, sha256=sha256, file_name=file_name)
    seed = _seed(record.facts.weights) if record.facts.weights else _seed(config.weights)
    if seed is not None:
        return WeightsView(kind="random", seed=seed)
    named = record.facts.weights or config.weights
    return WeightsView(kind="pretrained" if named else "unrecorded", name=named)


def weights_label(weights: WeightsView) -> str:
    """Return the weights in one line: `DEFAULT weights`, `random (none@0)`, `checkpoint lite0.pt · sha256 1a2b…`."""
    short = f"sha256 {weights.sha256[:SHORT_SHA]}…" if weights.sha256 else "sha256 not recorded"
    if weights.kind == "in_memory":
        return f"in-memory {weights.name} · state dict {short}"
    if weights.kind in ("checkpoint", "torchscript"):
        what = "checkpoint" if weights.kind == "checkpoint" else "TorchScript"
        return f"{what} {weights.file_name} · {short}"
    if weights.kind == "random":
        return f"random (none@{weights.seed})"
    if weights.kind == "pretrained":
        return f"{weights.name} weights"
    return "weights not recorded"
