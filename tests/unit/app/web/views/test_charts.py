"""The inline SVG charts: well-formed, marks where the numbers say, colours from classes (no inline script)."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

import pytest

from app.read.schemas.runs import RHistogram
from app.web.views.charts import Axis, null_curve_points, null_curve_svg, null_range, r_histogram_svg

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ElementTree.Element:
    """Return the chart's root element (parsed as SVG, so a malformed chart fails here)."""
    return ElementTree.fromstring(str(markup).replace("<svg ", f'<svg xmlns="{SVG[1:-1]}" ', 1))


def by_class(root: ElementTree.Element, css_class: str) -> list[ElementTree.Element]:
    return [element for element in root.iter() if element.get("class") == css_class]


def test_the_axis_maps_its_range_onto_its_pixels() -> None:
    axis = Axis(-0.5, 0.5, 10.0, 110.0)
    assert (axis(-0.5), axis(0.0), axis(0.5)) == (10.0, 60.0, 110.0)


def test_the_null_range_spans_four_sds_and_widens_to_show_every_mark_within_minus_one_to_one() -> None:
    assert null_range(0.1, [None]) == pytest.approx((-0.4, 0.4))
    low, high = null_range(0.1, [0.7, 0.2])
    assert low == pytest.approx(-0.4) and 0.7 < high <= 1.0
    assert null_range(0.3, [0.95]) == (-1.0, 1.0)


def test_the_null_curve_peaks_at_zero_and_falls_to_the_baseline() -> None:
    axis = Axis(-0.4, 0.4, 0.0, 80.0)
    points = null_curve_points(0.1, axis, top=10.0, baseline=100.0)
    peak = min(points, key=lambda point: point[1])
    assert peak == pytest.approx((40.0, 10.0))
    assert points[0][1] == pytest.approx(100.0, abs=0.1) and points[-1][1] == pytest.approx(100.0, abs=0.1)


def test_the_null_chart_marks_the_threshold_and_the_neurons_r_in_order() -> None:
    root = parse(null_curve_svg(0.1, 0.35, 0.22))
    threshold, marker = by_class(root, "threshold")[0], by_class(root, "marker")[0]
    zero_tick = next(text for text in root.iter(f"{SVG}text") if text.text == "0")
    assert float(zero_tick.get("x")) < float(threshold.get("x1")) < float(marker.get("x1"))
    labels = {element.get("class"): element.text for element in root.iter(f"{SVG}text")}
    assert labels["marker-label"] == "r 0.35" and labels["threshold-label"] == "significant ≥ 0.22"
    assert "3.5 null sds" in root.find(f"{SVG}title").text
    assert by_class(root, "zone") and by_class(root, "curve")[0].get("stroke") == "currentColor"


def test_the_null_chart_without_r_or_threshold_draws_the_curve_alone() -> None:
    root = parse(null_curve_svg(0.1, None, None))
    assert by_class(root, "curve") and not by_class(root, "marker") and not by_class(root, "threshold")
    assert null_curve_svg(0.0, 0.2, None) == "" and null_curve_svg(float("nan"), 0.2, None) == ""


def test_an_r_outside_minus_one_to_one_stays_on_the_chart() -> None:
    root = parse(null_curve_svg(0.1, 1.5, None, width=320))
    assert 0 <= float(by_class(root, "marker")[0].get("x1")) <= 320


def test_the_histogram_stacks_reliable_under_unreliable_scaled_to_the_tallest_bin() -> None:
    histogram = RHistogram(low=-0.2, high=1.0, reliable=[0, 0, 3, 1], unreliable=[2, 1, 1, 0])
    root = parse(r_histogram_svg(histogram, width=100, height=50))
    reliable, unreliable = by_class(root, "bar-reliable"), by_class(root, "bar-unreliable")
    assert len(reliable) == 2 and len(unreliable) == 3
    # Bin 2, the tallest (3 reliable + 1 unreliable), fills the plot from the baseline (40) to the top (2).
    bottom, top = reliable[0], unreliable[2]
    assert float(bottom.get("y")) + float(bottom.get("height")) == pytest.approx(40.0, abs=0.1)
    assert float(top.get("y")) + float(top.get("height")) == pytest.approx(float(bottom.get("y")), abs=0.1)
    assert float(top.get("y")) == pytest.approx(2.0, abs=0.1)
    assert float(bottom.get("height")) == pytest.approx(3 * float(top.get("height")), abs=0.2)
    assert "4 reliable (solid), 4 not" in root.find(f"{SVG}title").text


def test_an_empty_histogram_is_an_axis_without_bars() -> None:
    root = parse(r_histogram_svg(RHistogram(low=-0.2, high=1.0, reliable=[0] * 20, unreliable=[0] * 20)))
    assert not by_class(root, "bar-reliable") and not by_class(root, "bar-unreliable") and by_class(root, "axis")
