"""HEAD answered wherever GET is: the GET route runs and its answer goes out without a body.

FastAPI's routes answer only the methods they declare, so a HEAD to a page or API address would get 405. Rather
than declaring HEAD on every route (which lists each GET operation a second time in the OpenAPI schema), the app is
wrapped once: a HEAD request goes in as GET and its answer's headers (Content-Length included) go out, its body not.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class AnswerHeadAsGet:
    """Run a HEAD request as its GET and send the answer's status and headers without the body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass GET, POST, ... on as they are; answer HEAD with the GET answer's head alone."""
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)
