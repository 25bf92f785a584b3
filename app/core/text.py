"""The one rule for text users type or upload: names (runs, models, probe and concept sets), notes, typed concepts
and concept lists.

Such text is shown in pages, chips, exports and logs, so it may hold only letters, marks, numbers, punctuation,
symbols and spaces (Unicode categories L, M, N, P, S and Zs), and in a multi-line field also newlines and tabs: no
control characters (NUL, ESC and their kin), no format characters (bidirectional overrides such as U+202E,
zero-width ones such as U+200B), no separators but the space, no unassigned, private-use or surrogate code points,
and no U+FFFD, which is what bytes that were not UTF-8 turn into. What passes is NFC-normalised, so one word has
one spelling in the database.
"""

from __future__ import annotations

import unicodedata

from app.core.errors import AtlasError

#: The Unicode general categories allowed anywhere: letters, marks, numbers, punctuation, symbols, spaces.
ALLOWED_CATEGORIES = frozenset({"L", "M", "N", "P", "S"})
ALLOWED_SPACES = frozenset({"Zs"})
#: Allowed besides them in a multi-line field (notes, a concept list); CR and CRLF are read as newlines first.
MULTILINE_EXTRAS = frozenset("\n\t")
#: What a decoder puts in place of bytes that are not UTF-8.
REPLACEMENT_CHARACTER = "\ufffd"
_SINGLE_LINE_RULE = "letters, digits, punctuation, symbols and spaces"
_MULTILINE_RULE = "letters, digits, punctuation, symbols, spaces, newlines and tabs"
# The C0 control characters and DEL have no name in unicodedata; these are their Unicode name aliases.
_CONTROL_NAMES = (
    "NULL",
    "START OF HEADING",
    "START OF TEXT",
    "END OF TEXT",
    "END OF TRANSMISSION",
    "ENQUIRY",
    "ACKNOWLEDGE",
    "BELL",
    "BACKSPACE",
    "CHARACTER TABULATION",
    "LINE FEED",
    "LINE TABULATION",
    "FORM FEED",
    "CARRIAGE RETURN",
    "SHIFT OUT",
    "SHIFT IN",
    "DATA LINK ESCAPE",
    "DEVICE CONTROL ONE",
    "DEVICE CONTROL TWO",
    "DEVICE CONTROL THREE",
    "DEVICE CONTROL FOUR",
    "NEGATIVE ACKNOWLEDGE",
    "SYNCHRONOUS IDLE",
    "END OF TRANSMISSION BLOCK",
    "CANCEL",
    "END OF MEDIUM",
    "SUBSTITUTE",
    "ESCAPE",
    "INFORMATION SEPARATOR FOUR",
    "INFORMATION SEPARATOR THREE",
    "INFORMATION SEPARATOR TWO",
    "INFORMATION SEPARATOR ONE",
)


class BadText(AtlasError):
    """User text holds a character the text rule refuses (HTTP 422); the message names it, where, and the fix."""


def character_name(character: str) -> str:
    """Return `U+XXXX NAME` for a character (control characters by their Unicode alias; no name where Unicode
    gives none)."""
    code = ord(character)
    if code < len(_CONTROL_NAMES):
        name = _CONTROL_NAMES[code]
    elif code == 0x7F:
        name = "DELETE"
    else:
        name = unicodedata.name(character, "")
    return f"U+{code:04X} {name}".rstrip()


def check_user_text(value: str, field: str, *, multiline: bool = False) -> str:
    """Return `value` NFC-normalised (newlines as LF when `multiline`), or raise BadText naming the first character
    the rule refuses, where it is, and the fix; `field` says what the text is ("the run's name")."""
    if multiline:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    for index, character in enumerate(value):
        if _allowed(character, multiline):
            continue
        place = _place(value, index, multiline)
        why = " (the text was not valid UTF-8)" if character == REPLACEMENT_CHARACTER else ""
        allowed = _MULTILINE_RULE if multiline else _SINGLE_LINE_RULE
        raise BadText(
            f"{field[:1].upper()}{field[1:]} holds {_kind(character)}, {character_name(character)}, at {place}{why}; "
            f"remove it ({field} may hold only {allowed})."
        )
    return unicodedata.normalize("NFC", value)


def _allowed(character: str, multiline: bool) -> bool:
    if character == REPLACEMENT_CHARACTER:
        return False
    category = unicodedata.category(character)
    return (
        category[0] in ALLOWED_CATEGORIES or category in ALLOWED_SPACES or (multiline and character in MULTILINE_EXTRAS)
    )


def _place(value: str, index: int, multiline: bool) -> str:
    """Return where the character at `index` is, counting from 1: its position, and its line in multi-line text."""
    if not multiline or "\n" not in value:
        return f"position {index + 1}"
    line = value.count("\n", 0, index) + 1
    line_start = value.rfind("\n", 0, index) + 1
    return f"line {line}, position {index - line_start + 1}"


def _kind(character: str) -> str:
    """Return what kind of character the rule refuses this one as, in words."""
    if character == REPLACEMENT_CHARACTER:
        return "a replacement character"
    return {
        "Cc": "a control character",
        "Cf": "a format character (bidirectional or invisible)",
        "Cs": "a lone surrogate",
        "Co": "a private-use character",
        "Cn": "an unassigned code point",
        "Zl": "a line separator",
        "Zp": "a paragraph separator",
    }.get(unicodedata.category(character), "a character")
