"""The neuron page's activation histogram SVG: bars, band edges, marks, its accessible title."""

from __future__ import annotations

import re

from app.read.schemas.distributions import ActivationHistogram, BandImage, NeuronDistribution, QuantileBand
from app.web.views.charts import activation_histogram_svg


def band(name: str, start: int, stop: int, low: float | None, high: float | None, acts: list[float]) -> QuantileBand:
    images = [
        BandImage(image_index=i, activation=a, view_url=None, image_url=f"/runs/1/images/{i}")
        for i, a in enumerate(acts)
    ]
    return QuantileBand(name=name, start=start, stop=stop, low=low, high=high, images=images)


def distribution(low_edges: tuple[float | None, ...] = (9.0, 7.0, 4.0, 2.0)) -> NeuronDistribution:
    names = ("top 1%", "1–5%", "5–20%", "20–50%")
    bands = [band(name, 0, 1, edge, 10.0, [edge or 0.0]) for name, edge in zip(names, low_edges, strict=True)]
    return NeuronDistribution(
        run_id=1,
        layer="layer<1>",
        unit=3,
        n_images=100,
        histogram=ActivationHistogram(low=0.0, high=10.0, counts=[50, 0, 30, 15, 5]),
        top_activations=[10.0, 9.5, 12.0],
        bands=[*bands, band("random sample", 0, 100, 0.0, 10.0, [1.0, 3.0])],
    )


def test_bars_marks_and_edges() -> None:
    svg = str(activation_histogram_svg(distribution()))
    assert svg.count('class="bar-activation"') == 4  # the empty bin draws nothing
    assert svg.count('class="band-edge"') == 4 and svg.count('class="band-edge-label"') == 4
    assert svg.count('class="top-mark"') == 3 and svg.count('class="band-mark"') == 6
    xs = [float(x) for x in re.findall(r'class="top-mark" x1="([\d.]+)"', svg)]
    assert max(xs) <= 640 - 6  # 12.0 lies beyond the bins: clamped to the axis' end


def test_title_names_the_neuron_escaped_and_what_is_marked() -> None:
    svg = str(activation_histogram_svg(distribution()))
    title = re.search(r'<title id="activation-histogram-title">([^<]*)</title>', svg)
    assert title is not None and "layer&lt;1&gt; unit 3 over 100 probe images" in title.group(1)
    assert "1% at 9" in title.group(1) and "3 top images" in title.group(1)
    assert 'role="img"' in svg and 'aria-labelledby="activation-histogram-title"' in svg


def test_crowded_band_edges_use_a_second_row_then_go_unlabelled() -> None:
    svg = str(activation_histogram_svg(distribution((9.0, 8.99, 8.98, 2.0))))
    assert svg.count('class="band-edge"') == 4 and svg.count('class="band-edge-label"') == 3
    assert len(set(re.findall(r'class="band-edge-label" x="[\d.]+" y="([\d.]+)"', svg))) == 2


def test_an_empty_band_has_no_edge_and_no_histogram_no_chart() -> None:
    svg = str(activation_histogram_svg(distribution((9.0, None, 4.0, 2.0))))
    assert svg.count('class="band-edge"') == 3
    empty = NeuronDistribution(run_id=1, layer="fc", unit=0, unavailable="no activations")
    assert str(activation_histogram_svg(empty)) == ""
