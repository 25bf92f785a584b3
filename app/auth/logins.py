"""Logging in with a name and password, throttled (app.auth.throttle) and logged without the password.

Three short transactions, so the slow password hash never holds the database's write lock: the attempt is
counted (or refused), the password is checked in a read, and a success is recorded with its new login session.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.auth.sessions import log_in
from app.auth.throttle import Refusal, admit_login, login_succeeded
from app.auth.users import authenticate_password, upgrade_password_hash
from app.core.config import Settings
from app.persistence.db import write_session
from app.persistence.models import User

log = logging.getLogger(__name__)


def password_login(
    engine: Engine,
    sessions: sessionmaker[Session],
    settings: Settings,
    session_data: MutableMapping[str, Any],
    *,
    name: str,
    password: str,
    address: str,
) -> bool | Refusal:
    """Log the cookie session in as `name` when the password is theirs and no counter of `address` or `name`
    makes attempts wait; return True when logged in, False for a wrong name or password, else the Refusal."""
    with write_session(engine) as db:
        refusal = admit_login(db, settings, name, address)
    if refusal is not None:
        log.warning("login refused for %r from %r: wait %d s (%s)", name, address, refusal.retry_after_s, refusal.scope)
        return refusal
    with sessions() as db:
        user = authenticate_password(db, name, password)
        user_id = user.id if user is not None else None
    if user_id is not None:
        with write_session(engine) as db:
            known = db.get(User, user_id)  # None when the account was removed in between
            if known is not None:
                upgrade_password_hash(known, password)
                login_succeeded(db, settings, name, address)
                log_in(db, session_data, known)
                return True
    log.warning("failed login for %r from %r", name, address)
    return False
