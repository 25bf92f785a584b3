"""The one rule for finding neurons by what a user types: a label containing the text (any case), or a unit.

`7` and `#7` also name unit 7. Used by the layer grid's filter and by the run-wide label search alike.
"""

from __future__ import annotations

from dataclasses import dataclass

# A unit number beyond 18 digits names no neuron (and would overflow a database integer).
MAX_UNIT_DIGITS = 18


@dataclass(frozen=True)
class LabelQuery:
    """A parsed search text: its case-folded needle and the unit number it names, if any."""

    needle: str
    unit: int | None

    @classmethod
    def parse(cls, q: str) -> LabelQuery:
        """Return the query for a typed text (surrounding spaces ignored)."""
        text = q.strip()
        digits = text.lstrip("#")
        unit = int(digits) if digits.isdecimal() and len(digits) <= MAX_UNIT_DIGITS else None
        return cls(needle=text.casefold(), unit=unit)

    @property
    def is_empty(self) -> bool:
        """True when nothing was typed: every neuron matches."""
        return not self.needle

    def matches(self, label_folded: str, unit: int) -> bool:
        """Return whether a neuron (its case-folded label and unit) matches."""
        return self.needle in label_folded or unit == self.unit
