"""The one way to run and store a dissection (CLI, demo, upload form, worker) and to queue one."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.jobs.queue import enqueue
from app.persistence.db import create_db_engine, upgrade_database
from app.persistence.store import BeforeCommit, ViewLoader, store_run
from dissect_core.config import DissectConfig
from dissect_core.errors import DissectError
from dissect_core.results import DissectionResult
from dissect_core.similarity.functions import resolve_similarity_params

Progress = Callable[[str, int, int], None]
BUILTIN_PROBES = ("cifar100",)
BUILTIN_CONCEPTS = ("20k", "imagenet", "cifar100")
REQUIRED_PARAMS = ("model", "layers", "probe")
MODEL_FILE_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript", ".jit")


def execute_dissection(
    settings: Settings,
    config: DissectConfig,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    engine: Engine | None = None,
    before_commit: BeforeCommit | None = None,
    load_view: ViewLoader | None = None,
    return_result: bool = False,
) -> int | tuple[int, DissectionResult]:
    """Run the dissection and store it; return the run id (and the result with `return_result=True`).

    Without `engine` the settings' database is migrated first and a private engine is used.
    `before_commit(session, run_id)` runs inside the storing transaction and may raise to abort it.
    """
    from dissect_core.pipeline import run_dissection  # heavy (torch models); only needed here

    config = validate_config(config)
    settings.ensure_dirs()
    own_engine = engine is None
    if own_engine:
        upgrade_database(settings)
        engine = create_db_engine(settings.database_url)
    try:
        result = run_dissection(
            config,
            cache_dir=settings.cache_dir,
            progress=progress,
            should_stop=should_stop,
            data_dir=settings.data_dir,
        )
        run_id = store_run(
            engine,
            settings,
            result,
            config=config,
            load_view=load_view,
            progress=progress,
            should_stop=should_stop,
            before_commit=before_commit,
        )
    finally:
        if own_engine:
            engine.dispose()
    return (run_id, result) if return_result else run_id


def submit_dissection(session: Session, config: DissectConfig) -> int:
    """Validate the config, queue it as a job and commit; return the job id. Bad input queues nothing."""
    config = validate_config(config)
    # Checked here rather than in validate_config: it imports torchvision, which workers load only when a
    # dissection runs (and the pipeline checks the pooling again there).
    from dissect_core.activations import POOLING

    if config.pool not in POOLING:
        raise DissectError(f"unknown pooling {config.pool!r}; use one of {', '.join(POOLING)}")
    job = enqueue(session, config_to_params(config))
    session.commit()
    return job.id


def config_to_params(config: DissectConfig) -> dict[str, Any]:
    """Return a config as the JSON stored in a job's params."""
    return config.to_dict()


def config_from_params(params: Mapping[str, Any]) -> DissectConfig:
    """Return the validated DissectConfig a job's params describe, or raise DissectError saying what is wrong."""
    if not isinstance(params, Mapping):
        raise DissectError("job parameters must be a JSON object of dissection settings; submit the job again")
    known = [spec.name for spec in fields(DissectConfig)]
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise DissectError(f"unknown setting(s) {', '.join(unknown)}; the settings are: {', '.join(known)}")
    missing = [name for name in REQUIRED_PARAMS if params.get(name) in (None, "", [])]
    if missing:
        raise DissectError(f"missing setting(s) {', '.join(missing)}; give the model, its layers and a probe set")
    values = dict(params)
    layers = values["layers"]
    if isinstance(layers, str):
        layers = [name.strip() for name in layers.split(",") if name.strip()]
    if not isinstance(layers, list | tuple):
        raise DissectError("layers must be a list of layer names, e.g. ['layer3', 'layer4']")
    values["layers"] = tuple(layers)
    return validate_config(DissectConfig(**values))


def validate_config(config: DissectConfig) -> DissectConfig:
    """Check types, ranges and that named files exist; return the config with those paths made absolute."""
    _check_text(config.model, "model", "a torchvision name such as resnet18, timm:NAME, or a TorchScript file")
    if not config.layers or not all(isinstance(name, str) and name.strip() for name in config.layers):
        raise DissectError("layers must be one or more layer names; list them with `neuron-atlas layers`")
    if len(set(config.layers)) != len(config.layers):
        raise DissectError(f"layers {list(config.layers)} repeat a name; give each layer once")
    for name, value in (("encoder", config.encoder), ("similarity", config.similarity), ("pool", config.pool)):
        _check_text(value, name, "see `neuron-atlas dissect --help`")
    if not isinstance(config.similarity_params, dict) or not all(
        isinstance(key, str) for key in config.similarity_params
    ):
        raise DissectError("similarity_params must map parameter names to values, e.g. {'top_k': 20}")
    # Names the similarity function and its parameters; the probe set size only matters when it runs.
    resolve_similarity_params(config.similarity, config.similarity_params, n_images=1_000_000)
    for name in ("weights", "prompt_template", "device"):
        value = getattr(config, name)
        if value is not None and not isinstance(value, str):
            raise DissectError(f"{name} must be text or left out, not {value!r}")
    _check_count(config.n_top_images, "n_top_images", allow_none=False)
    _check_count(config.batch_size, "batch_size", allow_none=False)
    _check_count(config.max_images, "max_images", allow_none=True)
    changes: dict[str, Any] = {}
    probe = _check_text(config.probe, "probe", "a folder of images or cifar100")
    if probe not in BUILTIN_PROBES:
        changes["probe"] = _existing(probe, "probe folder", f"give a folder of images or one of {BUILTIN_PROBES}")
        if not Path(changes["probe"]).is_dir():
            raise DissectError(f"probe {probe} is a file, not a folder; give the folder that holds the images")
    concepts = _check_text(config.concepts, "concepts", "20k, imagenet, cifar100 or a text file")
    if concepts not in BUILTIN_CONCEPTS:
        hint = f"give a text file with one concept per line or one of {', '.join(BUILTIN_CONCEPTS)}"
        changes["concepts"] = _existing(concepts, "concept file", hint)
    if config.model.lower().endswith(MODEL_FILE_SUFFIXES) or Path(config.model).is_file():
        changes["model"] = _existing(config.model, "model file", "give the path of a TorchScript file")
    for name, label in (("checkpoint", "checkpoint file"), ("labels_file", "labels file")):
        value = getattr(config, name)
        if value is not None:
            _check_text(value, name, f"the path of the {label}")
            changes[name] = _existing(value, label, f"check the path of the {label}")
    return replace(config, **changes) if changes else config


def _check_text(value: object, name: str, hint: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DissectError(f"{name} must be non-empty text ({hint}), not {value!r}")
    return value.strip()


def _check_count(value: object, name: str, *, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DissectError(f"{name} must be a whole number of at least 1, not {value!r}")


def _existing(path_text: str, what: str, hint: str) -> str:
    path = Path(path_text).expanduser()
    if not path.exists():
        raise DissectError(f"{what} {path_text} does not exist; {hint}")
    return str(path.resolve())
