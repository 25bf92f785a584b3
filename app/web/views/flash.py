"""One-shot messages: an action says what it did, and the page it redirects to shows it once."""

from __future__ import annotations

from fastapi import Request

#: The session key holding the message until a page shows it.
FLASH_KEY = "flash"


def flash(request: Request, message: str) -> None:
    """Keep a message in the visitor's session for the next page that shows messages."""
    request.session[FLASH_KEY] = message


def take_flash(request: Request) -> str | None:
    """Return the message kept for this visitor and forget it (None when there is none)."""
    message = request.session.pop(FLASH_KEY, None)
    return message if isinstance(message, str) else None
