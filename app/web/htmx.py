"""htmx glue: the event names pages listen for, and telling fragment requests from full-page ones."""

from __future__ import annotations

from fastapi import Request, Response

#: Sent (HX-Trigger) after a typed concept is kept; the saved-concepts list reloads on it.
TYPED_CONCEPTS_CHANGED = "typed-concepts-changed"
#: Sent (HX-Trigger) with the last progress fragment of a job; the page shows the run link on it.
JOB_FINISHED = "job-finished"


def is_htmx(request: Request) -> bool:
    """Return whether htmx asked for a fragment (a history restore wants the full page)."""
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-History-Restore-Request") != "true"


def vary_on_htmx(response: Response) -> Response:
    """Mark the response as depending on HX-Request so caches keep the page and the fragment apart."""
    existing = response.headers.get("Vary")
    response.headers["Vary"] = f"{existing}, HX-Request" if existing else "HX-Request"
    return response


def trigger(response: Response, event: str) -> Response:
    """Ask htmx to fire `event` on the body when it receives this response."""
    response.headers["HX-Trigger"] = event
    return response
