"""The page templates' environment: the number filters the pages use for evaluations (p-values and shares), and
URLs built by the helpers of app.core.urls rather than by hand."""

from __future__ import annotations

import re

from app.web.views.templating import TEMPLATES_DIR, format_p_value, format_share, make_templates

#: An attribute holding a path that the template pieces together itself: `/runs/{{ run.id }}/…`.
HAND_BUILT_PATH = re.compile(r'(?:href|src|action|formaction|hx-get|hx-post)="/[^"]*\{\{')


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


def test_templates_build_paths_with_the_url_helpers() -> None:
    hand_built = [
        f"{path.relative_to(TEMPLATES_DIR)}: {match.group(0)}"
        for path in sorted(TEMPLATES_DIR.rglob("*.html"))
        for match in HAND_BUILT_PATH.finditer(path.read_text())
    ]
    assert not hand_built, hand_built


def test_the_url_helpers_the_templates_call_are_in_their_environment() -> None:
    environment = make_templates().env
    called = {
        name for path in TEMPLATES_DIR.rglob("*.html") for name in re.findall(r"\b([a-z_]+_url)\(", path.read_text())
    }
    assert called and called <= set(environment.globals), called - set(environment.globals)
