"""The account roles, importable without SQLAlchemy (the command line's `--role` choices are built from them)."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What a user may do: viewers read, editors also upload and curate their own work, admins anything."""

    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"
