"""SQLAlchemy 2.x ORM schema: users and their tokens, models, probe and concept sets, runs, layers, neurons, jobs."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    """Return the current time, timezone-aware UTC."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """Return a stored time as timezone-aware UTC (SQLite hands timezone-aware columns back naive, in UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# Named constraints let later migrations alter them on SQLite (batch mode) and PostgreSQL alike.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    """An account; `password_hash` is an Argon2 hash, or None for an account that logs in by link or token only."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('viewer', 'editor', 'admin')", name="role"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiToken(Base):
    """A bearer token for scripts; only the SHA-256 of the token is kept, and a revoked one stays for the record."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    user: Mapped[User] = relationship(lazy="joined")


class LoginLink(Base):
    """A one-time login link: the SHA-256 of its token, when it expires and when it was used."""

    __tablename__ = "login_links"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginSession(Base):
    """A browser's login: the SHA-256 of the random id its signed cookie carries, whose it is and when it ends.

    Deleting the row ends the session wherever its cookie was copied to (logout, a new password or role)."""

    __tablename__ = "login_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    user: Mapped[User] = relationship(lazy="joined")


class ThrottleScope(StrEnum):
    """What a login-failure counter counts: one account from one address, one address, or one account."""

    PAIR = "pair"
    ADDRESS = "address"
    ACCOUNT = "account"


class LoginThrottle(Base):
    """A counter of failed logins (app.auth.throttle), keyed by the SHA-256 of its scope and the name and/or
    address it counts (never stored as typed: a password typed into the name field stays unreadable)."""

    __tablename__ = "login_throttles"
    __table_args__ = (CheckConstraint("scope IN ('pair', 'address', 'account')", name="scope"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(10))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: For a (account, address) pair: its last successful login, which makes the address a known one.
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


def owner_column() -> Mapped[int | None]:
    """Return a new `owner_id` column: the creating user, NULL for objects stored by the command line."""
    return mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)


class TargetModel(Base):
    """A network that can be dissected: an architecture plus optional checkpoint."""

    __tablename__ = "models"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    architecture: Mapped[str] = mapped_column(String(200))
    weights: Mapped[str | None] = mapped_column(String(200))
    checkpoint_sha256: Mapped[str | None] = mapped_column(String(64))
    checkpoint_file: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    owner_id: Mapped[int | None] = owner_column()
    #: The name an uploaded checkpoint was given (also its `name`), unique among uploads; None for the others.
    uploaded_name: Mapped[str | None] = mapped_column(String(200), unique=True)
    runs: Mapped[list[Run]] = relationship(back_populates="model")


class ProbeSet(Base):
    """A set of probe images, identified by the hash of its images' content hashes."""

    __tablename__ = "probe_sets"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(500))
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    n_images: Mapped[int] = mapped_column(Integer)


class ConceptSet(Base):
    """A concept vocabulary, identified by the hash of its cleaned text; the words live in `file`."""

    __tablename__ = "concept_sets"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(500))
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    n_concepts: Mapped[int] = mapped_column(Integer)
    file: Mapped[str] = mapped_column(Text)


class CatalogKind(StrEnum):
    """Where a catalogued probe or concept set comes from."""

    BUILTIN = "builtin"  # shipped or built by the app itself (the demo's photographs)
    FOLDER = "folder"  # a server folder an operator registered with `neuron-atlas probe-sets add`
    UPLOADED = "uploaded"  # an archive or list an editor uploaded


class CatalogProbeSet(Base):
    """A probe set web users may choose by name; `folder` is where its images are on the server (never shown)."""

    __tablename__ = "catalog_probe_sets"
    __table_args__ = (CheckConstraint("kind IN ('builtin', 'folder', 'uploaded')", name="kind"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    folder: Mapped[str] = mapped_column(Text)
    n_images: Mapped[int] = mapped_column(Integer)
    #: The library's probe-set id of its images (as catalogued): the same images are offered under one name only.
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: Media files (relative to the media dir) of a few of its images, as thumbnails.
    thumbnails: Mapped[list[Any]] = mapped_column(JSON)
    owner_id: Mapped[int | None] = owner_column()
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: The bytes of an uploaded set's images (what counts against its owner's quota); None for the others.
    n_bytes: Mapped[int | None] = mapped_column(BigInteger)


class CatalogConceptSet(Base):
    """An uploaded concept list web users may choose by name; `file` holds its cleaned concepts (never shown)."""

    __tablename__ = "catalog_concept_sets"
    __table_args__ = (CheckConstraint("kind IN ('builtin', 'folder', 'uploaded')", name="kind"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    file: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64), unique=True)
    n_concepts: Mapped[int] = mapped_column(Integer)
    owner_id: Mapped[int | None] = owner_column()
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: The bytes of its stored list (what counts against its owner's quota).
    n_bytes: Mapped[int | None] = mapped_column(BigInteger)


#: The longest run name and notes an owner may give a run.
RUN_NAME_MAX = 200
RUN_NOTES_MAX = 5000


class Run(Base):
    """One finished dissection; `settings` holds its record, `artifacts_dir` its tensors."""

    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    probe_set_id: Mapped[int] = mapped_column(ForeignKey("probe_sets.id"))
    concept_set_id: Mapped[int] = mapped_column(ForeignKey("concept_sets.id"))
    #: The run's record (dissect_core.run_record.RunRecord.to_json(), paths under the data folder relative to it):
    #: everything about the run that no query filters or sorts on.
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    artifacts_dir: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    owner_id: Mapped[int | None] = owner_column()
    #: What its owner calls it (at most RUN_NAME_MAX characters); None shows as "run #N · model".
    name: Mapped[str | None] = mapped_column(String(RUN_NAME_MAX))
    #: Its owner's notes (at most RUN_NOTES_MAX characters); None when there are none.
    notes: Mapped[str | None] = mapped_column(Text)
    #: The run this one relabels; None for a fresh dissection, or when the parent was deleted.
    parent_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), index=True)
    owner: Mapped[User | None] = relationship()
    model: Mapped[TargetModel] = relationship(back_populates="runs")
    probe_set: Mapped[ProbeSet] = relationship()
    concept_set: Mapped[ConceptSet] = relationship()
    layers: Mapped[list[Layer]] = relationship(
        back_populates="run", order_by="Layer.position", cascade="all, delete-orphan"
    )


class ProbeImage(Base):
    """One probe image of a run, in probe order; `view_file` is its target-input view in the media dir."""

    __tablename__ = "probe_images"
    #: By view file too: the media route serves a view only while some run's probe image has it.
    __table_args__ = (UniqueConstraint("run_id", "index"), Index("ix_probe_images_view_file", "view_file"))
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    source_path: Mapped[str] = mapped_column(Text)
    view_file: Mapped[str | None] = mapped_column(Text)


class Layer(Base):
    """A dissected layer of a run, in forward order (`position`)."""

    __tablename__ = "layers"
    __table_args__ = (UniqueConstraint("run_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(500))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    n_units: Mapped[int] = mapped_column(Integer)
    #: The layer's evaluation (dissect_core.results.LayerEvaluation as a dict); None for runs stored before it.
    evaluation: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    run: Mapped[Run] = relationship(back_populates="layers")


class Neuron(Base):
    """A labelled neuron: best concept, score, runners-up as [{"concept", "score"}, ...], and its evaluation.

    The evaluation columns (dissect_core.results.NeuronEvaluation; `explanation` as [{"concept", "weight"}, ...])
    are NULL (SQL NULL, never JSON null) for neurons stored before evaluations existed.
    """

    __tablename__ = "neurons"
    __table_args__ = (
        UniqueConstraint("layer_id", "unit"),
        Index("ix_neurons_layer_score", "layer_id", "score"),
        Index("ix_neurons_layer_label", "layer_id", "label"),
        Index("ix_neurons_layer_explained_r", "layer_id", "explained_r"),
        Index("ix_neurons_layer_clarity", "layer_id", "clarity"),
        Index("ix_neurons_layer_polysemanticity", "layer_id", "polysemanticity"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    layer_id: Mapped[int] = mapped_column(ForeignKey("layers.id", ondelete="CASCADE"))
    unit: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(500))
    score: Mapped[float] = mapped_column(Float)
    runners_up: Mapped[list[Any]] = mapped_column(JSON)
    explained_r: Mapped[float | None] = mapped_column(Float)
    p_value: Mapped[float | None] = mapped_column(Float)
    reliable: Mapped[bool | None] = mapped_column(Boolean)
    stability: Mapped[float | None] = mapped_column(Float)
    explanation: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True))
    explanation_r: Mapped[float | None] = mapped_column(Float)
    ground_truth_r: Mapped[float | None] = mapped_column(Float)
    #: The label's grade (dissect_core.evaluation.verdict) and its reasons; its concept's coverage; the label-free
    #: scores of the top images (dissect_core.analysis.label_free). NULL for runs stored before them (0011).
    verdict: Mapped[str | None] = mapped_column(String(20))
    verdict_reasons: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    coverage_source: Mapped[str | None] = mapped_column(String(20))
    n_carrying: Mapped[int | None] = mapped_column(Integer)
    coverage_judgeable: Mapped[bool | None] = mapped_column(Boolean)
    encoder_blind: Mapped[bool | None] = mapped_column(Boolean)
    clarity: Mapped[float | None] = mapped_column(Float)
    polysemanticity: Mapped[float | None] = mapped_column(Float)
    redundancy: Mapped[float | None] = mapped_column(Float)
    top_images: Mapped[list[TopImage]] = relationship(order_by="TopImage.rank")


#: What a top image's `crop_file` / `heatmap_file` holds when the file is cut on its first request, not at store time.
CUT_ON_REQUEST = "cut-on-request"


def _stored_file_only(column: str) -> dict[str, Any]:
    """Return the condition of a partial index over a top-image file column: rows naming a stored file."""
    condition = text(f"{column} IS NOT NULL AND {column} != '{CUT_ON_REQUEST}'")
    return {"sqlite_where": condition, "postgresql_where": condition}


class TopImage(Base):
    """One of a neuron's top-activating images: crop and heatmap files are content-addressed."""

    __tablename__ = "top_images"
    __table_args__ = (
        UniqueConstraint("neuron_id", "rank"),
        # Files written at store time (runs stored before cutting on request), found by name for the media route;
        # partial, so the rows of newer runs (all CUT_ON_REQUEST) cost these indexes nothing.
        Index("ix_top_images_crop_file", "crop_file", **_stored_file_only("crop_file")),
        Index("ix_top_images_heatmap_file", "heatmap_file", **_stored_file_only("heatmap_file")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    neuron_id: Mapped[int] = mapped_column(ForeignKey("neurons.id", ondelete="CASCADE"))
    rank: Mapped[int] = mapped_column(Integer)
    image_index: Mapped[int] = mapped_column(Integer)
    image_hash: Mapped[str] = mapped_column(String(64))
    activation: Mapped[float] = mapped_column(Float)
    box_x0: Mapped[float] = mapped_column(Float)
    box_y0: Mapped[float] = mapped_column(Float)
    box_x1: Mapped[float] = mapped_column(Float)
    box_y1: Mapped[float] = mapped_column(Float)
    crop_file: Mapped[str] = mapped_column(Text)
    view_file: Mapped[str] = mapped_column(Text)
    heatmap_file: Mapped[str | None] = mapped_column(Text)


class TypedConcept(Base):
    """A concept a user typed on a run's pages, kept per run."""

    __tablename__ = "typed_concepts"
    __table_args__ = (UniqueConstraint("run_id", "text"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    owner_id: Mapped[int | None] = owner_column()


class JobState(StrEnum):
    """Where a job is in its life; the last three are final."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """True for a state no job leaves (succeeded, failed, cancelled)."""
        return self in FINISHED_STATES


FINISHED_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


class Job(Base):
    """A queued dissection; `status` holds a JobState value."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_status_created", "status", "created_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(50), default="dissect")
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default=JobState.QUEUED.value)
    stage: Mapped[str | None] = mapped_column(String(100))
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker_id: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: When the current `stage` began (its first report), so the job page's ETA uses that stage's own rate.
    stage_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    owner_id: Mapped[int | None] = owner_column()
    owner: Mapped[User | None] = relationship()
    #: SHA-256 of the params as canonical JSON: an identical relabel finds the job it repeats.
    params_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    #: The run a relabel job relabels; handed on to the run it stores (Run.parent_run_id).
    parent_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), index=True)
    #: The model row the job's run joins, added before it was queued (an upload's; a relabel's parent's model).
    target_model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"))
    #: What each attempt came to, oldest first: [{"attempt", "at", "worker", "status", "note"}, ...].
    history: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default=text("'[]'"))


class Intervention(Base):
    """One intervention on units of a run's layer (app.jobs.interventions): what was asked, its job and its result.

    `result` holds the stored effect (dissect_core.interventions.InterventionEffect as JSON, downstream units with
    their labels, and the label–effect agreement); NULL until its job succeeds. `status` is written when the row is
    queued and when it succeeds; while its job exists, the job's status is the one shown.
    """

    __tablename__ = "interventions"
    __table_args__ = (Index("ix_interventions_run_layer", "run_id", "layer"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    layer: Mapped[str] = mapped_column(String(500))
    units: Mapped[list[Any]] = mapped_column(JSON)
    mode: Mapped[str] = mapped_column(String(10))
    factor: Mapped[float | None] = mapped_column(Float)
    #: SHA-256 of (run, layer, units, mode, factor) as canonical JSON: an identical request finds the one it repeats.
    params_sha256: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(20), default=JobState.QUEUED.value)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), index=True)
    owner_id: Mapped[int | None] = owner_column()
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    job: Mapped[Job | None] = relationship()


class UnitSweep(Base):
    """One unit's result in a run-wide sweep (app.jobs.interventions): the label–effect agreement of zeroing it
    (cosine, z, p) and what zeroing it cost; the latest sweep of a unit replaces the one before."""

    __tablename__ = "unit_sweeps"
    __table_args__ = (
        UniqueConstraint("run_id", "layer", "unit"),
        Index("ix_unit_sweeps_run_layer_z", "run_id", "layer", "label_effect_z"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    layer: Mapped[str] = mapped_column(String(500))
    unit: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(500))
    label_effect_cosine: Mapped[float] = mapped_column(Float)
    label_effect_z: Mapped[float] = mapped_column(Float)
    label_effect_p: Mapped[float] = mapped_column(Float)
    #: The classes whose logits fell most when the unit was zeroed (class indices, most hurt first).
    top_classes: Mapped[list[Any]] = mapped_column(JSON)
    predictions_changed: Mapped[float] = mapped_column(Float)
    n_images: Mapped[int] = mapped_column(Integer)
    sweep_seconds: Mapped[float] = mapped_column(Float)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RunImage(Base):
    """An image an editor uploaded to a run (app.jobs.run_images): its media file, its job and, once the job ran,
    the run's model's reading of it.

    `file` is the upload as sent (checked, named by its sha256 in the media dir, never by the user); `result` holds
    the prediction, every dissected layer's activations and each unit's percentile among the probe images (NULL until
    its job succeeds). `status` is written when the row is queued and when it succeeds; while its job exists, the
    job's status is the one shown.
    """

    __tablename__ = "run_images"
    __table_args__ = (
        Index("ix_run_images_run_sha256", "run_id", "sha256"),
        Index("ix_run_images_file", "file"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    owner_id: Mapped[int | None] = owner_column()
    file: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default=JobState.QUEUED.value)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), index=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    job: Mapped[Job | None] = relationship()
