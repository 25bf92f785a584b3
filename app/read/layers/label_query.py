"""The one rule for finding neurons by what a user types: a label containing the text (any case) or the text's
word forms (`dog` finds `dogs`, `stripes` finds `striped`: app.read.layers.word_forms), or a unit.

`7` and `#7` also name unit 7. Used by the layer grid's filter and by the run-wide label search alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.read.layers.word_forms import label_words, word_forms

# A unit number beyond 18 digits names no neuron (and would overflow a database integer).
MAX_UNIT_DIGITS = 18


@dataclass(frozen=True)
class LabelQuery:
    """A parsed search text: its case-folded needle, the forms of each of its words, and the unit it names, if any."""

    needle: str
    unit: int | None
    forms: tuple[frozenset[str], ...] = ()

    @classmethod
    def parse(cls, q: str) -> LabelQuery:
        """Return the query for a typed text (surrounding spaces ignored)."""
        text = q.strip()
        digits = text.lstrip("#")
        unit = int(digits) if digits.isdecimal() and len(digits) <= MAX_UNIT_DIGITS else None
        return cls(needle=text.casefold(), unit=unit, forms=tuple(word_forms(word) for word in label_words(text)))

    @property
    def is_empty(self) -> bool:
        """True when nothing was typed: every neuron matches."""
        return not self.needle

    @property
    def other_forms(self) -> list[str]:
        """Return the forms of a one-word query besides the word itself, sorted (none for a phrase)."""
        words = label_words(self.needle)
        if len(words) != 1:
            return []
        return sorted(self.forms[0] - {words[0]})

    def matches(self, label_folded: str, unit: int) -> bool:
        """Return whether a neuron (its case-folded label and unit) matches: the label contains the text, or words
        of the label in a row are forms of the text's words in turn, or the text names the unit."""
        return self.needle in label_folded or unit == self.unit or self._forms_match(label_folded)

    def _forms_match(self, label_folded: str) -> bool:
        if not self.forms:
            return False
        words = label_words(label_folded)
        span = len(self.forms)
        return any(
            all(words[start + offset] in forms for offset, forms in enumerate(self.forms))
            for start in range(len(words) - span + 1)
        )
