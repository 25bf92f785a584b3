"""Users: Argon2 password hashes (argon2-cffi), adding, listing and removing accounts, the first-start admin."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.sessions import end_sessions
from app.auth.tokens import revoke_login_links
from app.core.errors import AtlasError
from app.persistence.models import User
from app.persistence.roles import Role

#: The account `serve` and `demo` create when there is none.
FIRST_ADMIN = "admin"
MIN_PASSWORD_CHARS = 8
MAX_NAME_CHARS = 100
_HASHER = PasswordHasher()
# Verified against when the name is unknown, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("not a password of anyone")


def hash_password(password: str) -> str:
    """Return the Argon2id hash (with its salt and parameters) of a password that is long enough."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise AtlasError(
            f"the password has {len(password)} characters; use at least {MIN_PASSWORD_CHARS} "
            "(a few random words are easy to type and hard to guess)"
        )
    return _HASHER.hash(password)


def check_name(name: str) -> str:
    """Return a user name stripped of surrounding space, or raise AtlasError saying what a name may be."""
    cleaned = name.strip()
    if not cleaned or len(cleaned) > MAX_NAME_CHARS or not cleaned.isprintable() or " " in cleaned:
        raise AtlasError(
            f"{name!r} is not a usable user name; use 1 to {MAX_NAME_CHARS} printable characters without spaces, "
            "e.g. 'alice' or 'a.smith'"
        )
    return cleaned


def check_role(role: str) -> Role:
    """Return the Role named `role`, or raise AtlasError listing the roles."""
    try:
        return Role(role)
    except ValueError:
        raise AtlasError(
            f"{role!r} is not a role; use viewer (reads), editor (also uploads and curates own runs) or admin"
        ) from None


def add_user(session: Session, name: str, role: str, password: str | None = None) -> User:
    """Add an account (a password is hashed; None: it logs in by link or token only); return it."""
    name = check_name(name)
    checked_role = check_role(role)
    if find_user(session, name) is not None:
        raise AtlasError(f"there is already a user {name!r}; pick another name, or remove that user first")
    user = User(name=name, role=checked_role.value, password_hash=hash_password(password) if password else None)
    session.add(user)
    session.flush()
    return user


def find_user(session: Session, name: str) -> User | None:
    """Return the user with this name, or None."""
    return session.scalars(select(User).where(User.name == name.strip())).first()


def get_user(session: Session, name: str) -> User:
    """Return the user with this name, or raise AtlasError listing the users."""
    user = find_user(session, name)
    if user is None:
        names = ", ".join(session.scalars(select(User.name).order_by(User.name))) or "none yet"
        raise AtlasError(f"there is no user {name!r} (users: {names}); add one with `neuron-atlas users add NAME`")
    return user


def list_users(session: Session) -> list[User]:
    """Return every user, oldest first."""
    return list(session.scalars(select(User).order_by(User.created_at, User.id)))


def remove_user(session: Session, name: str) -> User:
    """Delete a user with their tokens and login links (what they own is kept, ownerless); return the user."""
    user = get_user(session, name)
    if user.role == Role.ADMIN.value:
        _keep_an_admin(session, user, "removing this one")
    session.delete(user)
    session.flush()
    return user


def set_password(session: Session, name: str, password: str | None) -> User:
    """Give a user a new password (None: none, so they log in by link or token only), ending their login sessions
    and revoking their unused login links; return the user."""
    user = get_user(session, name)
    user.password_hash = hash_password(password) if password else None
    end_sessions(session, user)
    revoke_login_links(session, user)
    return user


def set_role(session: Session, name: str, role: str) -> User:
    """Give a user another role (the last admin stays one), ending their login sessions if it changed; return
    the user."""
    user = get_user(session, name)
    checked_role = check_role(role)
    if user.role == Role.ADMIN.value and checked_role != Role.ADMIN:
        _keep_an_admin(session, user, "making them a " + checked_role.value)
    if user.role != checked_role.value:
        user.role = checked_role.value
        end_sessions(session, user)
    return user


def _keep_an_admin(session: Session, user: User, change: str) -> None:
    admins = session.scalar(select(func.count(User.id)).where(User.role == Role.ADMIN.value)) or 0
    if admins <= 1:
        raise AtlasError(
            f"{user.name!r} is the last admin; add another with `neuron-atlas users add NAME --role admin` "
            f"before {change}"
        )


def authenticate_password(session: Session, name: str, password: str) -> User | None:
    """Return the user whose name and password these are, else None; it only reads, so the slow hash holds no
    write lock (`upgrade_password_hash` then writes a hash with outdated parameters anew)."""
    user = find_user(session, name) if name.strip() else None
    stored = user.password_hash if user is not None else None
    try:
        _HASHER.verify(stored or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or stored is None:
        return None
    return user


def upgrade_password_hash(user: User, password: str) -> None:
    """Hash the user's just-checked password anew when their stored hash has outdated parameters."""
    if user.password_hash is not None and _HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = _HASHER.hash(password)


def ensure_first_admin(session: Session) -> User | None:
    """Create the passwordless FIRST_ADMIN when there is no user at all; return it, or None if users exist."""
    if session.scalar(select(func.count(User.id))):
        return None
    return add_user(session, FIRST_ADMIN, Role.ADMIN.value)


def passwordless_admin(session: Session) -> User | None:
    """Return the oldest admin without a password (the first-start one, until it gets a password), or None."""
    query = select(User).where(User.role == Role.ADMIN.value, User.password_hash.is_(None))
    return session.scalars(query.order_by(User.id).limit(1)).first()
