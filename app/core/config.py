"""Deployment settings read from `NEURON_ATLAS_*` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import AtlasError

ENV_PREFIX = "NEURON_ATLAS_"


@dataclass(frozen=True)
class Settings:
    """Where data lives and how the server and workers behave; `from_env` fills it from the environment."""

    data_dir: Path
    database_url: str
    upload_limit_bytes: int = 200 * 1024 * 1024
    heartbeat_interval_s: float = 5.0
    stale_timeout_s: float = 60.0
    max_attempts: int = 3

    @property
    def media_dir(self) -> Path:
        """Content-addressed images (views, crops, heatmaps) and concept lists."""
        return self.data_dir / "media"

    @property
    def artifacts_dir(self) -> Path:
        """One folder per stored run with the tensors needed to score concepts typed later."""
        return self.data_dir / "runs"

    @property
    def cache_dir(self) -> Path:
        """Downloaded weights, datasets and embeddings the pipeline may reuse."""
        return self.data_dir / "cache"

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
        settings = cls.for_data_dir(env.get(f"{ENV_PREFIX}DATA_DIR") or "./data", **overrides)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Raise AtlasError when the settings contradict each other."""
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


def sqlite_url(path: Path) -> str:
    """Return the SQLAlchemy URL of a SQLite database file."""
    return f"sqlite:///{path}"


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
