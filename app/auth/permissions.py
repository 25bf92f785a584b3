"""Who may do what: viewers read, editors also upload and change what they own, admins change anything."""

from __future__ import annotations

from app.core.errors import AtlasError
from app.persistence.models import User
from app.persistence.roles import Role


class LoginRequired(AtlasError):
    """The request needs an account and came without one (HTTP 401, or the login page)."""


class Forbidden(AtlasError):
    """The user is logged in but may not do this (HTTP 403)."""


def is_admin(user: User | None) -> bool:
    """Return whether the user is an admin."""
    return user is not None and user.role == Role.ADMIN.value


def can_edit(user: User | None) -> bool:
    """Return whether the user may upload, relabel, keep typed concepts and cancel (an editor or an admin)."""
    return user is not None and user.role in (Role.EDITOR.value, Role.ADMIN.value)


def can_change(user: User | None, owner: User | None) -> bool:
    """Return whether the user may change something `owner` owns: an editor who owns it, or an admin (the rule
    require_owner enforces, for deciding which controls a page shows)."""
    return user is not None and can_edit(user) and _owns_or_administers(user, owner)


def can_change_named(user: User | None, owner_name: str | None) -> bool:
    """Return `can_change`'s answer for something whose owner is known by name only (user names are unique), as
    the catalogue's views give it."""
    return (
        user is not None and can_edit(user) and (is_admin(user) or (owner_name is not None and owner_name == user.name))
    )


def _owns_or_administers(user: User, owner: User | None) -> bool:
    """Return whether the user is the owner or an admin."""
    return is_admin(user) or (owner is not None and owner.id == user.id)


def require_login(user: User | None, action: str) -> User:
    """Return the user, or raise LoginRequired naming the action."""
    if user is None:
        raise LoginRequired(
            f"Log in to {action}: open /login, or send `Authorization: Bearer TOKEN` with a token from "
            "`neuron-atlas tokens create NAME`."
        )
    return user


def require_editor(user: User | None, action: str) -> User:
    """Return the user if they may edit, else raise LoginRequired (anonymous) or Forbidden (a viewer)."""
    user = require_login(user, action)
    if not can_edit(user):
        raise Forbidden(
            f"{user.name} is a {user.role} and may not {action}; an admin can make them an editor with "
            f"`neuron-atlas users role {user.name} editor`."
        )
    return user


def require_owner(user: User, owner: User | None, what: str, action: str) -> None:
    """Raise Forbidden unless the user is `what`'s owner or an admin; the message says who may."""
    if _owns_or_administers(user, owner):
        return
    if owner is None:
        raise Forbidden(f"{what} has no owner (it was stored from the command line), so only an admin may {action}.")
    raise Forbidden(f"{what} belongs to {owner.name}; only they or an admin may {action}.")
