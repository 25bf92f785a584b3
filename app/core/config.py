"""Deployment settings read from `NEURON_ATLAS_*` environment variables."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from app.core.errors import AtlasError
from dissect_core.cache_dir import CACHE_DIR_ENV

ENV_PREFIX = "NEURON_ATLAS_"
#: Who may read runs, layers, neurons and concept scores: anyone with the link, or logged-in users only.
READ_ACCESS_CHOICES = ("public", "users")
MIN_SECRET_KEY_CHARS = 32
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


@dataclass(frozen=True)
class Settings:
    """Where data lives and how the server and workers behave; `from_env` fills it from the environment."""

    data_dir: Path
    database_url: str
    upload_limit_bytes: int = 200 * 1024 * 1024
    heartbeat_interval_s: float = 5.0
    stale_timeout_s: float = 60.0
    max_attempts: int = 3
    #: Bounds on an uploaded probe-set archive: files in it, their total uncompressed bytes, pixels per image.
    probe_max_files: int = 20_000
    probe_max_bytes: int = 2 * 1024**3
    probe_max_pixels: int = 40_000_000
    #: The pixels of all an archive's images together: what decoding them costs the worker (4 gigapixels, about
    #: 20,000 photographs of 450 x 450, or 100 of 6,200 x 6,200 images).
    probe_max_total_pixels: int = 4_000_000_000
    #: The most bytes of one image uploaded to a run ("your own image"); its pixels are bounded by
    #: `probe_max_pixels`, like a probe set's images.
    image_max_bytes: int = 20 * 1024 * 1024
    #: Bounds on an uploaded concept list: its lines and its bytes.
    concepts_max_lines: int = 50_000
    concepts_max_bytes: int = 2 * 1024 * 1024
    #: The most tensor bytes an uploaded checkpoint may declare (torchvision's largest models hold 2.6 GB).
    checkpoint_max_bytes: int = 4 * 1024**3
    #: The longest safetensors header (tensor names, dtypes, shapes) an uploaded checkpoint may have; the largest
    #: torchvision state dict's is 159 KB (bench/bench_safetensors_headers.py).
    checkpoint_max_header_bytes: int = 1024 * 1024
    #: The most bytes a pushed run's archive (POST /api/v1/runs) may hold, as sent and once unpacked; its files
    #: and images are bounded like a probe set's (`probe_max_files`, `probe_max_pixels`, ...).
    push_max_bytes: int = 2 * 1024**3
    #: Origins (scheme://host[:port]) whose pages may read the API from a browser (CORS); empty: none.
    cors_origins: tuple[str, ...] = ()
    #: The most bytes of rendered answers the web server keeps to replay (app.web.middleware.response_cache).
    response_cache_bytes: int = 256 * 1024 * 1024
    #: The encoders web users may choose; None means the library's (ConSE's, and open_clip's pretrained names).
    encoders: tuple[str, ...] | None = None
    #: "public": reading needs no account (permalinks open for anyone); "users": every page needs a login.
    read_access: str = "public"
    #: Signs session cookies and CSRF tokens; None: a random key kept in `<data_dir>/secret_key`.
    secret_key: str | None = field(default=None, repr=False)
    #: Host names the server answers to; empty: derived from `bind_host` (see `trusted_hosts`).
    allowed_hosts: tuple[str, ...] = ()
    #: The address `serve` listens on.
    bind_host: str = "127.0.0.1"
    #: The embeddings cache shared with the library (NEURON_ATLAS_CACHE_DIR); None: `<data_dir>/cache`.
    shared_cache_dir: Path | None = None
    #: Per-user limits (admins and the command line are exempt): jobs waiting in the queue, checkpoints (and,
    #: counted apart, pushed runs) uploaded in the last hour, concepts kept per run for a relabel.
    max_queued_jobs: int = 5
    max_uploads_per_hour: int = 20
    max_typed_concepts: int = 200
    #: Per-user limits on uploaded probe sets (how many, their images' bytes together) and concept sets (how
    #: many, their lists' bytes together); admins and the command line are exempt.
    max_probe_sets: int = 30
    max_probe_set_bytes: int = 10 * 1024**3
    max_concept_sets: int = 30
    max_concept_set_bytes: int = 20 * 1024 * 1024
    #: Login throttling (app.auth.throttle): failed logins allowed before back-off for one account from one
    #: address (strict), from one address to any account, and to one account from addresses it never logged in
    #: from (loose); past them each failure doubles the wait, from `login_backoff_s` up to `login_backoff_max_s`.
    login_free_failures: int = 5
    login_address_free_failures: int = 20
    login_account_free_failures: int = 100
    login_backoff_s: float = 1.0
    login_backoff_max_s: float = 900.0
    #: Runs whose text encoder and concept-search artifacts the server loads in the background, so the first
    #: concept typed does not wait for them: this many of the newest at start, and each run whose page is opened;
    #: 0 turns preloading off.
    preload_runs: int = 2

    @property
    def trusted_hosts(self) -> tuple[str, ...]:
        """Host header values accepted: NEURON_ATLAS_ALLOWED_HOSTS, else the names of the bound address."""
        return self.allowed_hosts or default_allowed_hosts(self.bind_host)

    @property
    def media_dir(self) -> Path:
        """Content-addressed images (views, crops, heatmaps) and concept lists."""
        return self.data_dir / "media"

    @property
    def artifacts_dir(self) -> Path:
        """One folder per stored run with the tensors needed to score concepts typed later."""
        return self.data_dir / "runs"

    @property
    def probe_sets_dir(self) -> Path:
        """Uploaded probe sets, one folder per content hash (and `.incoming-*` folders while one is unpacked)."""
        return self.data_dir / "probe-sets"

    @property
    def pushes_dir(self) -> Path:
        """Where a pushed run's archive is unpacked and checked (`.incoming-*` folders, removed once it is stored)."""
        return self.data_dir / "pushes"

    @property
    def concept_sets_dir(self) -> Path:
        """Uploaded concept lists, one file per content hash."""
        return self.data_dir / "concept-sets"

    @property
    def cache_dir(self) -> Path:
        """Downloaded weights, datasets and embeddings the pipeline may reuse: NEURON_ATLAS_CACHE_DIR when set (the
        library's cache too, `dissect_core.default_cache_dir`), else the data folder's `cache`."""
        return self.shared_cache_dir or self.data_dir / "cache"

    @classmethod
    def for_data_dir(cls, data_dir: str | Path, **overrides: object) -> Settings:
        """Return settings for a data folder with the default SQLite database inside it."""
        data = Path(data_dir).expanduser().resolve()
        url = overrides.pop("database_url", None) or sqlite_url(data / "atlas.db")
        return cls(data_dir=data, database_url=str(url), **overrides)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Return settings from `NEURON_ATLAS_*` variables; a malformed value raises AtlasError."""
        env = os.environ if env is None else env
        overrides: dict[str, object] = {}
        if env.get(f"{ENV_PREFIX}DATABASE_URL"):
            overrides["database_url"] = env[f"{ENV_PREFIX}DATABASE_URL"]
        if f"{ENV_PREFIX}UPLOAD_LIMIT_MB" in env:
            overrides["upload_limit_bytes"] = int(_number(env, "UPLOAD_LIMIT_MB", minimum=1) * 1024 * 1024)
        if f"{ENV_PREFIX}HEARTBEAT_S" in env:
            overrides["heartbeat_interval_s"] = _number(env, "HEARTBEAT_S", minimum=0.05)
        if f"{ENV_PREFIX}STALE_TIMEOUT_S" in env:
            overrides["stale_timeout_s"] = _number(env, "STALE_TIMEOUT_S", minimum=0.1)
        if f"{ENV_PREFIX}MAX_ATTEMPTS" in env:
            overrides["max_attempts"] = int(_number(env, "MAX_ATTEMPTS", minimum=1, integer=True))
        for name, field_name, scale in _BOUNDS:
            if f"{ENV_PREFIX}{name}" in env:
                overrides[field_name] = int(_number(env, name, minimum=1, integer=True)) * scale
        for name, field_name in _LOGIN_WAITS:
            if f"{ENV_PREFIX}{name}" in env:
                overrides[field_name] = _number(env, name, minimum=0.01)
        if f"{ENV_PREFIX}PRELOAD_RUNS" in env:
            overrides["preload_runs"] = int(_number(env, "PRELOAD_RUNS", minimum=0, integer=True))
        if env.get(f"{ENV_PREFIX}ENCODERS", "").strip():
            overrides["encoders"] = _names(env, "ENCODERS")
        if f"{ENV_PREFIX}READ_ACCESS" in env:
            overrides["read_access"] = env[f"{ENV_PREFIX}READ_ACCESS"].strip().lower()
        if env.get(f"{ENV_PREFIX}SECRET_KEY"):
            overrides["secret_key"] = env[f"{ENV_PREFIX}SECRET_KEY"]
        if env.get(f"{ENV_PREFIX}ALLOWED_HOSTS", "").strip():
            hosts = env[f"{ENV_PREFIX}ALLOWED_HOSTS"].split(",")
            overrides["allowed_hosts"] = tuple(host.strip().lower() for host in hosts if host.strip())
        if env.get(f"{ENV_PREFIX}CORS_ORIGINS", "").strip():
            overrides["cors_origins"] = _names(
                env, "CORS_ORIGINS", "https://notebooks.example.org,http://localhost:8888"
            )
        if env.get(CACHE_DIR_ENV, "").strip():
            overrides["shared_cache_dir"] = Path(env[CACHE_DIR_ENV].strip()).expanduser().resolve()
        settings = cls.for_data_dir(env.get(f"{ENV_PREFIX}DATA_DIR") or "./data", **overrides)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise AtlasError when the settings contradict each other or a value is unusable."""
        if self.read_access not in READ_ACCESS_CHOICES:
            raise AtlasError(
                f"{ENV_PREFIX}READ_ACCESS={self.read_access!r} is not one of {', '.join(READ_ACCESS_CHOICES)}; "
                "use 'public' (anyone with a link may read) or 'users' (every page needs a login)"
            )
        if self.secret_key is not None and len(self.secret_key) < MIN_SECRET_KEY_CHARS:
            raise AtlasError(
                f"{ENV_PREFIX}SECRET_KEY has {len(self.secret_key)} characters, fewer than {MIN_SECRET_KEY_CHARS}; "
                "set it to a long random string, e.g. the output of "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))', or unset it to use a generated key"
            )
        for host in self.allowed_hosts:
            if "*" in host[1:] or (host.startswith("*") and host != "*" and not host.startswith("*.")):
                raise AtlasError(
                    f"{ENV_PREFIX}ALLOWED_HOSTS has {host!r}; a wildcard may only start a name, as in "
                    "'*.example.org', or stand alone ('*' accepts any host)"
                )
        for origin in self.cors_origins:
            scheme, _, host = origin.partition("://")
            if origin != "*" and (scheme not in ("http", "https") or not host or "/" in host):
                raise AtlasError(
                    f"{ENV_PREFIX}CORS_ORIGINS has {origin!r}, not an origin; list origins as scheme://host[:port], "
                    "e.g. https://notebooks.example.org,http://localhost:8888, or '*' for any page"
                )
        if self.login_backoff_max_s < self.login_backoff_s:
            raise AtlasError(
                f"{ENV_PREFIX}LOGIN_BACKOFF_MAX_S ({self.login_backoff_max_s:g}) is below {ENV_PREFIX}LOGIN_BACKOFF_S "
                f"({self.login_backoff_s:g}), the first wait after too many failed logins; raise the maximum"
            )
        if self.stale_timeout_s <= 2 * self.heartbeat_interval_s:
            raise AtlasError(
                f"{ENV_PREFIX}STALE_TIMEOUT_S ({self.stale_timeout_s:g}) must be more than twice "
                f"{ENV_PREFIX}HEARTBEAT_S ({self.heartbeat_interval_s:g}), or live jobs would be requeued; "
                "raise the timeout or lower the heartbeat interval"
            )

    def ensure_dirs(self) -> None:
        """Create the data, media, artifacts and cache folders if missing."""
        for folder in (self.data_dir, self.media_dir, self.artifacts_dir, self.cache_dir):
            folder.mkdir(parents=True, exist_ok=True)


def default_allowed_hosts(bind_host: str) -> tuple[str, ...]:
    """Return the host names a server bound to `bind_host` answers to by default.

    A loopback address answers to the loopback names; every interface (0.0.0.0, ::) also to this machine's
    name; any other address or name to itself only. Other names go in NEURON_ATLAS_ALLOWED_HOSTS.
    """
    host = bind_host.strip().strip("[]").lower()
    if host in ("", "0.0.0.0", "::"):
        return (*LOOPBACK_HOSTS, socket.gethostname().lower())
    if host == "localhost":
        return LOOPBACK_HOSTS
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return (host,)
    if address.is_loopback:
        return LOOPBACK_HOSTS if host in ("127.0.0.1", "::1") else (*LOOPBACK_HOSTS, host)
    return (f"[{host}]",) if address.version == 6 else (host,)


def sqlite_url(path: Path) -> str:
    """Return the SQLAlchemy URL of a SQLite database file."""
    return f"sqlite:///{path}"


#: Environment variable, Settings field and unit of the upload, cache, per-user and login-throttle bounds.
_BOUNDS = (
    ("PROBE_MAX_FILES", "probe_max_files", 1),
    ("PROBE_MAX_MB", "probe_max_bytes", 1024 * 1024),
    ("PROBE_MAX_PIXELS", "probe_max_pixels", 1),
    ("CONCEPTS_MAX_LINES", "concepts_max_lines", 1),
    ("CONCEPTS_MAX_KB", "concepts_max_bytes", 1024),
    ("CHECKPOINT_MAX_MB", "checkpoint_max_bytes", 1024 * 1024),
    ("PUSH_MAX_MB", "push_max_bytes", 1024 * 1024),
    ("IMAGE_MAX_MB", "image_max_bytes", 1024 * 1024),
    ("RESPONSE_CACHE_MB", "response_cache_bytes", 1024 * 1024),
    ("MAX_QUEUED_JOBS", "max_queued_jobs", 1),
    ("MAX_UPLOADS_PER_HOUR", "max_uploads_per_hour", 1),
    ("MAX_TYPED_CONCEPTS", "max_typed_concepts", 1),
    ("PROBE_MAX_TOTAL_MEGAPIXELS", "probe_max_total_pixels", 1_000_000),
    ("CHECKPOINT_MAX_HEADER_KB", "checkpoint_max_header_bytes", 1024),
    ("MAX_PROBE_SETS", "max_probe_sets", 1),
    ("MAX_PROBE_SETS_MB", "max_probe_set_bytes", 1024 * 1024),
    ("MAX_CONCEPT_SETS", "max_concept_sets", 1),
    ("MAX_CONCEPT_SETS_KB", "max_concept_set_bytes", 1024),
    ("LOGIN_FREE_FAILURES", "login_free_failures", 1),
    ("LOGIN_ADDRESS_FREE_FAILURES", "login_address_free_failures", 1),
    ("LOGIN_ACCOUNT_FREE_FAILURES", "login_account_free_failures", 1),
)
#: Environment variable and Settings field of the login throttle's waits, in seconds.
_LOGIN_WAITS = (("LOGIN_BACKOFF_S", "login_backoff_s"), ("LOGIN_BACKOFF_MAX_S", "login_backoff_max_s"))


def _names(
    env: Mapping[str, str], name: str, example: str = "ViT-B-16:openai,conse:efficientnet_lite2+minilm"
) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part.strip() for part in env[f"{ENV_PREFIX}{name}"].split(",") if part.strip()))
    spaced = [item for item in names if any(char.isspace() for char in item)]
    if spaced:
        raise AtlasError(
            f"{ENV_PREFIX}{name} holds {spaced[0]!r} with a space; separate the names with commas, e.g. {example}"
        )
    return names


def _number(env: Mapping[str, str], name: str, *, minimum: float, integer: bool = False) -> float:
    raw = env[f"{ENV_PREFIX}{name}"].strip()
    kind = "a whole number" if integer else "a number"
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise AtlasError(f"{ENV_PREFIX}{name}={raw!r} is not {kind}; set it to {kind} >= {minimum:g}") from None
    if value < minimum:
        raise AtlasError(f"{ENV_PREFIX}{name}={raw!r} is too small; set it to {kind} >= {minimum:g}")
    return value
