"""Server paths out of what web users read: known paths become their public names, any other its last part; and
login tokens out of the URLs a server logs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from app.core.paths import names_a_path
from app.core.urls import API_PREFIX

# An absolute POSIX path: a `/` that starts no URL (`//`), follows no word, dot, dash or slash, up to a space,
# quote or separator. The API's own addresses (`/api/v1/...`) are left alone: messages point users at them.
_ABSOLUTE_PATH = re.compile(r"(?<![\w./-])/(?!/)[^\s'\"`,;:()\[\]{}<>|*?]*")
# A terminal escape sequence (colours, cursor moves: CSI, OSC and two-character escapes), then other control
# characters but tab and newline.
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])|\x9b[0-?]*[ -/]*[@-~]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# The value of a `token` query parameter (one-time login links: /login?token=…).
_QUERY_TOKEN = re.compile(r"(?<=[?&]token=)[^&#\s\"']+")
REDACTED = "[redacted]"


def strip_ansi(text: str) -> str:
    """Return `text` without terminal escape codes (colours from tqdm, rich, pytest) or other control characters."""
    return _CONTROL.sub("", _ANSI.sub("", text))


def redact_login_tokens(text: str) -> str:
    """Return `text` (a logged URL or request line) with the value of every `token=` query parameter redacted."""
    return _QUERY_TOKEN.sub(REDACTED, text)


def _last_part(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _under(path: str, known: str) -> str | None:
    """Return what of the absolute `path` lies under the `known` path ("" for itself), else None. A relative known
    path (stored relative to the data folder, wherever that is now) matches where the absolute one ends in it."""
    known = known.rstrip("/")
    if known.startswith("/"):
        if path == known:
            return ""
        return path[len(known) + 1 :] if path.startswith(known + "/") else None
    if path.endswith("/" + known):
        return ""
    at = path.find(f"/{known}/")
    return path[at + len(known) + 2 :] if at >= 0 else None


def redact_paths(text: str, names: Mapping[str, str] | None = None) -> str:
    """Return `text` with each of `names`' paths (and what lies under one) put as its name, other paths' last part.

    `names` maps server paths as stored (a catalogued probe folder, a concept file; absolute, or relative to the
    data folder) to what users know them as.
    """
    known = sorted((names or {}).items(), key=lambda item: -len(item[0]))

    def public(match: re.Match[str]) -> str:
        path = match.group(0)
        if path.startswith(API_PREFIX + "/"):
            return path
        for server_path, name in known:
            rest = _under(path, server_path)
            if rest is not None:
                return f"{name}/{rest}" if rest else name
        return _last_part(path)

    return _ABSOLUTE_PATH.sub(public, strip_ansi(text))


def redact_value(value: Any, names: Mapping[str, str] | None = None) -> Any:
    """Return a JSON value with every string in it redacted as by `redact_paths` (a known path whole: its name)."""
    if isinstance(value, str):
        return (names or {}).get(value) or redact_paths(value, names)
    if isinstance(value, dict):
        return {key: redact_value(item, names) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_value(item, names) for item in value]
    return value


def redact_settings(settings: Mapping[str, Any], names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return a run's settings as web users see them: a file or folder by its catalogue name, else its last part
    (stored relative to the data folder or not); every other value as `redact_value` shows it."""
    return {
        key: _public_path(value, names or {}) if names_a_path(key, value) else redact_value(value, names)
        for key, value in settings.items()
    }


def _public_path(path: str, names: Mapping[str, str]) -> str:
    known = names.get(path)
    if known:
        return known
    return redact_paths(path, names) if path.startswith("/") else _last_part(path)
