"""CSRF tokens bound to the login session (the synchroniser pattern): one random token per session, kept in the
signed session cookie; every unsafe request from a browser must repeat it in a form field or a header.

Logging in or out clears the session, so the token changes with who is logged in.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import MutableMapping
from typing import Any

CSRF_SESSION_KEY = "csrf"


def session_csrf_token(session_data: MutableMapping[str, Any]) -> str:
    """Return the session's CSRF token, creating it (32 random bytes) the first time a form needs one."""
    token = session_data.get(CSRF_SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session_data[CSRF_SESSION_KEY] = token
    return token


def matches_session(session_data: MutableMapping[str, Any], candidate: str | None) -> bool:
    """Return whether `candidate` is the session's CSRF token (compared in constant time)."""
    token = session_data.get(CSRF_SESSION_KEY)
    if not isinstance(token, str) or not token or not candidate:
        return False
    return hmac.compare_digest(token.encode(), candidate.encode())
