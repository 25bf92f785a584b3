"""Login sessions: the key that signs session cookies (and CSRF tokens), and who a session belongs to.

The cookie is signed (Starlette's SessionMiddleware, itsdangerous) and carries a random session id; the database
keeps its SHA-256 in a LoginSession row with the user and the end of its lifetime. Deleting the row ends the
session everywhere, a copied cookie included: logging out deletes the session's row, a new password or role and
`neuron-atlas users logout NAME` delete all of the user's, and removing a user deletes theirs with them.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import MutableMapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.auth.tokens import token_hash
from app.core.config import ENV_PREFIX, MIN_SECRET_KEY_CHARS, Settings
from app.core.errors import AtlasError
from app.persistence.models import LoginSession, User, as_utc, utcnow

SECRET_KEY_FILE = "secret_key"
#: The cookie's key holding the login session's random id.
LOGIN_KEY = "login"
#: How long a login lasts (the cookie's max age and the session row's).
SESSION_LIFETIME = timedelta(days=7)


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


def log_in(db: Session, session_data: MutableMapping[str, Any], user: User) -> None:
    """Start a login session of the user (a LoginSession row) and make the cookie session carry its id alone."""
    now = utcnow()
    db.execute(delete(LoginSession).where(LoginSession.user_id == user.id, LoginSession.expires_at <= now))
    session_id = secrets.token_urlsafe(32)
    db.add(LoginSession(user_id=user.id, token_hash=token_hash(session_id), expires_at=now + SESSION_LIFETIME))
    db.flush()
    session_data.clear()
    session_data[LOGIN_KEY] = session_id


def log_out(db: Session, session_data: MutableMapping[str, Any]) -> None:
    """End the cookie session's login everywhere (its row is deleted) and clear the cookie session."""
    session_id = session_data.get(LOGIN_KEY)
    if isinstance(session_id, str):
        db.execute(delete(LoginSession).where(LoginSession.token_hash == token_hash(session_id)))
    session_data.clear()


def end_sessions(db: Session, user: User) -> int:
    """End every login session of the user (their copied cookies included); return how many there were."""
    ended = db.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
    return int(getattr(ended, "rowcount", 0) or 0)


def session_user(db: Session, session_data: MutableMapping[str, Any]) -> User | None:
    """Return the user of a cookie session's live login, or None (anonymous, logged out, expired, user gone)."""
    session_id = session_data.get(LOGIN_KEY)
    if not isinstance(session_id, str):
        return None
    row = db.scalars(select(LoginSession).where(LoginSession.token_hash == token_hash(session_id))).first()
    if row is None or as_utc(row.expires_at) <= utcnow():
        return None
    return row.user
