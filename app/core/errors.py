"""The app's own errors: bad settings, queue, upload or request input (AtlasError) and missing things (NotFound).

AtlasError is a DissectError, so one handler (the web's 422, the CLI's "error: …") covers the library's input
problems and the app's alike. Every message names the problem, then the fix: "problem; fix".
"""

from __future__ import annotations

from dissect_core.errors import DissectError


class AtlasError(DissectError):
    """A problem with input the app checks (settings, job parameters, uploads, typed concepts); names the fix."""


class BadUpload(AtlasError):
    """An uploaded file itself is unusable (too big, empty, unreadable, unsafe): HTTP 400 rather than 422."""


class TooLarge(BadUpload):
    """An upload's body passed its size bound while it was arriving (HTTP 413); names the bound and the fix."""


class QuotaExceeded(AtlasError):
    """A user reached a limit on queued jobs, uploads or typed concepts (HTTP 429); names the limit and the fix."""


class StorageUnavailable(AtlasError):
    """The database or the data folder cannot be written (HTTP 503); the message says why and what to fix."""


class InUse(AtlasError):
    """Something cannot be deleted while a queued or running job needs it (HTTP 409); names the job and the fix."""


class NotFound(LookupError):
    """Something a URL names does not exist; the message says what exists instead."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotCatalogued(NotFound, AtlasError):
    """No probe or concept set has the name given: 404 on the web, an input error on the command line."""
