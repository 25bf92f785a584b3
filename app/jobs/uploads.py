"""Checkpoint uploads: receive the file within the size limit, check it fits the architecture, then queue it.

Nothing is kept unless every check passes: the file waits in a temporary name until the job is queued.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine
from starlette.datastructures import FormData, UploadFile

from app.core.config import Settings
from app.core.errors import AtlasError
from app.jobs.architectures import ArchitectureCatalog
from app.persistence.db import write_session
from dissect_core.config import DissectConfig
from dissect_core.errors import DissectError
from dissect_core.names import CIFAR100_PROBE

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")
CHUNK_BYTES = 1 << 20


class BadUpload(AtlasError):
    """The uploaded file itself is unusable (too big, empty, unreadable): HTTP 400 rather than 422."""


@dataclass(frozen=True)
class UploadValues:
    """The upload form's fields other than the file, as typed (re-shown when a check fails)."""

    architecture: str = ""
    layers: tuple[str, ...] = field(default_factory=tuple)
    probe: str = CIFAR100_PROBE
    concepts: str = DissectConfig.defaults()["concepts"]
    encoder: str = DissectConfig.defaults()["encoder"]

    @classmethod
    def from_form(cls, form: FormData) -> UploadValues:
        """Return the values of a submitted form, blanks replaced by the defaults."""
        defaults = cls()

        def text(name: str, default: str) -> str:
            value = form.get(name)
            return value.strip() if isinstance(value, str) and value.strip() else default

        layers = tuple(value.strip() for value in form.getlist("layers") if isinstance(value, str) and value.strip())
        if len(layers) == 1 and "," in layers[0]:  # an API client may send one comma-separated field
            layers = tuple(part.strip() for part in layers[0].split(",") if part.strip())
        return cls(
            architecture=text("architecture", defaults.architecture),
            layers=layers,
            probe=text("probe", defaults.probe),
            concepts=text("concepts", defaults.concepts),
            encoder=text("encoder", defaults.encoder),
        )


@dataclass(frozen=True)
class ReceivedFile:
    """An upload written to a temporary file in the uploads folder, not yet accepted."""

    path: Path
    filename: str
    sha256: str
    size: int


def uploads_dir(settings: Settings) -> Path:
    """Return the folder where accepted checkpoints live (and where uploads wait, under temporary names)."""
    return settings.data_dir / "checkpoints"


def safe_filename(filename: str) -> str:
    """Return the base name of an uploaded file with anything but letters, digits, `._-` replaced by `_`."""
    base = Path(filename.replace("\\", "/")).name
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")
    return cleaned[:120] or "checkpoint.pt"


async def receive_checkpoint(upload: UploadFile, settings: Settings) -> ReceivedFile:
    """Copy an uploaded file to a temporary file, stopping as soon as it passes the size limit."""
    filename = safe_filename(upload.filename or "")
    suffix = Path(filename).suffix.lower()
    if suffix not in CHECKPOINT_SUFFIXES:
        raise BadUpload(
            f"'{upload.filename or 'the file'}' is not a checkpoint: upload a state dict saved as "
            f"{', '.join(CHECKPOINT_SUFFIXES)} (torch.save(model.state_dict(), 'model.pt'))."
        )
    folder = uploads_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=suffix)
    digest = hashlib.sha256()
    size = 0
    limit = settings.upload_limit_bytes
    try:
        with os.fdopen(handle, "wb") as stream:
            while chunk := await upload.read(CHUNK_BYTES):
                size += len(chunk)
                if size > limit:
                    raise BadUpload(
                        f"The checkpoint is larger than the upload limit of {limit / 2**20:.0f} MB; upload a "
                        "smaller file or raise NEURON_ATLAS_UPLOAD_LIMIT_MB on the server."
                    )
                digest.update(chunk)
                stream.write(chunk)
        if size == 0:
            raise BadUpload("The uploaded checkpoint is empty; choose the .pt/.pth/.safetensors file again.")
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return ReceivedFile(path=Path(temporary), filename=filename, sha256=digest.hexdigest(), size=size)


def check_upload(received: ReceivedFile, values: UploadValues, catalog: ArchitectureCatalog) -> list[str]:
    """Return the chosen layers if the file is a state dict fitting the architecture; else raise every problem.

    The raised error is a BadUpload (HTTP 400) when the file itself is unusable, an AtlasError (422) when
    only the choices are wrong; either way its message lists all the problems found, one per line.
    """
    from dissect_core.models.targets import read_state_dict

    problems: list[DissectError] = []
    state_dict = None
    try:
        state_dict = read_state_dict(received.path)
    except DissectError as error:
        # The message names the temporary path; the user knows the file by the name they uploaded.
        problems.append(BadUpload(str(error).replace(str(received.path), f"'{received.filename}'")))
    layers: list[str] = []
    try:
        catalog.check_name(values.architecture)
    except DissectError as error:
        problems.append(error)
    else:
        try:
            layers = catalog.check_layers(values.architecture, list(values.layers))
        except DissectError as error:
            problems.append(error)
        if state_dict is not None:
            try:
                catalog.check_state_dict(values.architecture, state_dict)
            except DissectError as error:
                problems.append(error)
    if problems:
        kind = BadUpload if any(isinstance(problem, BadUpload) for problem in problems) else AtlasError
        raise kind("\n".join(str(problem) for problem in problems))
    return layers


def accept_upload(
    engine: Engine,
    settings: Settings,
    catalog: ArchitectureCatalog,
    values: UploadValues,
    received: ReceivedFile,
) -> int:
    """Check the upload, keep the file and queue its dissection; return the job id. On any error keep nothing."""
    from app.jobs.dissections import submit_dissection

    try:
        layers = check_upload(received, values, catalog)
        # A folder per content hash keeps the user's file name (the model's label) and deduplicates uploads.
        final = uploads_dir(settings) / received.sha256[:16] / received.filename
        existed = final.exists()
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(received.path, final)
        config = DissectConfig(
            model=values.architecture,
            layers=tuple(layers),
            probe=values.probe,
            concepts=values.concepts,
            encoder=values.encoder,
            weights="none",
            checkpoint=str(final),
        )
        try:
            with write_session(engine) as session:
                return submit_dissection(session, config)
        except BaseException:
            if not existed:
                final.unlink(missing_ok=True)
                _remove_empty(final.parent)
            raise
    finally:
        received.path.unlink(missing_ok=True)


def _remove_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not empty: an earlier upload with the same content lives there
        folder.rmdir()
