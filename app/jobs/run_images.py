"""Images editors upload to a stored run (#23, "your own image"): check one upload (its bytes, its pixels, a full
decode), store it as a media file and queue its job; the job runs the run's model on it and stores its reading: the
prediction (top 5 with class names, and the units behind the top class where the run has a classifier), every
dissected layer's pooled activations and each unit's percentile among the probe images.

The reading is stored as JSON in the image's row (one value per unit of each dissected layer, two for activation and
percentile: tens of kB for the largest layers), written in the transaction that marks its job succeeded, and deleted
with the run.
"""

from __future__ import annotations

import hashlib
import io
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app.core.config import ENV_PREFIX, Settings
from app.core.errors import AtlasError, TooLarge
from app.jobs.queue.jobs import REUSABLE_STATES, enqueue, succeed_in_session
from app.jobs.queue.quotas import check_queued_jobs
from app.jobs.run_inputs import load_run_model, stored_image_count
from app.jobs.uploads.archives import UnreadableImage, image_pixels
from app.persistence.db import write_session
from app.persistence.media import MediaStore
from app.persistence.models import Job, JobState, Run, RunImage, User, utcnow
from app.persistence.store.layout import ArtifactsLayout
from app.read.artifacts.activations import ActivationsUnavailable, load_layer_activations
from app.read.artifacts.reader import ArtifactsReader
from app.read.classes.contributions import WHY_UNITS
from app.read.images.uploads import run_image_status
from app.read.runs.queries import get_run
from dissect_core.errors import DissectError
from dissect_core.progress import Progress

if TYPE_CHECKING:
    import torch
    from torch import nn

    from dissect_core.analysis.outputs import ModelOutputs

#: The job kind this module runs (app.jobs.queue.kinds).
IMAGE_JOB = "image"
#: The formats an upload may have (Pillow decodes them and browsers show them), with the stored file's suffix.
IMAGE_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "GIF": ".gif"}
_FORMATS_TEXT = "a PNG, JPEG, WebP or GIF file"
#: Digits kept of the stored activations and percentiles (float32 holds about 7).
_DIGITS = 6


@dataclass(frozen=True)
class CheckedImage:
    """An uploaded image that passed every check: its bytes, their sha256, the stored file's suffix, its size."""

    data: bytes
    sha256: str
    suffix: str
    width: int
    height: int


def check_image(data: bytes, settings: Settings) -> CheckedImage:
    """Return the upload as a CheckedImage, or raise: TooLarge past `image_max_bytes`, AtlasError (422) for an
    empty file, one Pillow cannot read or fully decode, a format browsers do not show, or more than
    `probe_max_pixels` pixels (read from the header: an image bomb is refused before any pixel is decoded)."""
    limit = settings.image_max_bytes
    if len(data) > limit:
        raise TooLarge(
            f"The image is {len(data) / 2**20:.1f} MB, over the limit of {limit / 2**20:.0f} MB; upload a smaller "
            f"image or raise {ENV_PREFIX}IMAGE_MAX_MB on the server."
        )
    if not data:
        raise AtlasError(f"The uploaded file is empty; choose {_FORMATS_TEXT}.")
    try:
        pixels = image_pixels(io.BytesIO(data), settings.probe_max_pixels)
    except UnreadableImage:
        raise AtlasError(
            "The uploaded file is not an image Pillow can read (not an image, or a damaged one); "
            f"upload {_FORMATS_TEXT}."
        ) from None
    if pixels > settings.probe_max_pixels:
        raise AtlasError(
            f"The image has more than {settings.probe_max_pixels:,} pixels; scale it down, or raise "
            f"{ENV_PREFIX}PROBE_MAX_PIXELS on the server."
        )
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format = image.format or ""
            image.load()  # every pixel decoded here: a truncated file is refused now, not in the worker
            width, height = image.size
    except (OSError, SyntaxError, ValueError, struct.error):
        raise AtlasError(
            f"The image is damaged (its pixels cannot all be decoded: truncated?); save it again as {_FORMATS_TEXT}."
        ) from None
    suffix = IMAGE_FORMATS.get(image_format)
    if suffix is None:
        raise AtlasError(f"{image_format or 'This'} images are not taken; convert it to {_FORMATS_TEXT}.")
    return CheckedImage(data, hashlib.sha256(data).hexdigest(), suffix, width, height)


def identical_image(session: Session, run_id: int, sha256: str) -> RunImage | None:
    """Return the newest queued, running or read upload of the same bytes to the run, or None."""
    rows = session.scalars(
        select(RunImage).where(RunImage.run_id == run_id, RunImage.sha256 == sha256).order_by(RunImage.id.desc())
    )
    return next((row for row in rows if run_image_status(row) in REUSABLE_STATES), None)


def submit_run_image(
    session: Session, settings: Settings, run_id: int, image: CheckedImage, *, owner: User | None
) -> RunImage:
    """Store a checked image as a media file and queue its reading as a job of `owner` (within their queue limit);
    return its row, or the row of an identical upload to the run that is queued, running or read. The caller
    commits (e.g. `with write_session(engine)`)."""
    get_run(session, run_id)
    same = identical_image(session, run_id, image.sha256)
    if same is not None:
        return same
    check_queued_jobs(session, settings, owner)
    owner_id = owner.id if owner is not None else None
    file = MediaStore(settings.media_dir).put(image.data, image.suffix)
    job = enqueue(session, {"run_id": run_id, "sha256": image.sha256}, IMAGE_JOB, owner_id=owner_id)
    row = RunImage(
        run_id=run_id,
        owner_id=owner_id,
        file=file,
        sha256=image.sha256,
        width=image.width,
        height=image.height,
        status=JobState.QUEUED.value,
        job_id=job.id,
    )
    session.add(row)
    session.flush()
    return row


@contextmanager
def classifier_input(model: nn.Module, classifier: str | None) -> Iterator[list[torch.Tensor]]:
    """Yield a list that receives, during a forward pass, what the `classifier` module gets ([features] of the first
    image; nothing when `classifier` is None); the hook is removed on leaving."""
    seen: list[torch.Tensor] = []
    if classifier is None:
        yield seen
        return

    def keep(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        seen.append(inputs[0].detach().float().flatten(start_dim=1)[0].cpu())

    handle = model.get_submodule(classifier).register_forward_pre_hook(keep)
    try:
        yield seen
    finally:
        handle.remove()


def _prediction(logits: torch.Tensor, class_names: tuple[str, ...] | None) -> list[dict[str, Any]]:
    """Return the top classes of one image's logits with their names and probabilities."""
    from dissect_core.analysis.classes import top_predictions

    classes, probabilities = top_predictions(logits)
    return [
        {
            "class_index": int(index),
            "class_name": class_names[int(index)] if class_names and int(index) < len(class_names) else None,
            "probability": float(probability),
        }
        for index, probability in zip(classes.tolist(), probabilities.tolist(), strict=True)
    ]


def _why(outputs: ModelOutputs | None, features: list[torch.Tensor], top_class: int) -> dict[str, Any] | None:
    """Return the units of the layer feeding the classifier that contribute most to the top class on the image
    (W[c, j] × feature j), or None without a classifier fed by a dissected layer."""
    from dissect_core.analysis.classes import image_contributions
    from dissect_core.topk import stable_topk

    if outputs is None or outputs.classifier_weight is None or outputs.feeding_layer is None or not features:
        return None
    row = image_contributions(outputs.classifier_weight, features[0])[top_class]
    values, units = stable_topk(row.unsqueeze(0), min(WHY_UNITS, row.numel()))
    return {
        "layer": outputs.feeding_layer,
        "units": [
            {"unit": unit, "contribution": round(value, _DIGITS)}
            for unit, value in zip(units[0].tolist(), values[0].tolist(), strict=True)
        ],
    }


def _rounded(values: torch.Tensor) -> list[float]:
    return [round(value, _DIGITS) for value in values.tolist()]


def read_uploaded_image(
    session: Session, settings: Settings, run: Run, file: str, progress: Progress | None = None
) -> dict[str, Any]:
    """Run the run's model on an uploaded image (its media file) and return its reading as stored: the prediction,
    the units behind the top class, and per dissected layer the activations and each unit's percentile among the
    probe images (None where the layer's activations were not stored).

    Everything is read from `session` first; its transaction then ends, so none stays open through the pass."""
    from dissect_core.interventions.single_image import read_image, unit_percentiles

    started = time.perf_counter()
    reader = ArtifactsReader(settings.data_dir)
    inputs = load_run_model(session, settings, run)  # one image needs the model, not the probe images
    outputs = reader.outputs(run.artifacts_dir)
    layout = ArtifactsLayout.of_run(run.artifacts_dir, settings.data_dir)
    n_stored = stored_image_count(session, run.id)
    session.rollback()
    if progress is not None:
        progress("image", 0, 1)
    with Image.open(settings.media_dir / file) as opened:
        image = opened.convert("RGB")
    feeding = outputs.classifier_layer if outputs is not None and outputs.feeding_layer is not None else None
    with classifier_input(inputs.target.model, feeding) as features:
        reading = read_image(inputs.target, image, inputs.layers, inputs.config.pool, inputs.device)
    layers: dict[str, dict[str, Any]] = {}
    for layer in inputs.layers:
        activation = reading.activations[layer]
        try:
            stored = load_layer_activations(layout, layer, n_stored)
            percentiles: list[float] | None = _rounded(unit_percentiles(activation, stored))
        except ActivationsUnavailable:
            percentiles = None
        layers[layer] = {"activations": _rounded(activation), "percentiles": percentiles}
    prediction = _prediction(reading.logits, inputs.class_names) if reading.logits is not None else []
    why = _why(outputs, features, prediction[0]["class_index"]) if prediction else None
    if progress is not None:
        progress("image", 1, 1)
    return {
        "prediction": prediction,
        "why": why,
        "layers": layers,
        "n_probe_images": n_stored,
        "device": str(inputs.device),
        "seconds": round(time.perf_counter() - started, 3),
    }


def run_image_job(
    engine: Engine, settings: Settings, job: Job, progress: Progress, should_stop: Callable[[], bool]
) -> None:
    """Read a queued uploaded image and store its reading with its job marked succeeded (the job kind's handler)."""
    worker_id = job.worker_id or ""
    with Session(engine) as session:
        row = session.scalars(select(RunImage).where(RunImage.job_id == job.id)).first()
        if row is None:
            raise DissectError(f"job {job.id} names no uploaded image (was its run deleted?); nothing to run")
        if should_stop():
            raise DissectError("the image's reading was cancelled before it started; upload the image again")
        result = read_uploaded_image(session, settings, get_run(session, row.run_id), row.file, progress)
        row_id = row.id
    with write_session(engine) as session:
        succeed_in_session(session, job.id, worker_id)
        stored = session.get(RunImage, row_id)
        if stored is None:
            raise DissectError(f"uploaded image {row_id} was deleted with its run while it was read; nothing is kept")
        stored.result, stored.status, stored.finished_at = result, JobState.SUCCEEDED.value, utcnow()
