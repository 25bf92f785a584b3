"""Names of uploaded models: chosen by their uploader, unique among all models, never an architecture's.

An upload is stored as its own model under its own name (the `models` row is added when it is queued, so two
uploads can never share one), which `/models/{name}/…` resolves to; the architecture stays the architecture.
So an upload cannot take over a reference run's permalink (`/models/efficientnet_lite0/…`) or another upload's.
"""

from __future__ import annotations

import functools
import re
import secrets
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.errors import AtlasError
from app.jobs.catalogue.sets import check_name
from app.jobs.uploads.architectures import ArchitectureCatalog
from app.persistence.models import TargetModel
from dissect_core.config import DissectConfig
from dissect_core.names import is_torchscript_name

MAX_SUGGESTIONS = 100


def default_model_name(filename: str) -> str:
    """Return the model name an upload gets when none is given: its file's name without suffix, as a name."""
    stem = re.sub(r"[^a-z0-9._-]+", "-", Path(filename).stem.lower()).strip("._-")
    return stem[:64].rstrip("._-") or "model"


@functools.cache
def _library_architectures() -> frozenset[str]:
    """Return every architecture the library builds by name: the EfficientNet-Lites and all of torchvision's."""
    from torchvision import models

    from dissect_core.models.targets import EFFICIENTNET_LITE

    return frozenset(name.lower() for name in [*EFFICIENTNET_LITE, *models.list_models()])


def _is_architecture(catalog: ArchitectureCatalog, name: str) -> bool:
    return name in _library_architectures() or name in {architecture.lower() for architecture in catalog.names()}


def _is_taken(session: Session, catalog: ArchitectureCatalog, name: str) -> bool:
    if _is_architecture(catalog, name):
        return True
    return session.scalar(select(TargetModel.id).where(func.lower(TargetModel.name) == name).limit(1)) is not None


def _free_name(session: Session, catalog: ArchitectureCatalog, name: str) -> str:
    base = name[:60].rstrip("._-")
    for number in range(2, MAX_SUGGESTIONS):
        candidate = f"{base}-{number}"
        if not _is_taken(session, catalog, candidate):
            return candidate
    return f"{base}-{secrets.token_hex(3)}"


def check_model_name(session: Session, catalog: ArchitectureCatalog, name: str) -> str:
    """Return `name` cleaned if an upload may take it; else raise AtlasError saying why and offering a free one."""
    cleaned = check_name(name, "model")
    if is_torchscript_name(cleaned):
        raise AtlasError(
            f"The model name {cleaned!r} ends like a TorchScript file's; choose one without that suffix, e.g. "
            f"{Path(cleaned).stem!r}."
        )
    if _is_architecture(catalog, cleaned):
        problem = "is an architecture's name, which stays with that architecture's own runs"
    elif _is_taken(session, catalog, cleaned):
        problem = "is taken by another model"
    else:
        return cleaned
    suggestion = _free_name(session, catalog, cleaned)
    raise AtlasError(f"The model name {cleaned!r} {problem}; give the upload another model_name, e.g. {suggestion!r}.")


def reserve_model_name(
    session: Session,
    config: DissectConfig,
    checkpoint_sha256: str,
    owner_id: int | None,
    checkpoint_file: str | None = None,
) -> int:
    """Add the uploaded model (its name, architecture, weights and checkpoint, kept as `checkpoint_file` when
    given) to the caller's transaction; return its row's id, which the upload's job names as its run's model."""
    name = config.model_name or config.model
    row = TargetModel(
        name=name,
        uploaded_name=name,
        architecture=config.model,
        weights=config.weights,
        checkpoint_sha256=checkpoint_sha256,
        checkpoint_file=checkpoint_file or config.checkpoint,
        owner_id=owner_id,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:  # another upload took the name between the check and now
        raise AtlasError(f"The model name {name!r} was just taken by another upload; choose another.") from None
    return row.id
