"""The number filters the pages use for evaluations: p-values and shares."""

from __future__ import annotations

from app.web.views.templating import format_p_value, format_share


def test_p_values_keep_three_decimals_until_scientific_notation_reads_better() -> None:
    assert [format_p_value(p) for p in (0.5, 0.0123, 0.001, 0.00032, 0.0)] == [
        "0.500",
        "0.012",
        "0.001",
        "3.2e-04",
        "0.0e+00",
    ]
    assert format_p_value(None) == "—"


def test_shares_are_whole_percentages() -> None:
    assert [format_share(share) for share in (0.0, 0.054, 0.5, 1.0)] == ["0%", "5%", "50%", "100%"]
    assert format_share(None) == "—"
