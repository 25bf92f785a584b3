"""Accounts from the command line: the database session the account commands share, and login-link URLs
(the one `serve` and `demo` print on a first start, and `users link`'s)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, urlencode

from sqlalchemy.orm import Session

from app.auth.tokens import create_login_link
from app.auth.users import ensure_first_admin, passwordless_admin
from app.core.config import Settings
from app.persistence.db import create_db_engine, upgrade_database, write_session
from app.persistence.models import User

WILDCARD_HOSTS = ("", "0.0.0.0", "::", "[::]")


@contextmanager
def account_session(settings: Settings) -> Iterator[Session]:
    """Yield a write session on the settings' database (migrated first), committed when the block ends."""
    settings.ensure_dirs()
    upgrade_database(settings)
    engine = create_db_engine(settings.database_url)
    try:
        with write_session(engine) as session:
            yield session
    finally:
        engine.dispose()


def base_url(host: str, port: int) -> str:
    """Return the URL a browser on this machine reaches a server bound to host:port at."""
    shown = "localhost" if host in WILDCARD_HOSTS else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def login_link(session: Session, user: User, base: str, next_path: str = "/") -> str:
    """Return a new one-time login URL for the user (valid for a day), going on to `next_path`."""
    query = {"token": create_login_link(session, user)}
    if next_path != "/":
        query["next"] = next_path
    return f"{base}/login?{urlencode(query, quote_via=quote, safe='/')}"


def first_start_link(settings: Settings, base: str, next_path: str = "/") -> str | None:
    """Create the first admin when there is no user; return a login URL for the passwordless admin, if any.

    Like Jupyter's token URL, a fresh link is printed on every start until that admin has a password; each new
    link revokes the one before, and setting the password revokes the last.
    """
    with account_session(settings) as session:
        ensure_first_admin(session)
        admin = passwordless_admin(session)
        return login_link(session, admin, base, next_path) if admin is not None else None
