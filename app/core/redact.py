"""Server paths out of what web users read: known paths become their public names, any other its last part."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from app.core.urls import API_PREFIX

# An absolute POSIX path: a `/` that starts no URL (`//`), follows no word, dot, dash or slash, up to a space,
# quote or separator. The API's own addresses (`/api/v1/...`) are left alone: messages point users at them.
_ABSOLUTE_PATH = re.compile(r"(?<![\w./-])/(?!/)[^\s'\"`,;:()\[\]{}<>|*?]*")


def _last_part(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def redact_paths(text: str, names: Mapping[str, str] | None = None) -> str:
    """Return `text` with each of `names`' paths (and what lies under one) put as its name, other paths' last part.

    `names` maps absolute server paths (a catalogued probe folder, a concept file) to what users know them as.
    """
    known = sorted((names or {}).items(), key=lambda item: -len(item[0]))

    def public(match: re.Match[str]) -> str:
        path = match.group(0)
        if path.startswith(API_PREFIX + "/"):
            return path
        for server_path, name in known:
            if path == server_path:
                return name
            if path.startswith(server_path.rstrip("/") + "/"):
                return f"{name}/{path[len(server_path.rstrip('/')) + 1 :]}"
        return _last_part(path)

    return _ABSOLUTE_PATH.sub(public, text)


def redact_value(value: Any, names: Mapping[str, str] | None = None) -> Any:
    """Return a JSON value with every string in it redacted as by `redact_paths` (a known path whole: its name)."""
    if isinstance(value, str):
        return (names or {}).get(value) or redact_paths(value, names)
    if isinstance(value, dict):
        return {key: redact_value(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_value(item, names) for item in value]
    return value
