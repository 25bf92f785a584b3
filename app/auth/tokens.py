"""API tokens for scripts and one-time login links: random secrets shown once, only their SHA-256 stored.

A token carries 32 random bytes, so a plain SHA-256 is enough to make the stored hash useless for logging in
(a slow password hash only matters for guessable secrets); it also lets a token be looked up by its hash.
An account has at most one usable login link: a new one revokes the older ones, and so does a new password.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.core.errors import AtlasError
from app.persistence.models import ApiToken, LoginLink, User, as_utc, utcnow

TOKEN_PREFIX = "na_"
LOGIN_LINK_LIFETIME = timedelta(hours=24)
#: A token's last use is written at most this often, to spare the database a write per request.
LAST_USED_PRECISION = timedelta(minutes=1)
MAX_LABEL_CHARS = 200


def new_secret() -> str:
    """Return a fresh random token: the prefix and 32 random bytes, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """Return the hex SHA-256 under which a token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(session: Session, user: User, label: str = "") -> tuple[ApiToken, str]:
    """Add an API token for the user; return its row and the token itself (shown once, never stored)."""
    label = label.strip() or f"token for {user.name}"
    if len(label) > MAX_LABEL_CHARS or not label.isprintable():
        raise AtlasError(f"the token's label must be at most {MAX_LABEL_CHARS} printable characters; shorten it")
    token = new_secret()
    row = ApiToken(user_id=user.id, name=label, token_hash=token_hash(token))
    session.add(row)
    session.flush()
    return row, token


def list_api_tokens(session: Session, user: User | None = None) -> list[ApiToken]:
    """Return the API tokens (of one user, or everyone's), oldest first, revoked ones included."""
    query = select(ApiToken).order_by(ApiToken.created_at, ApiToken.id)
    if user is not None:
        query = query.where(ApiToken.user_id == user.id)
    return list(session.scalars(query))


def revoke_api_token(session: Session, token_id: int) -> ApiToken:
    """Revoke a token by id (idempotent); return its row."""
    row = session.get(ApiToken, token_id)
    if row is None:
        raise AtlasError(f"there is no API token {token_id}; `neuron-atlas tokens list` shows the ids")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


def find_api_token(session: Session, token: str) -> ApiToken | None:
    """Return the live (unrevoked) API token row this token string is, with its user loaded; else None."""
    return session.scalars(
        select(ApiToken).where(ApiToken.token_hash == token_hash(token), ApiToken.revoked_at.is_(None))
    ).first()


def use_is_unrecorded(row: ApiToken) -> bool:
    """Return whether the token's last recorded use is older than LAST_USED_PRECISION (or absent)."""
    return row.last_used_at is None or as_utc(row.last_used_at) < utcnow() - LAST_USED_PRECISION


def record_token_use(session: Session, token_id: int) -> None:
    """Set the token's last use to now."""
    session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id)
        .values(last_used_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def create_login_link(session: Session, user: User, lifetime: timedelta = LOGIN_LINK_LIFETIME) -> str:
    """Add a one-time login token for the user, valid for `lifetime`, revoking their unused older ones (one valid
    link per account); return the token (shown once)."""
    revoke_login_links(session, user)
    token = new_secret()
    session.add(LoginLink(user_id=user.id, token_hash=token_hash(token), expires_at=utcnow() + lifetime))
    session.flush()
    return token


def revoke_login_links(session: Session, user: User) -> int:
    """Delete the user's unused login links, so none of them logs in any more; return how many there were."""
    revoked = session.execute(delete(LoginLink).where(LoginLink.user_id == user.id, LoginLink.used_at.is_(None)))
    return int(getattr(revoked, "rowcount", 0) or 0)


def redeem_login_link(session: Session, token: str) -> User | None:
    """Use up a login token and return its user; None when it is unknown, used already or expired.

    The use is one conditional UPDATE, so of two requests racing with the same link only one logs in.
    """
    now = utcnow()
    used = session.execute(
        update(LoginLink)
        .where(LoginLink.token_hash == token_hash(token), LoginLink.used_at.is_(None), LoginLink.expires_at > now)
        .values(used_at=now)
        .returning(LoginLink.user_id)
        .execution_options(synchronize_session=False)
    )
    user_id = used.scalar_one_or_none()
    return session.get(User, user_id) if user_id is not None else None
