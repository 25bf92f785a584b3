"""The one rule for user text: what it refuses (naming the character and where), what it keeps, NFC."""

from __future__ import annotations

import re

import pytest

from app.core.text import BadText, character_name, check_user_text

REFUSED = {
    "\x00": "a control character, U+0000 NULL",
    "\x1b": "a control character, U+001B ESCAPE",
    "\x7f": "a control character, U+007F DELETE",
    "\x85": "a control character, U+0085",
    "\u202e": "a format character (bidirectional or invisible), U+202E RIGHT-TO-LEFT OVERRIDE",
    "\u200b": "a format character (bidirectional or invisible), U+200B ZERO WIDTH SPACE",
    "\ufeff": "U+FEFF ZERO WIDTH NO-BREAK SPACE",
    "\u2028": "a line separator, U+2028 LINE SEPARATOR",
    chr(0xD800): "a lone surrogate, U+D800",
    "\ue000": "a private-use character, U+E000",
    "\u0378": "an unassigned code point, U+0378",
    "\ufffd": "U+FFFD REPLACEMENT CHARACTER, at position 3 (the text was not valid UTF-8)",
}


@pytest.mark.parametrize("character", REFUSED)
def test_every_refused_character_is_named_with_its_position(character: str) -> None:
    with pytest.raises(BadText, match="remove it") as refused:
        check_user_text(f"ab{character}cd", "the run's name")
    message = str(refused.value)
    assert message.startswith("The run's name holds ") and REFUSED[character] in message
    assert "at position 3" in message


def test_single_line_text_refuses_tabs_and_newlines_multi_line_text_keeps_them() -> None:
    for character in "\t\n\r":
        with pytest.raises(BadText, match=re.escape(f"{character_name(character)}, at position 2")):
            check_user_text(f"a{character}b", "the concept")
    assert check_user_text("first\r\nsecond\rthird\tcolumn", "notes", multiline=True) == "first\nsecond\nthird\tcolumn"
    with pytest.raises(BadText, match=r"U\+202E RIGHT-TO-LEFT OVERRIDE, at line 2, position 4; remove it"):
        check_user_text("fine\nbad\u202e", "notes", multiline=True)


def test_letters_marks_symbols_and_spaces_pass_nfc_normalised() -> None:
    assert check_user_text("Cafe\u0301 — naïve 🙂 日本語\u00a0ok", "the run's name") == "Café — naïve 🙂 日本語\u00a0ok"
    assert check_user_text("", "the run's name") == ""
    assert character_name("\x09") == "U+0009 CHARACTER TABULATION" and character_name("é") == (
        "U+00E9 LATIN SMALL LETTER E WITH ACUTE"
    )
