"""Every problem an upload's fields have, each kept with the field it is about, raised as one error.

The error's message lists them all, one per line (the API's `detail`); the form shows each next to its field.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.core.errors import AtlasError, BadUpload
from dissect_core.errors import DissectError

#: The upload form's fields a problem can be about; `form` is one about the upload as a whole.
UPLOAD_FIELDS = (
    "checkpoint",
    "model_name",
    "architecture",
    "layers",
    "class_names",
    "probe",
    "concepts",
    "encoder",
    "form",
)

FieldProblem = tuple[str, DissectError]


class FieldProblems:
    """The problems of an upload by field, in the order they were found."""

    fields: dict[str, list[str]]

    def _keep(self, problems: Iterable[FieldProblem]) -> None:
        self.fields = {}
        for field, error in problems:
            nested = getattr(error, "fields", None)
            if isinstance(nested, dict):  # a FieldProblems raised by an earlier check: keep its fields
                for name, messages in nested.items():
                    self.fields.setdefault(name, []).extend(messages)
            else:
                self.fields.setdefault(field if field in UPLOAD_FIELDS else "form", []).append(str(error))


class UploadFieldsError(FieldProblems, AtlasError):
    """Some of an upload's choices cannot be used (HTTP 422)."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self._keep(problems)
        super().__init__("\n".join(message for messages in self.fields.values() for message in messages))


class BadUploadFields(FieldProblems, BadUpload):
    """The uploaded file is unusable, and maybe some choices too (HTTP 400)."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self._keep(problems)
        super().__init__("\n".join(message for messages in self.fields.values() for message in messages))


def raise_problems(problems: list[FieldProblem]) -> None:
    """Raise every problem at once (a BadUploadFields if any is a BadUpload), or return when there is none."""
    if not problems:
        return
    if any(isinstance(error, BadUpload) for _field, error in problems):
        raise BadUploadFields(problems)
    raise UploadFieldsError(problems)


def problems_by_field(error: DissectError) -> dict[str, list[str]]:
    """Return an upload error's messages by field (an error without fields: all about the form as a whole)."""
    fields = getattr(error, "fields", None)
    return dict(fields) if isinstance(fields, dict) else {"form": [str(error)]}
