"""Concepts typed on a run's pages: keep them per run, then relabel the run with them added to its vocabulary."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.errors import AtlasError, QuotaExceeded
from app.core.redact import redact_paths
from app.jobs.queue.jobs import enqueue, identical_job
from app.jobs.queue.quotas import check_queued_jobs, check_typed_concepts
from app.jobs.runs.relabel_noop import refuse_reproducing_relabel
from app.persistence.models import Run, TypedConcept, User
from app.persistence.store.layout import ArtifactsLayout
from app.read.artifacts.scoring import read_concepts
from app.read.catalogue.sets import public_names
from app.read.concepts.search import clean_concept
from app.read.runs.queries import get_run
from dissect_core.config import DissectConfig
from dissect_core.data.concepts import clean_concepts, concept_set_hash, concepts_text
from dissect_core.errors import DissectError
from dissect_core.run_record import RunRecord


def keep_typed_concept(
    session: Session, run_id: int, text: str, *, owner_id: int | None = None, limit: tuple[Settings, User] | None = None
) -> TypedConcept:
    """Store a typed concept for the run (once, kept by `owner_id`, within the user's `limit`); return its row."""
    get_run(session, run_id)
    concept = clean_concept(text)
    existing = session.scalars(
        select(TypedConcept).where(TypedConcept.run_id == run_id, TypedConcept.text == concept)
    ).first()
    if existing is not None:
        return existing
    if limit is not None:
        check_typed_concepts(session, *limit, run_id)
    row = TypedConcept(run_id=run_id, text=concept, owner_id=owner_id)
    session.add(row)
    session.flush()
    return row


def run_concepts(settings: Settings, run: Run) -> list[str]:
    """Return the run's concept vocabulary as stored with its artifacts (or in the media dir)."""
    with_artifacts = read_concepts(ArtifactsLayout.of_run(run.artifacts_dir, settings.data_dir))
    if with_artifacts is not None:
        return clean_concepts(with_artifacts)
    if run.concept_set.file:
        stored = Path(run.concept_set.file)
        path = stored if stored.is_absolute() else settings.media_dir / stored
        if path.is_file():
            return clean_concepts(path.read_text(encoding="utf-8").splitlines())
    raise AtlasError(
        f"Run {run.id}'s concept list is missing from its stored files; dissect the model again instead of relabelling."
    )


def relabel_config(run: Run, concepts_file: Path, data_dir: Path) -> DissectConfig:
    """Return the config the run was asked for (its record's `config`, never what the run resolved, such as the
    device it ran on; its files and folders found under `data_dir` when stored relative to it), with the concept
    set swapped for `concepts_file`."""
    asked = RunRecord.from_json(run.settings).config
    return DissectConfig.from_dict({**asked.to_dict(), "concepts": str(concepts_file)}, base_dir=data_dir)


def relabel_with_typed_concepts(session: Session, settings: Settings, run_id: int, *, owner: User | None = None) -> int:
    """Queue a dissection (of `owner`) with the run's settings and its vocabulary extended by its typed concepts,
    the run as its parent; return its job id, or the id of a queued, running or succeeded job with the same
    settings. One that would reproduce the run (every typed concept already in its vocabulary) is refused."""
    from app.jobs.dissections import config_to_params, validate_config

    run = get_run(session, run_id)
    typed = [row.text for row in session.scalars(select(TypedConcept).where(TypedConcept.run_id == run_id))]
    if not typed:
        raise AtlasError(f"Run {run_id} has no typed concepts yet: score a concept on a layer page and keep it.")
    vocabulary = run_concepts(settings, run)
    extended = clean_concepts([*vocabulary, *typed])
    text = concepts_text(extended)
    digest = concept_set_hash(extended)[:12]
    names = public_names(session)
    recorded = RunRecord.from_json(run.settings).config.concepts or run.concept_set.name
    base = names.get(recorded) or Path(recorded).stem or "concepts"
    path = settings.data_dir / "concepts" / f"{base}+typed-{digest}.txt"
    parent_config = relabel_config(run, Path(recorded), settings.data_dir)  # the parent's settings as recorded
    relabel = relabel_config(run, path, settings.data_dir)
    refuse_reproducing_relabel(run.id, parent_config, vocabulary, relabel, extended)  # before anything is written
    path.parent.mkdir(parents=True, exist_ok=True)
    existed = path.exists()
    if not existed:
        path.write_text(text, encoding="utf-8")
    try:
        params = config_to_params(validate_config(relabel), settings.data_dir)  # the relabel's one check
        same = identical_job(session, params)
        if same is not None:
            return same.id
        check_queued_jobs(session, settings, owner)
        owner_id = owner.id if owner is not None else None
        # The relabel's run joins its parent's model row: no file is hashed again to find it.
        job = enqueue(session, params, owner_id=owner_id, parent_run_id=run.id, target_model_id=run.model_id)
        return job.id
    except BaseException as error:
        if not existed:
            path.unlink(missing_ok=True)
        if isinstance(error, DissectError) and not isinstance(error, QuotaExceeded):  # told without server paths
            raise AtlasError(redact_paths(str(error), names)) from None
        raise
