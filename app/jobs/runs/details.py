"""A run's name and notes, which its owner (or an admin) may change: checked, then stored."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.auth.permissions import require_owner
from app.core.errors import AtlasError
from app.core.text import BadText, check_user_text
from app.persistence.models import RUN_NAME_MAX, RUN_NOTES_MAX, User
from app.read.runs.queries import get_run


class BadRunDetails(AtlasError):
    """A run's new name or notes cannot be used (too long, or a character the text rule refuses); the message
    names the field and the problem."""


@dataclass(frozen=True)
class RunDetailsEdit:
    """What to change: a field left None stays as it is; a blank one is cleared."""

    name: str | None = None
    notes: str | None = None


def _checked(value: str | None, what: str, limit: int) -> str | None:
    """Return the value under the text rule (app.core.text; notes may have several lines), stripped (None when
    blank), or raise BadRunDetails when the rule refuses it or it is over `limit` characters."""
    if value is None:
        return None
    field = "the text of the run's notes" if what == "notes" else f"the run's {what}"
    try:
        stripped = check_user_text(value, field, multiline=what == "notes").strip()
    except BadText as problem:
        raise BadRunDetails(str(problem)) from None
    if len(stripped) > limit:
        raise BadRunDetails(
            f"{what.capitalize()} too long: {len(stripped):,} characters, where a run's {what} may have at most "
            f"{limit:,}; shorten it."
        )
    return stripped or None


def check_run_details(edit: RunDetailsEdit) -> list[str]:
    """Return every problem with an edit (empty when it can be stored)."""
    problems = []
    for value, what, limit in ((edit.name, "name", RUN_NAME_MAX), (edit.notes, "notes", RUN_NOTES_MAX)):
        try:
            _checked(value, what, limit)
        except BadRunDetails as problem:
            problems.append(str(problem))
    return problems


def edit_run_details(session: Session, user: User, run_id: int, edit: RunDetailsEdit) -> None:
    """Change a run's name and notes (its owner or an admin) in the caller's transaction, or raise NotFound,
    Forbidden or BadRunDetails naming every problem; nothing is changed then."""
    run = get_run(session, run_id)
    require_owner(user, run.owner, f"Run {run_id}", "rename it or change its notes")
    problems = check_run_details(edit)
    if problems:
        raise BadRunDetails(" ".join(problems))
    if edit.name is not None:
        run.name = _checked(edit.name, "name", RUN_NAME_MAX)
    if edit.notes is not None:
        run.notes = _checked(edit.notes, "notes", RUN_NOTES_MAX)
