"""The catalogue web users choose from by name: probe sets, concept sets and encoders.

Web requests name, never point. Each name a form or API call sends is looked up here and turned into what the
library loads (a built-in's name, a server folder or file, an encoder spec); then `submit_dissection` checks the
config as it does the command line's, which keeps accepting local paths. Probe sets come from an operator's
`neuron-atlas probe-sets add NAME FOLDER`, an editor's uploaded archive, or the app itself (the demo's photos);
concept sets from the library's built-ins or an editor's uploaded list.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import BinaryIO

from PIL import Image
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.auth.permissions import require_owner
from app.core.config import Settings
from app.core.errors import AtlasError, BadUpload, InUse, NotCatalogued
from app.core.paths import resolved_path, stored_path
from app.core.text import check_user_text
from app.core.urls import API_PREFIX
from app.jobs.queue.quotas import check_concept_sets, check_probe_sets
from app.jobs.uploads.archives import ArchiveBounds, extract_images
from app.persistence.db import write_session
from app.persistence.media import MediaStore, jpeg_bytes
from app.persistence.models import CatalogConceptSet, CatalogKind, CatalogProbeSet, Job, JobState, User
from app.persistence.staging import staging_folder
from app.read.catalogue.sets import list_concept_sets, list_probe_sets
from app.read.concepts.search import MAX_CONCEPT_CHARS
from dissect_core.data.concepts import BUILT_IN_CONCEPT_SETS, clean_concepts, concept_set_hash, concepts_text
from dissect_core.data.probe import decode_image, load_probe_folder, probe_set_hash
from dissect_core.names import BUILT_IN_PROBE_SETS

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
NAME_RULE = "1 to 64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit"
N_THUMBNAILS = 4
THUMBNAIL_PIXELS = 128
#: Encoders listed in full in a refusal; more are named by a few examples and the API that lists them.
LISTED_ENCODERS = 12
#: Probe or concept sets named in a refusal; the API lists them all.
LISTED_SETS = 20
#: What each kind of name looks like, for the refusals.
NAME_EXAMPLES = {"probe set": "street-photos", "concept set": "textures", "model": "resnet18-finetuned"}


def _shown(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _listed(names: Sequence[str]) -> str:
    more = f" and {len(names) - LISTED_SETS} more" if len(names) > LISTED_SETS else ""
    return (", ".join(names[:LISTED_SETS]) or "none yet") + more


def check_name(name: str, what: str) -> str:
    """Return `name` stripped and lower-cased if it may name a `what` (a probe set, concept set or model)."""
    cleaned = check_user_text(name, f"the {what} name").strip().lower()
    if not NAME_PATTERN.fullmatch(cleaned):
        example = NAME_EXAMPLES.get(what, "my-name")
        raise AtlasError(f"{_shown(name)} cannot name a {what}: use {NAME_RULE}, e.g. {example!r}.")
    return cleaned


def _check_new_name(
    session: Session, name: str, what: str, table: type[CatalogProbeSet | CatalogConceptSet], built_ins: Collection[str]
) -> str:
    """Return `name` cleaned if no `what` has it yet; else raise AtlasError saying who holds it (names are claimed
    first come, first served, and shown with their owner)."""
    cleaned = check_name(name, what)
    found = session.execute(
        select(table.kind, User.name).outerjoin(User, User.id == table.owner_id).where(table.name == cleaned)
    ).first()
    if cleaned not in built_ins and found is None:
        return cleaned
    if found is None:
        holder = "a built-in set has it"
    elif found.kind != CatalogKind.UPLOADED:
        holder = "the server's operator offers it"
    else:
        uploader = found.name or "an account since removed"
        holder = f"{uploader} uploaded it (its uploader or an admin may delete it on the {what}s page)"
    raise AtlasError(f"The {what} name {_shown(cleaned)} is taken: {holder}; choose another, e.g. '{cleaned}-2'.")


# --- choosing by name (the upload form and API) ------------------------------------------------------------------


def resolve_probe_set(session: Session, name: str, data_dir: Path) -> str:
    """Return what the library loads for the probe set `name`: a built-in's name or its server folder (a stored
    relative folder lies under `data_dir`)."""
    if name in BUILT_IN_PROBE_SETS:
        return name
    row = session.scalar(select(CatalogProbeSet).where(CatalogProbeSet.name == name.lower()))
    if row is None:
        names = [view.name for view in list_probe_sets(session)]
        raise AtlasError(
            f"Probe set {_shown(name)} does not exist: probe sets are chosen by name, not by path. Choose one of: "
            f"{_listed(names)}; or upload a .zip or .tar of images on the probe sets page."
        )
    folder = resolved_path(row.folder, data_dir)
    if not folder.is_dir():
        raise AtlasError(
            f"Probe set {_shown(name)} is no longer on the server; choose another, or ask the operator to add it again."
        )
    return str(folder)


def resolve_concept_set(session: Session, name: str, data_dir: Path) -> str:
    """Return what the library loads for the concept set `name`: a built-in's name or its server file (a stored
    relative file lies under `data_dir`)."""
    if name in BUILT_IN_CONCEPT_SETS:
        return name
    row = session.scalar(select(CatalogConceptSet).where(CatalogConceptSet.name == name.lower()))
    if row is None:
        names = [view.name for view in list_concept_sets(session)]
        raise AtlasError(
            f"Concept set {_shown(name)} does not exist: concept sets are chosen by name, not by path. Choose one "
            f"of: {_listed(names)}; or upload a list (one concept per line) on the concept sets page."
        )
    file = resolved_path(row.file, data_dir)
    if not file.is_file():
        raise AtlasError(f"Concept set {_shown(name)} is no longer on the server; choose another or upload it again.")
    return str(file)


@functools.cache
def default_encoders() -> tuple[str, ...]:
    """Return the encoders the library knows: every ConSE pairing, then open_clip's pretrained `ARCH:TAG` names.

    Computed once per process, on first use: importing open_clip takes seconds, which no page load should pay.
    """
    from dissect_core.encoders import CONSE_PREFIX
    from dissect_core.encoders.text import TEXT_ENCODER_NAMES
    from dissect_core.models.efficientnet_lite import EFFICIENTNET_LITE_NAMES

    conse = [
        f"{CONSE_PREFIX}{classifier}+{text}" for classifier in EFFICIENTNET_LITE_NAMES for text in TEXT_ENCODER_NAMES
    ]
    try:
        import open_clip
    except ImportError:  # a slimmed install without open_clip: ConSE only
        return tuple(conse)
    return (*conse, *(f"{arch}:{tag}" for arch, tag in open_clip.list_pretrained()))


def allowed_encoders(settings: Settings) -> tuple[str, ...]:
    """Return the encoders web users may choose: NEURON_ATLAS_ENCODERS, else the library's."""
    return settings.encoders if settings.encoders is not None else default_encoders()


def check_encoder(settings: Settings, encoder: str) -> str:
    """Return `encoder` if web users may choose it; else raise AtlasError naming the allowed ones."""
    allowed = allowed_encoders(settings)
    if encoder in allowed:
        return encoder
    close = difflib.get_close_matches(encoder, allowed, n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    if len(allowed) <= LISTED_ENCODERS:
        choices = f"Choose one of: {_listed(allowed)}."
    else:
        choices = (
            f"Choose one of the {len(allowed)} encoders listed at {API_PREFIX}/encoders (e.g. "
            f"{', '.join(allowed[:3])})."
        )
    raise AtlasError(
        f"Encoder {_shown(encoder)} is not offered here: encoders are chosen by name, never as a file.{hint} {choices}"
    )


# --- probe sets ----------------------------------------------------------------------------------------------


def check_new_probe_set_name(session: Session, name: str) -> str:
    """Return `name` cleaned if no probe set has it yet; else raise AtlasError saying who holds it."""
    return _check_new_name(session, name, "probe set", CatalogProbeSet, BUILT_IN_PROBE_SETS)


def make_thumbnails(settings: Settings, image_paths: Sequence[str]) -> list[str]:
    """Write thumbnails of a few evenly spaced images into the media dir; return their media file names."""
    if not image_paths:
        return []
    step = max(1, len(image_paths) // N_THUMBNAILS)
    store = MediaStore(settings.media_dir)
    names = []
    for path in list(image_paths)[::step][:N_THUMBNAILS]:
        try:
            image = decode_image(path)
        except (OSError, ValueError, Image.DecompressionBombError):  # unreadable images are skipped, as dissecting does
            continue
        image.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS), Image.Resampling.BICUBIC)
        names.append(store.put(jpeg_bytes(image), ".jpg"))
    return names


def register_probe_folder(
    session: Session,
    settings: Settings,
    name: str,
    folder: str | Path,
    *,
    kind: CatalogKind = CatalogKind.FOLDER,
    owner_id: int | None = None,
) -> CatalogProbeSet:
    """Catalogue a server folder of images under `name` (the command line's `probe-sets add`); return its row.

    The app's own folders (`kind` builtin, the demo's photos) are registered again each time they are built:
    their row is brought up to date instead of the name being refused as taken.
    """
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        raise AtlasError(f"{folder} is not a folder; give the folder that holds the probe images.")
    name = check_name(name, "probe set")
    existing = session.scalar(select(CatalogProbeSet).where(CatalogProbeSet.name == name))
    if not (kind == CatalogKind.BUILTIN and existing is not None and existing.kind == CatalogKind.BUILTIN):
        check_new_probe_set_name(session, name)
    stored = stored_path(root, settings.data_dir)
    same_folder = session.scalar(select(CatalogProbeSet).where(CatalogProbeSet.folder.in_({stored, str(root)})))
    if same_folder is not None and same_folder is not existing:
        raise AtlasError(f"{root} is already the probe set {same_folder.name!r}; use that name.")
    probe = load_probe_folder(root)
    same_images = session.scalar(select(CatalogProbeSet).where(CatalogProbeSet.content_hash == probe.content_hash))
    if same_images is not None and same_images is not existing:
        raise AtlasError(f"The images in {root} already are the probe set {same_images.name!r}; use that name.")
    row = existing or CatalogProbeSet(name=name, kind=kind, owner_id=owner_id)
    row.folder, row.n_images, row.content_hash = stored, len(probe), probe.content_hash
    row.thumbnails = make_thumbnails(settings, [image.path for image in probe.images])
    session.add(row)
    session.flush()
    return row


def store_uploaded_probe_set(
    engine: Engine, settings: Settings, name: str, archive: BinaryIO, *, owner: User | None = None
) -> CatalogProbeSet:
    """Check and extract an uploaded archive of images, then catalogue it under `name` as `owner`'s; return its row.

    The images land in a folder named by their content hash under the data dir. Nothing is kept when a check
    fails: a taken name or a full quota is refused before the archive is read, a bad archive before anything is
    catalogued, and the owner's quota is checked again with the images' bytes.
    """
    with Session(engine) as session:
        name = check_new_probe_set_name(session, name)
        check_probe_sets(session, settings, owner)
    root = settings.probe_sets_dir
    try:
        with staging_folder(root) as staging:
            images = extract_images(archive, staging / "images", ArchiveBounds.from_settings(settings))
            content_hash = probe_set_hash(image.sha256 for image in images)
            final = root / content_hash[:32]
            n_bytes = sum(image.n_bytes for image in images)
            with write_session(engine) as session:
                name = check_new_probe_set_name(session, name)
                check_probe_sets(session, settings, owner, adding_bytes=n_bytes)
                same = session.scalar(select(CatalogProbeSet).where(CatalogProbeSet.content_hash == content_hash))
                if same is not None:
                    raise AtlasError(f"These images already are the probe set {same.name!r}; choose it instead.")
                # Named by content and only ever moved in whole, an existing folder already holds exactly these.
                created = not final.exists()
                if created:
                    os.replace(staging / "images", final)
                try:
                    row = CatalogProbeSet(
                        name=name,
                        kind=CatalogKind.UPLOADED,
                        folder=stored_path(final, settings.data_dir),
                        n_images=len(images),
                        content_hash=content_hash,
                        thumbnails=make_thumbnails(settings, [str(final / image.relative) for image in images]),
                        owner_id=owner.id if owner is not None else None,
                        n_bytes=n_bytes,
                    )
                    session.add(row)
                    session.flush()
                except BaseException:
                    if created:
                        _remove_folder(final)
                    raise
        return row
    except IntegrityError:
        raise AtlasError(f"The probe set name {name!r} or these images were just added; choose another.") from None


def remove_probe_set(engine: Engine, settings: Settings, name: str, *, by: User | None = None) -> CatalogProbeSet:
    """Take the probe set `name` out of the catalogue (and delete an uploaded one's images); return its row.

    `by` is the web user asking: its uploader or an admin may, and not while a queued or running job dissects with
    it (InUse); None is the command line, which may always. Runs made with it keep their images and labels.
    """
    with write_session(engine) as session:
        row = session.scalar(select(CatalogProbeSet).where(CatalogProbeSet.name == name))
        if row is None:
            names = session.scalars(select(CatalogProbeSet.name).order_by(CatalogProbeSet.name)).all()
            raise NotCatalogued(
                f"There is no catalogued probe set {name!r}; the catalogued ones are: {_listed(names)}."
            )
        _check_removable(session, settings, row, "probe set", "probe", row.folder, by)
        session.delete(row)
    folder = resolved_path(row.folder, settings.data_dir)
    if row.kind == CatalogKind.UPLOADED and folder.parent == settings.probe_sets_dir:
        _remove_folder(folder)
    return row


def _check_removable(
    session: Session,
    settings: Settings,
    row: CatalogProbeSet | CatalogConceptSet,
    what: str,
    param: str,
    stored: str,
    by: User | None,
) -> None:
    """Raise Forbidden unless the web user `by` may delete the set, InUse while a queued or running job needs it.

    The command line (`by` None) is the operator's own call: it removes the set whatever waits for it.
    """
    if by is None:
        return
    owner = session.get(User, row.owner_id) if row.owner_id is not None else None
    require_owner(by, owner, f"The {what} {row.name!r}", "delete it")
    target = resolved_path(stored, settings.data_dir)
    waiting = session.execute(
        select(Job.id, Job.params).where(Job.status.in_((JobState.QUEUED.value, JobState.RUNNING.value)))
    ).tuples()
    using = [
        job_id
        for job_id, params in waiting
        if isinstance(params, dict)
        and isinstance(params.get(param), str)
        and resolved_path(params[param], settings.data_dir) == target
    ]
    if using:
        jobs = ", ".join(str(job_id) for job_id in using)
        raise InUse(
            f"The {what} {row.name!r} is used by queued or running job{'s' if len(using) > 1 else ''} {jobs}; delete "
            "it once they have finished, or cancel them on their job pages first."
        )


def _remove_folder(folder: Path) -> None:
    """Delete a folder by first moving it aside whole, so its content-addressed name never holds a part of it."""
    doomed = folder.with_name(f".removed-{folder.name}-{secrets.token_hex(4)}")
    os.replace(folder, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


# --- concept sets --------------------------------------------------------------------------------------------


def check_new_concept_set_name(session: Session, name: str) -> str:
    """Return `name` cleaned if no concept set has it yet; else raise AtlasError saying who holds it."""
    return _check_new_name(session, name, "concept set", CatalogConceptSet, BUILT_IN_CONCEPT_SETS)


def clean_uploaded_concepts(data: bytes, settings: Settings) -> list[str]:
    """Return an uploaded list's concepts, cleaned as the library cleans files; raise AtlasError when unusable."""
    if len(data) > settings.concepts_max_bytes:
        raise BadUpload(
            f"The concept list is larger than {settings.concepts_max_bytes // 1024:,} KB; upload a shorter one, "
            "or raise NEURON_ATLAS_CONCEPTS_MAX_KB on the server."
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadUpload("The concept list is not UTF-8 text; save it as UTF-8, one concept per line.") from None
    lines = check_user_text(text, "the concept list", multiline=True).splitlines()
    if len(lines) > settings.concepts_max_lines:
        raise BadUpload(
            f"The concept list has {len(lines):,} lines, more than {settings.concepts_max_lines:,}; upload a "
            "shorter one, or raise NEURON_ATLAS_CONCEPTS_MAX_LINES on the server."
        )
    concepts = clean_concepts(lines)
    if not concepts:
        raise AtlasError("The concept list holds no concepts; write one concept per line.")
    for number, concept in enumerate(concepts, start=1):
        if len(concept) > MAX_CONCEPT_CHARS:
            raise AtlasError(f"Concept {number} ({_shown(concept)}) is longer than {MAX_CONCEPT_CHARS} characters.")
    return concepts


def store_uploaded_concept_set(
    engine: Engine, settings: Settings, name: str, data: bytes, *, owner: User | None = None
) -> CatalogConceptSet:
    """Check an uploaded concept list, keep it under the data dir by content hash and catalogue it under `name` as
    `owner`'s (within their quota); return its row."""
    concepts = clean_uploaded_concepts(data, settings)
    body = concepts_text(concepts).encode()
    content_hash = concept_set_hash(concepts)
    path = settings.concept_sets_dir / f"{content_hash}.txt"
    try:
        with write_session(engine) as session:
            name = check_new_concept_set_name(session, name)
            check_concept_sets(session, settings, owner, adding_bytes=len(body))
            same = session.scalar(select(CatalogConceptSet).where(CatalogConceptSet.content_hash == content_hash))
            if same is not None:
                raise AtlasError(f"This list already is the concept set {same.name!r}; choose it instead.")
            created = _write_new(path, body)
            try:
                row = CatalogConceptSet(
                    name=name,
                    kind=CatalogKind.UPLOADED,
                    file=stored_path(path, settings.data_dir),
                    content_hash=content_hash,
                    n_concepts=len(concepts),
                    owner_id=owner.id if owner is not None else None,
                    n_bytes=len(body),
                )
                session.add(row)
                session.flush()
            except BaseException:
                if created:
                    path.unlink(missing_ok=True)
                raise
        return row
    except IntegrityError:
        raise AtlasError(f"The concept set name {name!r} or this list was just uploaded; choose it instead.") from None


def remove_concept_set(engine: Engine, settings: Settings, name: str, *, by: User | None = None) -> CatalogConceptSet:
    """Take the concept set `name` out of the catalogue and delete its list; return its row.

    `by` is the web user asking: its uploader or an admin may, and not while a queued or running job labels with it
    (InUse); None is the command line, which may always. Runs made with it keep their labels and their own copy of
    the list.
    """
    with write_session(engine) as session:
        row = session.scalar(select(CatalogConceptSet).where(CatalogConceptSet.name == name))
        if row is None:
            names = session.scalars(select(CatalogConceptSet.name).order_by(CatalogConceptSet.name)).all()
            raise NotCatalogued(f"There is no uploaded concept set {name!r}; the uploaded ones are: {_listed(names)}.")
        _check_removable(session, settings, row, "concept set", "concepts", row.file, by)
        session.delete(row)
    file = resolved_path(row.file, settings.data_dir)
    if row.kind == CatalogKind.UPLOADED and file.parent == settings.concept_sets_dir:
        file.unlink(missing_ok=True)
    return row


def _write_new(path: Path, data: bytes) -> bool:
    """Write `data` to `path` unless the file exists (then it holds the same bytes); return whether it was written."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return True
