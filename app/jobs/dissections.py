"""The one way to run and store a dissection (CLI, demo, upload form, worker) and to queue one."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.paths import stored_settings
from app.jobs.queue.jobs import enqueue
from app.jobs.runs.neuron_tables import write_neuron_tables
from app.persistence.db import create_db_engine, upgrade_database
from app.persistence.store import BeforeCommit, ViewLoader, store_run
from dissect_core.config import EXECUTION_SETTINGS, DissectConfig
from dissect_core.data.concepts import BUILT_IN_CONCEPT_SETS
from dissect_core.errors import DissectError
from dissect_core.names import BUILT_IN_PROBE_SETS, TORCHSCRIPT_SUFFIXES, is_torchscript_name
from dissect_core.progress import Progress
from dissect_core.results import DissectionResult


@dataclass(frozen=True)
class StoredDissection:
    """A finished dissection: its result and the id of the run it was stored as."""

    run_id: int
    result: DissectionResult


def execute_dissection(
    settings: Settings,
    config: DissectConfig,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    engine: Engine | None = None,
    before_commit: BeforeCommit | None = None,
    load_view: ViewLoader | None = None,
    target_model_id: int | None = None,
) -> StoredDissection:
    """Run the dissection and store it; return the result with its run id.

    `config` must have been checked by `validate_config` (the entry points do; this does not check it again).
    Without `engine` the settings' database is migrated first and a private engine is used.
    `before_commit(session, run_id)` runs inside the storing transaction and may raise to abort it; the run
    joins the model row `target_model_id` when given (an uploaded checkpoint's). The stored run's neuron-page
    tables are written right after (app.jobs.runs.neuron_tables).
    """
    from dissect_core.pipeline import run_dissection  # heavy (torch models); only needed here

    settings.ensure_dirs()
    private_engine = None
    if engine is None:
        upgrade_database(settings)
        engine = private_engine = create_db_engine(settings.database_url)
    try:
        result = run_dissection(
            config, cache_dir=settings.cache_dir, progress=progress, should_stop=should_stop, data_dir=settings.data_dir
        )
        run_id = store_run(
            engine,
            settings,
            result,
            target_model_id=target_model_id,
            load_view=load_view,
            progress=progress,
            should_stop=should_stop,
            before_commit=before_commit,
        )
        write_neuron_tables(settings, engine, run_id, progress)
    finally:
        if private_engine is not None:
            private_engine.dispose()
    return StoredDissection(run_id=run_id, result=result)


def submit_dissection(
    session: Session,
    config: DissectConfig,
    *,
    owner_id: int | None = None,
    data_dir: Path | None = None,
    parent_run_id: int | None = None,
    target_model_id: int | None = None,
) -> int:
    """Validate the config and add it as a queued job of `owner_id` to the caller's transaction; return the job id.

    Files under `data_dir` are kept relative to it; a relabel names the run it relabels (`parent_run_id`), and a job
    whose run belongs to a model row already added (an upload's) names that row (`target_model_id`). Bad input adds
    nothing. The caller owns the transaction and commits it (e.g. `with write_session(engine)`).
    """
    config = validate_config(config)
    params = config_to_params(config, data_dir)
    job = enqueue(session, params, owner_id=owner_id, parent_run_id=parent_run_id, target_model_id=target_model_id)
    return job.id


def config_to_params(config: DissectConfig, data_dir: Path | None = None) -> dict[str, Any]:
    """Return a config as the JSON stored in a job's params, its files and folders under `data_dir` relative to it
    (a moved data folder keeps working). Where it runs is left out: the worker that claims it decides, and the
    same dissection asked for on two executors is one job."""
    params = {key: value for key, value in config.to_dict().items() if key not in EXECUTION_SETTINGS}
    return stored_settings(params, data_dir) if data_dir is not None else params


def config_from_params(params: Mapping[str, Any], data_dir: Path | None = None) -> DissectConfig:
    """Return the checked DissectConfig a job's params describe (relative files under `data_dir`), or raise
    DissectError saying what is wrong: the one check of a claimed job."""
    return validate_config(DissectConfig.from_dict(params, base_dir=data_dir))


def validate_config(config: DissectConfig) -> DissectConfig:
    """Check the settings and that named files exist; return the config with those paths made absolute.

    The one check of a config: every entry point (the CLI, the demo, the upload form, `submit_dissection`, the
    worker claiming a job) calls it once, and what runs the config after it trusts it."""
    config.validate()
    changes: dict[str, Any] = {}
    probe = config.probe.strip()
    if probe not in BUILT_IN_PROBE_SETS:
        hint = f"give a folder of images or one of {', '.join(BUILT_IN_PROBE_SETS)}"
        changes["probe"] = _existing(probe, "probe folder", hint)
        if not Path(changes["probe"]).is_dir():
            raise DissectError(f"probe {probe} is a file, not a folder; give the folder that holds the images")
    concepts = config.concepts.strip()
    if concepts not in BUILT_IN_CONCEPT_SETS:
        hint = f"give a text file with one concept per line or one of {', '.join(BUILT_IN_CONCEPT_SETS)}"
        changes["concepts"] = _existing(concepts, "concept file", hint)
    if is_torchscript_name(config.model):
        changes["model"] = _existing(config.model, "model file", "give the path of a TorchScript file")
    elif Path(config.model).suffix and Path(config.model).is_file():
        # The loader reads a file only by these suffixes; anything else would reach it as an architecture name.
        raise DissectError(
            f"model file {config.model} does not end in {', '.join(TORCHSCRIPT_SUFFIXES)}; save it with "
            "torch.jit.save under such a name, or pass a state dict as the checkpoint with its architecture as model"
        )
    for name, label in (("checkpoint", "checkpoint file"), ("labels_file", "labels file")):
        value = getattr(config, name)
        if value is not None:
            changes[name] = _existing(value, label, f"check the path of the {label}")
    return replace(config, **changes) if changes else config


def _existing(path_text: str, what: str, hint: str) -> str:
    path = Path(path_text).expanduser()
    if not path.exists():
        raise DissectError(f"{what} {path_text} does not exist; {hint}")
    return str(path.resolve())
