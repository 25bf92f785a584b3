"""Checkpoint uploads: receive the file within the size limit, check it fits the architecture, then queue it.

The probe set, concept set and encoder are chosen by catalogue name (app.jobs.catalogue.sets turns them into what
the server loads), and the upload becomes a model of its own name (app.jobs.uploads.model_names). Nothing is kept
unless every check passes: the file waits in a temporary name until the job is queued.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from app.core.config import Settings
from app.core.errors import AtlasError, BadUpload
from app.core.paths import stored_path
from app.core.redact import redact_paths
from app.jobs.catalogue.sets import check_encoder, resolve_concept_set, resolve_probe_set
from app.jobs.queue.quotas import check_queued_jobs, check_uploads_per_hour
from app.jobs.uploads.architectures import ArchitectureCatalog
from app.jobs.uploads.model_names import check_model_name, default_model_name, reserve_model_name
from app.jobs.uploads.problems import FieldProblem, raise_problems
from app.persistence.db import write_session
from app.persistence.models import User
from dissect_core.config import DissectConfig
from dissect_core.errors import DissectError
from dissect_core.models.checkpoint_inspection import CHECKPOINT_SUFFIXES, CheckpointFacts
from dissect_core.names import CIFAR100_PROBE

CHUNK_BYTES = 1 << 20
#: The longest stored file name; a longer one is shortened before its suffix.
MAX_FILENAME_CHARS = 120


@dataclass(frozen=True)
class UploadValues:
    """The upload form's fields other than the file, as typed (re-shown when a check fails)."""

    architecture: str = ""
    layers: tuple[str, ...] = field(default_factory=tuple)
    probe: str = CIFAR100_PROBE
    concepts: str = DissectConfig.defaults()["concepts"]
    encoder: str = DissectConfig.defaults()["encoder"]
    #: What the upload is called (unique); blank: its file's name without suffix.
    model_name: str = ""
    #: The names of the checkpoint's outputs from its class names file (app.jobs.uploads.class_names), in output
    #: order; None: the architecture's own when the head has as many outputs.
    class_names: tuple[str, ...] | None = None

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
            model_name=text("model_name", defaults.model_name),
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
    """Return the base name of an uploaded file with anything but letters, digits, `._-` replaced by `_`, at most
    MAX_FILENAME_CHARS long with its suffix kept."""
    base = Path(filename.replace("\\", "/")).name
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")
    suffix = Path(cleaned).suffix if len(Path(cleaned).suffix) < MAX_FILENAME_CHARS // 2 else ""
    stem = cleaned[: len(cleaned) - len(suffix)] if suffix else cleaned
    return (stem[: MAX_FILENAME_CHARS - len(suffix)] + suffix) if stem else "checkpoint.pt"


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


def check_upload(
    received: ReceivedFile, values: UploadValues, catalog: ArchitectureCatalog, settings: Settings
) -> list[str]:
    """Return the chosen layers if the file is a state dict fitting the architecture (and the class names, if given,
    name its head's outputs one each); else raise every problem.

    The file is inspected before anything in it is read: a safetensors header must be at most
    `checkpoint_max_header_bytes` long (refused from its length alone) and describe tensors that load; the file
    must declare at most `checkpoint_max_bytes` of tensors, and no more than the architecture could hold; then only
    its tensors' shapes are read (memory-mapped, not kept).
    The raised error is a BadUpload (HTTP 400) when the file itself is unusable, an AtlasError (422) when
    only the choices are wrong; either way its message lists all the problems found, one per line.
    """
    from dissect_core.models.state_dicts import read_state_shapes

    problems: list[FieldProblem] = []
    facts: CheckpointFacts | None = None
    try:
        facts = _declared_facts(received, settings)
    except BadUpload as error:
        problems.append(("checkpoint", error))
    layers, known = check_architecture_choices(catalog, values, problems)
    if known and values.class_names is not None:
        try:
            catalog.check_class_names(values.architecture, values.class_names)
        except DissectError as error:
            problems.append(("class_names", error))
    if known and facts is not None:
        try:
            catalog.check_size(values.architecture, facts.tensor_bytes)
        except DissectError as error:  # far too big for the architecture: not read at all
            problems.append(("checkpoint", error))
            facts = None
    if facts is not None:
        try:
            shapes = read_state_shapes(received.path)
        except DissectError as error:
            problems.append(("checkpoint", _unusable(received, error)))
        else:
            try:
                if known:
                    catalog.check_shapes(values.architecture, shapes)
            except DissectError as error:
                problems.append(("checkpoint", error))
    raise_problems(problems)
    return layers


def check_architecture_choices(
    catalog: ArchitectureCatalog, values: UploadValues, problems: list[FieldProblem]
) -> tuple[list[str], bool]:
    """Return the chosen layers and whether the architecture is known, adding what is wrong with them to `problems`."""
    try:
        catalog.check_name(values.architecture)
    except DissectError as error:
        problems.append(("architecture", error))
        return [], False
    try:
        return catalog.check_layers(values.architecture, list(values.layers)), True
    except DissectError as error:
        problems.append(("layers", error))
        return [], True


def _declared_facts(received: ReceivedFile, settings: Settings) -> CheckpointFacts:
    """Return what the uploaded file declares, or raise BadUpload when it is malformed or over the bounds."""
    from dissect_core.models.checkpoint_inspection import HeaderTooLarge, inspect_checkpoint

    max_bytes = settings.checkpoint_max_bytes
    try:
        facts = inspect_checkpoint(received.path, max_header_bytes=settings.checkpoint_max_header_bytes)
    except HeaderTooLarge as error:
        hint = "or raise NEURON_ATLAS_CHECKPOINT_MAX_HEADER_KB on the server"
        raise BadUpload(f"{_unusable(received, error)}, {hint}.") from None
    except DissectError as error:
        raise _unusable(received, error) from None
    if facts.tensor_bytes > max_bytes:
        raise BadUpload(
            f"The checkpoint declares {facts.tensor_bytes / 2**20:,.0f} MB of tensors, over the limit of "
            f"{max_bytes / 2**20:,.0f} MB; upload a smaller checkpoint or raise NEURON_ATLAS_CHECKPOINT_MAX_MB "
            "on the server."
        )
    return facts


def _unusable(received: ReceivedFile, error: DissectError) -> BadUpload:
    """Return the file's problem as a BadUpload naming the file as uploaded (not its temporary path)."""
    return BadUpload(str(error).replace(str(received.path), f"'{received.filename}'"))


@dataclass(frozen=True)
class ResolvedChoices:
    """What an upload's named choices stand for on the server, and the name its model gets."""

    probe: str
    concepts: str
    encoder: str
    model_name: str


def resolve_choices(
    session: Session,
    settings: Settings,
    catalog: ArchitectureCatalog,
    values: UploadValues,
    filename: str,
    problem: DissectError | None = None,
) -> ResolvedChoices:
    """Return what the upload's names stand for; else raise one error listing `problem` and every wrong name.

    `problem` is what checking the file found; the error is a BadUpload (400) if it is one, else an AtlasError.
    """
    problems: list[FieldProblem] = [("form", problem)] if problem is not None else []

    def attempt(field: str, check: Callable[..., str], *args: object) -> str:
        try:
            return check(*args)
        except DissectError as error:
            problems.append((field, error))
            return ""

    choices = ResolvedChoices(
        probe=attempt("probe", resolve_probe_set, session, values.probe, settings.data_dir),
        concepts=attempt("concepts", resolve_concept_set, session, values.concepts, settings.data_dir),
        encoder=attempt("encoder", check_encoder, settings, values.encoder),
        model_name=attempt(
            "model_name", check_model_name, session, catalog, values.model_name or default_model_name(filename)
        ),
    )
    raise_problems(problems)
    return choices


def refuse_without_file(
    engine: Engine, settings: Settings, catalog: ArchitectureCatalog, values: UploadValues, missing: BadUpload
) -> None:
    """Raise `missing` (no usable file was sent) together with every problem of the upload's other fields."""
    problems: list[FieldProblem] = [("checkpoint", missing)]
    check_architecture_choices(catalog, values, problems)
    with Session(engine) as session:
        try:
            resolve_choices(session, settings, catalog, values, "checkpoint.pt")
        except DissectError as error:
            if not values.model_name and isinstance(getattr(error, "fields", None), dict):
                error.fields.pop("model_name", None)  # type: ignore[attr-defined]  # the file's name decides it
            problems.append(("form", error))
    raise_problems(problems)


def stored_checkpoint(settings: Settings, received: ReceivedFile) -> Path:
    """Return where an upload's content is kept: the file already stored with that content and suffix, if any
    (one copy per content whatever it was called), else a new file under its own name in its content's folder."""
    folder = uploads_dir(settings) / received.sha256[:16]
    suffix = Path(received.filename).suffix.lower()
    if folder.is_dir():
        for existing in sorted(folder.iterdir()):
            if existing.is_file() and existing.suffix.lower() == suffix and not existing.name.startswith("."):
                return existing
    return folder / received.filename


def check_upload_quotas(engine: Engine, settings: Settings, owner: User | None) -> None:
    """Raise QuotaExceeded when `owner` may not upload now: checked before the file is received, so an upload over a
    limit costs no transfer (accept_upload checks again inside its transaction)."""
    with Session(engine) as session:
        check_uploads_per_hour(session, settings, owner)
        check_queued_jobs(session, settings, owner)


def accept_upload(
    engine: Engine,
    settings: Settings,
    catalog: ArchitectureCatalog,
    values: UploadValues,
    received: ReceivedFile,
    *,
    owner: User | None = None,
) -> int:
    """Check the upload, keep the file and queue its dissection; return the job id. On any error keep nothing."""
    from app.jobs.dissections import submit_dissection

    try:
        file_problem: DissectError | None = None
        layers: list[str] = []
        try:  # outside the transaction: SQLite's write lock would hold up every writer while a state dict loads
            layers = check_upload(received, values, catalog, settings)
        except DissectError as error:
            file_problem = error
        owner_id = owner.id if owner is not None else None
        with write_session(engine) as session:
            check_uploads_per_hour(session, settings, owner)
            check_queued_jobs(session, settings, owner)
            choices = resolve_choices(session, settings, catalog, values, received.filename, file_problem)
            # A folder per content hash keeps the first uploader's file name; the same content is stored once.
            final = stored_checkpoint(settings, received)
            existed = final.exists()
            final.parent.mkdir(parents=True, exist_ok=True)
            if not existed:
                os.replace(received.path, final)
            try:
                config = DissectConfig(
                    model=values.architecture,
                    layers=tuple(layers),
                    probe=choices.probe,
                    concepts=choices.concepts,
                    encoder=choices.encoder,
                    weights="none",
                    checkpoint=str(final),
                    model_name=choices.model_name,
                    class_names=values.class_names,
                )
                model_id = reserve_model_name(
                    session, config, received.sha256, owner_id, stored_path(final, settings.data_dir)
                )
                try:
                    return submit_dissection(
                        session, config, owner_id=owner_id, data_dir=settings.data_dir, target_model_id=model_id
                    )
                except DissectError as error:  # e.g. a catalogued folder vanished just now: no server path shown
                    raise AtlasError(redact_paths(str(error))) from None
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
