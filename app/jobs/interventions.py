"""Interventions on a stored run (#23): queue one (the API, the neuron page), run it in the worker and store its
effect; and the run-wide sweep, which zeroes every unit of a layer (or a list) and stores each one's label–effect
agreement (the worker, the CLI).

An intervention's result is stored as JSON in its `interventions` row rather than as a file among the run's
artifacts: it is small (a few kB plus one entry per class), it is written in the same transaction that marks its
job succeeded (a requeued job never leaves a second result, nor a file without a row), and deleting the run
deletes it with the run's other rows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.jobs.queue.jobs import REUSABLE_STATES, enqueue, params_sha256, succeed_in_session
from app.jobs.queue.quotas import check_queued_jobs
from app.jobs.run_inputs import (
    RunInputs,
    downstream_baselines,
    embed_texts,
    load_run_inputs,
    unit_labels,
)
from app.persistence.db import write_session
from app.persistence.models import Intervention, Job, JobState, Layer, Run, UnitSweep, User, utcnow
from app.read.artifacts.reader import ArtifactsReader
from app.read.runs.queries import get_run
from dissect_core.errors import DissectError
from dissect_core.interventions.batches import InterventionCancelled
from dissect_core.interventions.modes import (
    DEFAULT_MAX_INTERVENTION_IMAGES,
    INTERVENTION_MODES,
    InterventionSpec,
    check_spec,
)
from dissect_core.progress import Progress

if TYPE_CHECKING:
    from dissect_core.interventions.effects import InterventionEffect, LabelEffectAgreement
    from dissect_core.interventions.sweep import UnitSweepResult

#: The job kinds this module runs (app.jobs.queue.kinds).
INTERVENTION_JOB = "intervention"
SWEEP_JOB = "sweep"
#: The seed of the sample of probe images an intervention or sweep runs over when the run has more than the bound.
SAMPLE_SEED = 0
#: The most units one sweep zeroes (each in turn over at most DEFAULT_MAX_INTERVENTION_IMAGES images); a wider
#: layer is swept in parts (`--units`).
MAX_SWEEP_UNITS = 2048


def layer_units(session: Session, run_id: int) -> dict[str, int]:
    """Return the run's dissected layers (forward order) and their numbers of units."""
    rows = session.execute(
        select(Layer.name, Layer.n_units).where(Layer.run_id == run_id).order_by(Layer.position)
    ).tuples()
    return dict(rows.all())


def checked_spec(
    session: Session, run_id: int, layer: str, units: object, mode: str, factor: object
) -> InterventionSpec:
    """Return the request as a checked InterventionSpec of the run, or raise DissectError naming the run's layers,
    the layer's units and the modes (the one check of a request: the route, the CLI and the worker call it)."""
    get_run(session, run_id)
    spec = InterventionSpec(layer, tuple(units) if isinstance(units, list) else units, mode, factor)  # type: ignore[arg-type]
    try:
        return check_spec(spec, layer_units(session, run_id))
    except DissectError as error:
        raise DissectError(f"{error} (modes: {', '.join(INTERVENTION_MODES)})") from None


def intervention_params(run_id: int, spec: InterventionSpec) -> dict[str, Any]:
    """Return what identifies an intervention (its job's params): run, layer, units, mode and factor."""
    return {"run_id": run_id, "layer": spec.layer, "units": list(spec.units), "mode": spec.mode, "factor": spec.factor}


def _effective_status(row: Intervention) -> str:
    """Return the intervention's status: its job's while the job exists, else the row's."""
    return row.job.status if row.job is not None and row.status != JobState.SUCCEEDED else row.status


def identical_intervention(session: Session, params: dict[str, Any]) -> Intervention | None:
    """Return the newest queued, running or succeeded intervention with exactly these params, or None."""
    candidates = session.scalars(
        select(Intervention)
        .where(Intervention.params_sha256 == params_sha256(params), Intervention.run_id == params["run_id"])
        .order_by(Intervention.id.desc())
    )
    for row in candidates:
        if intervention_params(row.run_id, _spec_of(row)) == params and _effective_status(row) in REUSABLE_STATES:
            return row
    return None


def _spec_of(row: Intervention) -> InterventionSpec:
    return InterventionSpec(row.layer, tuple(row.units), row.mode, row.factor)  # type: ignore[arg-type]


def submit_intervention(
    session: Session,
    settings: Settings,
    run_id: int,
    request: tuple[str, object, str, object],
    *,
    owner: User | None = None,
) -> Intervention:
    """Check an intervention request (layer, units, mode, factor) on the run and queue it as a job of `owner`
    (within their queue limit); return its row, or the row of an identical queued, running or succeeded one.
    Bad input adds nothing; the caller commits (e.g. `with write_session(engine)`)."""
    spec = checked_spec(session, run_id, *request)
    params = intervention_params(run_id, spec)
    same = identical_intervention(session, params)
    if same is not None:
        return same
    check_queued_jobs(session, settings, owner)
    owner_id = owner.id if owner is not None else None
    job = enqueue(session, params, INTERVENTION_JOB, owner_id=owner_id)
    row = Intervention(
        run_id=run_id,
        layer=spec.layer,
        units=list(spec.units),
        mode=spec.mode,
        factor=spec.factor,
        params_sha256=params_sha256(params),
        status=JobState.QUEUED.value,
        job_id=job.id,
        owner_id=owner_id,
    )
    session.add(row)
    session.flush()
    return row


def _ablates(spec: InterventionSpec) -> bool:
    """Return whether the intervention takes the unit's signal away (what label–effect agreement measures)."""
    return spec.mode in ("zero", "mean") or (spec.factor is not None and abs(spec.factor) < 1)


def _sample(inputs: RunInputs) -> list[int]:
    """Return the probe positions an intervention runs over: the stored images, sampled down to the bound."""
    from dissect_core.interventions.batches import sample_images

    chosen = sample_images(len(inputs.readable), DEFAULT_MAX_INTERVENTION_IMAGES, SAMPLE_SEED)
    return [inputs.readable[index] for index in chosen]


def _batches(inputs: RunInputs, positions: Sequence[int]) -> Any:
    from dissect_core.interventions.batches import probe_batches

    return probe_batches(inputs.probe, positions, inputs.target.preprocessing, inputs.config.batch_size)


def _progress_of(progress: Progress | None, inputs: RunInputs, positions: Sequence[int]) -> Progress | None:
    """Return a progress report counting batches out of the number the images make."""
    if progress is None:
        return None
    total = math.ceil(len(positions) / inputs.config.batch_size)
    return lambda stage, done, _total: progress(stage, done, total)


def _agreement_json(agreement: LabelEffectAgreement | None) -> dict[str, Any] | None:
    return None if agreement is None else {**asdict(agreement), "top_classes": list(agreement.top_classes)}


def _label_agreement(
    settings: Settings, inputs: RunInputs, label: str | None, effect: InterventionEffect
) -> LabelEffectAgreement | None:
    """Return the label's agreement with the classes the intervention hurt most (None without a label or class
    names, or when the class names do not match the model's outputs)."""
    from dissect_core.encoders import load_encoder
    from dissect_core.interventions.effects import label_effect_agreement

    names = inputs.class_names
    if label is None or not names or len(names) != len(effect.classes):
        return None
    encoder = load_encoder(inputs.config.encoder, inputs.device)
    template = inputs.config.prompt_template
    label_embedding = embed_texts(settings, encoder, [label], template)[0]
    return label_effect_agreement(label_embedding, embed_texts(settings, encoder, names, template), effect.classes)


def compute_intervention(
    session: Session,
    settings: Settings,
    run: Run,
    spec: InterventionSpec,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Run the intervention on the run's model over its probe images and return its result as stored: the effect
    (every class, most hurt first), the downstream units with their labels, and the label–effect agreement.

    Everything is read from `session` first; its transaction then ends (rolled back), so that no read transaction
    stays open through the forward passes."""
    from dissect_core.interventions.effects import run_intervention
    from dissect_core.interventions.hooks import unit_mean_maps

    inputs = load_run_inputs(session, settings, run, ArtifactsReader(settings.data_dir))
    downstream = inputs.layers[inputs.layers.index(spec.layer) + 1 :]
    label = unit_labels(session, run.id, spec.layer, spec.units).get(spec.units[0]) if len(spec.units) == 1 else None
    downstream_labels = {layer: unit_labels(session, run.id, layer) for layer in downstream}
    baseline_downstream = downstream_baselines(settings, run, inputs, downstream)
    session.rollback()
    positions = _sample(inputs)
    model = inputs.target.model
    unit_means = None
    if spec.mode == "mean":
        unit_means = unit_mean_maps(
            model, spec.layer, _batches(inputs, positions), spec.units, device=inputs.device, should_stop=should_stop
        )
    effect = run_intervention(
        model,
        spec.layer,
        spec,
        _batches(inputs, positions),
        baseline_logits=inputs.baseline_logits,
        downstream_layers=downstream,
        baseline_downstream=baseline_downstream,
        labels=inputs.labels,
        class_names=inputs.class_names,
        unit_means=unit_means,
        should_stop=should_stop,
        progress=_progress_of(progress, inputs, positions),
        device=inputs.device,
        pool=inputs.config.pool,
    )
    agreement = _label_agreement(settings, inputs, label, effect) if _ablates(spec) else None
    result = asdict(effect)
    result["image_indices"] = list(effect.image_indices)
    result["downstream"] = [
        {**asdict(unit), "label": downstream_labels.get(unit.layer, {}).get(unit.unit)} for unit in effect.downstream
    ]
    result["label_effect_agreement"] = _agreement_json(agreement)
    result["label"] = label
    result["device"] = str(inputs.device)
    return result


def stop_if_cancelled(should_stop: Callable[[], bool] | None) -> None:
    """Raise InterventionCancelled when the job was cancelled while it ran: the last progress report (always
    written) may have brought the cancel after the library's last check, and the result must not be stored then."""
    if should_stop is not None and should_stop():
        raise InterventionCancelled("the job was cancelled before its result was stored")


def run_intervention_job(
    engine: Engine, settings: Settings, job: Job, progress: Progress, should_stop: Callable[[], bool]
) -> None:
    """Run a queued intervention and store its result with its job marked succeeded (the job kind's handler)."""
    worker_id = job.worker_id or ""
    with Session(engine) as session:
        row = session.scalars(select(Intervention).where(Intervention.job_id == job.id)).first()
        if row is None:
            raise DissectError(f"job {job.id} names no intervention (was its run deleted?); nothing to run")
        params = job.params
        spec = checked_spec(
            session, params["run_id"], params["layer"], params["units"], params["mode"], params["factor"]
        )
        result = compute_intervention(session, settings, get_run(session, row.run_id), spec, progress, should_stop)
        row_id = row.id
    stop_if_cancelled(should_stop)
    with write_session(engine) as session:
        succeed_in_session(session, job.id, worker_id)
        stored = session.get(Intervention, row_id)
        if stored is None:
            raise DissectError(f"intervention {row_id} was deleted with its run while it ran; its result is dropped")
        stored.result, stored.status, stored.finished_at = result, JobState.SUCCEEDED.value, utcnow()


# The sweep.

_UNIT_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def parse_units(text: str) -> list[int]:
    """Return the units a list like `1,2,5-9` names (sorted, without duplicates), or raise DissectError."""
    units: set[int] = set()
    for part in text.split(","):
        match = _UNIT_RANGE.match(part)
        if match is None:
            raise DissectError(f"cannot read units {text!r}; give numbers and ranges like 1,2,5-9")
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        if last < first or last - first >= MAX_SWEEP_UNITS:
            raise DissectError(f"range {part.strip()} is empty or longer than {MAX_SWEEP_UNITS} units; split it")
        units.update(range(first, last + 1))
    return sorted(units)


def checked_sweep(session: Session, run_id: int, layer: str, units: Sequence[int] | None) -> list[int]:
    """Return the units a sweep of the run's layer zeroes (every unit when None), or raise DissectError naming the
    layers, the unit range and the bound."""
    n_units = layer_units(session, run_id)
    if layer not in n_units:
        get_run(session, run_id)
        raise DissectError(f"the run has no dissected layer {layer!r}; choose one of {', '.join(n_units) or '(none)'}")
    chosen = sorted(set(units)) if units is not None else list(range(n_units[layer]))
    if not chosen:
        raise DissectError(f"give at least one unit of layer {layer} to sweep (0..{n_units[layer] - 1})")
    if len(chosen) > MAX_SWEEP_UNITS:
        raise DissectError(
            f"a sweep zeroes at most {MAX_SWEEP_UNITS} units and layer {layer} would need {len(chosen)}; "
            "sweep it in parts with --units (e.g. 0-1023, then 1024-2047)"
        )
    outside = [unit for unit in chosen if not 0 <= unit < n_units[layer]]
    if outside:
        raise DissectError(f"unit {outside[0]} is out of range for layer {layer}; use units 0..{n_units[layer] - 1}")
    return chosen


def submit_sweep(
    session: Session, settings: Settings, run_id: int, layer: str, units: Sequence[int] | None, *, owner: User | None
) -> Job:
    """Check a sweep request and queue it as a job of `owner` (within their queue limit); return the job, or a
    queued or running identical one. The caller commits."""
    chosen = checked_sweep(session, run_id, layer, units)
    params = {"run_id": run_id, "layer": layer, "units": chosen}
    same = session.scalars(
        select(Job)
        .where(Job.kind == SWEEP_JOB, Job.params_sha256 == params_sha256(params))
        .where(Job.status.in_((JobState.QUEUED.value, JobState.RUNNING.value)))
    ).first()
    if same is not None:
        return same
    check_queued_jobs(session, settings, owner)
    return enqueue(session, params, SWEEP_JOB, owner_id=owner.id if owner is not None else None)


@dataclass(frozen=True)
class SweptUnit:
    """One unit's sweep result as stored, with its label."""

    unit: int
    label: str
    result: UnitSweepResult


def compute_sweep(
    session: Session,
    settings: Settings,
    run: Run,
    layer: str,
    units: Sequence[int],
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[list[SweptUnit], int]:
    """Zero each unit in turn over the run's probe images; return each unit's result and the number of images."""
    from dissect_core.encoders import load_encoder
    from dissect_core.interventions.sweep import sweep_layer

    inputs = load_run_inputs(session, settings, run, ArtifactsReader(settings.data_dir))
    if not inputs.class_names:
        raise DissectError(
            f"run {run.id}'s model names no classes, so a sweep has no class names to compare labels with; "
            "sweep a run of a classifier whose weights name their classes"
        )
    labels = unit_labels(session, run.id, layer, units)
    session.rollback()  # everything is read: no read transaction stays open through the forward passes
    encoder = load_encoder(inputs.config.encoder, inputs.device)
    template = inputs.config.prompt_template
    positions = _sample(inputs)
    results = sweep_layer(
        inputs.target.model,
        layer,
        list(units),
        _batches(inputs, positions),
        baseline_logits=inputs.baseline_logits,
        label_embeddings=embed_texts(settings, encoder, [labels.get(unit, "") for unit in units], template),
        class_name_embeddings=embed_texts(settings, encoder, inputs.class_names, template),
        should_stop=should_stop,
        progress=_progress_of(progress, inputs, positions),
        device=inputs.device,
    )
    return [SweptUnit(result.unit, labels.get(result.unit, ""), result) for result in results], len(positions)


def store_sweep(
    session: Session, run_id: int, layer: str, swept: Sequence[SweptUnit], n_images: int, job_id: int | None
) -> None:
    """Store the sweep's units in the caller's transaction, each replacing the unit's earlier sweep."""
    units = [unit.unit for unit in swept]
    session.execute(
        delete(UnitSweep).where(UnitSweep.run_id == run_id, UnitSweep.layer == layer, UnitSweep.unit.in_(units))
    )
    for unit in swept:
        agreement = unit.result.agreement
        session.add(
            UnitSweep(
                run_id=run_id,
                layer=layer,
                unit=unit.unit,
                label=unit.label,
                label_effect_cosine=agreement.cosine,
                label_effect_z=agreement.z,
                label_effect_p=agreement.p_value,
                top_classes=list(agreement.top_classes),
                predictions_changed=unit.result.predictions_changed,
                n_images=n_images,
                sweep_seconds=unit.result.seconds,
                job_id=job_id,
            )
        )


def sweep(
    engine: Engine,
    settings: Settings,
    run_id: int,
    layer: str,
    units: Sequence[int] | None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    job: Job | None = None,
) -> list[SweptUnit]:
    """Sweep the run's layer (or its `units`) and store each unit's result; with `job`, the job is marked
    succeeded in the storing transaction (its worker still owning it). Return the units' results."""
    with Session(engine) as session:
        chosen = checked_sweep(session, run_id, layer, units)
        swept, n_images = compute_sweep(
            session, settings, get_run(session, run_id), layer, chosen, progress, should_stop
        )
    stop_if_cancelled(should_stop)
    with write_session(engine) as session:
        if job is not None:
            succeed_in_session(session, job.id, job.worker_id or "")
        if session.get(Run, run_id) is None:
            raise DissectError(f"run {run_id} was deleted while its layer was swept; the sweep is dropped")
        store_sweep(session, run_id, layer, swept, n_images, job.id if job is not None else None)
    return swept


def run_sweep_job(
    engine: Engine, settings: Settings, job: Job, progress: Progress, should_stop: Callable[[], bool]
) -> None:
    """Run a queued sweep and store it with its job marked succeeded (the job kind's handler)."""
    params = job.params
    sweep(engine, settings, params["run_id"], params["layer"], params["units"], progress, should_stop, job=job)
