"""htmx glue: the event names pages listen for, the one rule telling fragment requests from full-page ones, and
the route class of answers that depend on it."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

#: Sent (HX-Trigger) after a typed concept is kept; the saved-concepts list reloads on it.
TYPED_CONCEPTS_CHANGED = "typed-concepts-changed"
#: Sent (HX-Trigger) with the last progress fragment of a job; the page shows the run link on it.
JOB_FINISHED = "job-finished"


def is_htmx(headers: Mapping[str, str]) -> bool:
    """Return whether these request headers ask for a fragment (htmx's history restore wants the full page)."""
    return headers.get("hx-request") == "true" and headers.get("hx-history-restore-request") != "true"


def vary_on_htmx(response: Response) -> Response:
    """Mark the response as depending on HX-Request so caches keep the page and the fragment apart."""
    existing = response.headers.get("Vary")
    response.headers["Vary"] = f"{existing}, HX-Request" if existing else "HX-Request"
    return response


def trigger(response: Response, event: str) -> Response:
    """Ask htmx to fire `event` on the body when it receives this response."""
    response.headers["HX-Trigger"] = event
    return response


class HtmxAwareRoute(APIRoute):
    """A route that answers htmx with something else (a fragment): its answers say they vary on HX-Request."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Return FastAPI's handler, with Vary: HX-Request added to what it answers."""
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            return vary_on_htmx(await handler(request))

        return answer
