"""Login sessions: the key that signs session cookies (and CSRF tokens), and who a session belongs to.

The session itself is a signed cookie (Starlette's SessionMiddleware, itsdangerous); it holds the user's id and
creation time, so a removed user's cookie stops working even if a new user is later given the same id.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import stat
from datetime import UTC
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from app.core.config import ENV_PREFIX, MIN_SECRET_KEY_CHARS, Settings
from app.core.errors import AtlasError
from app.persistence.models import User

SECRET_KEY_FILE = "secret_key"
USER_ID_KEY = "user_id"
USER_SINCE_KEY = "user_since"


def secret_key(settings: Settings) -> str:
    """Return NEURON_ATLAS_SECRET_KEY, else the key in `<data_dir>/secret_key` (created once, mode 0600)."""
    if settings.secret_key is not None:
        return settings.secret_key
    path = settings.data_dir / SECRET_KEY_FILE
    if not path.exists():
        try:
            _create_key_file(path)
        except OSError as error:
            raise AtlasError(
                f"cannot create the session key file {path} ({error.strerror}); make {path.parent} writable, "
                f"or set {ENV_PREFIX}SECRET_KEY to a long random string"
            ) from None
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AtlasError(
            f"{path} can be read by other users of this machine (mode {stat.filemode(mode)}); "
            f"run `chmod 600 {path}`, or set {ENV_PREFIX}SECRET_KEY instead"
        )
    key = path.read_text(encoding="ascii").strip()
    if len(key) < MIN_SECRET_KEY_CHARS:
        raise AtlasError(f"{path} holds no usable key; delete it (a new one is made, logging everyone out)")
    return key


def _create_key_file(path: Path) -> None:
    # Written under a temporary name, then linked into place: a process starting at the same time either sees
    # no file or a complete one, and the first link wins.
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{SECRET_KEY_FILE}-{secrets.token_hex(8)}")
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(handle, "w", encoding="ascii") as stream:
            stream.write(secrets.token_urlsafe(48) + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def derived_key(secret: str, purpose: str) -> str:
    """Return a key for one purpose (sessions, CSRF tokens) derived from the secret, so none is reused."""
    return hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).hexdigest()


def log_in(session_data: dict[str, Any], user: User) -> None:
    """Make a (cookie) session belong to the user, dropping whatever it held before."""
    session_data.clear()
    session_data[USER_ID_KEY] = user.id
    session_data[USER_SINCE_KEY] = _since(user)


def session_user(db: Session, session_data: dict[str, Any]) -> User | None:
    """Return the user a (cookie) session belongs to, or None when it is anonymous or the user is gone."""
    user_id = session_data.get(USER_ID_KEY)
    if not isinstance(user_id, int):
        return None
    user = db.get(User, user_id)
    if user is None or _since(user) != session_data.get(USER_SINCE_KEY):
        return None
    return user


def _since(user: User) -> str:
    # SQLite hands timezone-aware columns back naive (in UTC); PostgreSQL and fresh rows are aware.
    created = user.created_at if user.created_at.tzinfo is not None else user.created_at.replace(tzinfo=UTC)
    return created.astimezone(UTC).isoformat()
