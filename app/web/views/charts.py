"""Small inline SVG charts drawn on the server (no script): where a neuron's r falls in its layer's null, and a
layer's histogram of r. Colours come from classes styled in static/app.css (with currentColor as the fallback), so
they follow the light and dark schemes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from app.read.schemas.distributions import ActivationHistogram, NeuronDistribution
from app.read.schemas.runs import RHistogram, WeightConceptAgreementView

#: How far the null curve reaches on either side of 0, in null standard deviations.
NULL_SPAN_SDS = 4.0
CURVE_POINTS = 81


@dataclass(frozen=True)
class Axis:
    """A linear map from values in [low, high] to pixels in [left, right]."""

    low: float
    high: float
    left: float
    right: float

    def __call__(self, value: float) -> float:
        """Return the pixel position of a value (outside the range it lies outside the pixels)."""
        return self.left + (value - self.low) / (self.high - self.low) * (self.right - self.left)


def _number(value: float) -> str:
    """Return a coordinate as SVG text: one decimal, no negative zero."""
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def null_range(null_sd: float, marks: Sequence[float | None]) -> tuple[float, float]:
    """Return the r range the null chart shows: ±4 null sds around 0, widened to show every mark, within [-1, 1]."""
    span = NULL_SPAN_SDS * null_sd
    low, high = -span, span
    for mark in marks:
        if mark is not None and math.isfinite(mark):
            pad = 0.08 * (high - low)
            low, high = min(low, mark - pad), max(high, mark + pad)
    return max(-1.0, low), min(1.0, high)


def null_curve_points(null_sd: float, axis: Axis, top: float, baseline: float) -> list[tuple[float, float]]:
    """Return pixel points of the normal density N(0, null_sd) over the axis' range, its peak at `top`."""
    points = []
    for step in range(CURVE_POINTS):
        value = axis.low + (axis.high - axis.low) * step / (CURVE_POINTS - 1)
        density = math.exp(-0.5 * (value / null_sd) ** 2)
        points.append((axis(value), baseline - density * (baseline - top)))
    return points


def _path(points: Sequence[tuple[float, float]]) -> str:
    return "M" + " L".join(f"{_number(x)} {_number(y)}" for x, y in points)


def _label(x: float, y: float, text: str, css_class: str, width: float, *, room: float = 70.0) -> str:
    """Return a text element at (x, y), anchored so that about `room` pixels of text stay inside the chart."""
    anchor = "end" if x > width - room else "start"
    nudge = -3 if anchor == "end" else 3
    return (
        f'<text class="{css_class}" x="{_number(x + nudge)}" y="{_number(y)}" text-anchor="{anchor}" '
        f'fill="currentColor">{escape(text)}</text>'
    )


def null_curve_svg(
    null_sd: float, r: float | None, reliable_min_r: float | None, *, width: int = 320, height: int = 120
) -> Markup:
    """Return an inline SVG of the layer's null N(0, null_sd), its significance threshold (`reliable_min_r`, the
    smallest r the Benjamini–Hochberg test passed) and the neuron's r marked."""
    if not (math.isfinite(null_sd) and null_sd > 0):
        return Markup("")
    top, baseline = 22.0, height - 22.0
    low, high = null_range(null_sd, [r, reliable_min_r])
    axis = Axis(low, high, 8.0, width - 8.0)
    points = null_curve_points(null_sd, axis, top, baseline)
    parts = [
        f'<svg class="chart null-chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-labelledby="null-chart-title">',
        f'<title id="null-chart-title">{escape(_null_title(null_sd, r, reliable_min_r))}</title>',
    ]
    if reliable_min_r is not None and low < reliable_min_r < high:
        x = axis(reliable_min_r)
        parts.append(
            f'<rect class="zone" x="{_number(x)}" y="{_number(top - 8)}" width="{_number(axis.right - x)}" '
            f'height="{_number(baseline - top + 8)}"/>'
        )
    parts.append(f'<path class="null-fill" d="{_path(points)} Z"/>')
    parts.append(f'<path class="curve" d="{_path(points)}" fill="none" stroke="currentColor"/>')
    parts.append(
        f'<line class="axis" x1="{_number(axis.left)}" y1="{_number(baseline)}" x2="{_number(axis.right)}" '
        f'y2="{_number(baseline)}" stroke="currentColor"/>'
    )
    parts.append(_tick(axis(0.0), baseline, "0", width))
    if reliable_min_r is not None and low < reliable_min_r < high:
        x = axis(reliable_min_r)
        parts.append(
            f'<line class="threshold" x1="{_number(x)}" y1="{_number(top - 8)}" x2="{_number(x)}" '
            f'y2="{_number(baseline)}" stroke="currentColor"/>'
        )
        parts.append(_label(x, baseline + 15, f"significant ≥ {reliable_min_r:.2f}", "threshold-label", width, room=90))
    if r is not None and math.isfinite(r):
        x = axis(min(max(r, low), high))
        parts.append(
            f'<line class="marker" x1="{_number(x)}" y1="{_number(top - 12)}" x2="{_number(x)}" '
            f'y2="{_number(baseline)}" stroke="currentColor"/>'
        )
        parts.append(f'<circle class="marker-dot" cx="{_number(x)}" cy="{_number(baseline)}" r="3"/>')
        parts.append(_label(x, top - 4, f"r {r:.2f}", "marker-label", width, room=50))
    parts.append("</svg>")
    return Markup("".join(parts))


def _tick(x: float, baseline: float, text: str, width: float) -> str:
    return (
        f'<line class="axis" x1="{_number(x)}" y1="{_number(baseline)}" x2="{_number(x)}" y2="{_number(baseline + 4)}" '
        f'stroke="currentColor"/>'
        f'<text x="{_number(x)}" y="{_number(baseline + 15)}" text-anchor="middle" fill="currentColor">{text}</text>'
    )


def _null_title(null_sd: float, r: float | None, reliable_min_r: float | None) -> str:
    parts = [f"The layer's null: r of a label that explains nothing is about normal with sd {null_sd:.3f}"]
    if reliable_min_r is not None:
        parts.append(f"labels are significant from r {reliable_min_r:.2f}")
    if r is not None and math.isfinite(r):
        parts.append(f"this neuron's r is {r:.2f}, {r / null_sd:+.1f} null sds from 0")
    return "; ".join(parts)


def r_histogram_svg(histogram: RHistogram, *, width: int = 168, height: int = 40) -> Markup:
    """Return an inline SVG of a layer's explained_r histogram: reliable counts stacked under unreliable ones."""
    totals = [good + bad for good, bad in zip(histogram.reliable, histogram.unreliable, strict=True)]
    tallest = max(totals, default=0)
    baseline, top = height - 10.0, 2.0
    axis = Axis(histogram.low, histogram.high, 1.0, width - 1.0)
    bin_width = (axis.right - axis.left) / max(1, len(totals))
    scale = (baseline - top) / tallest if tallest else 0.0
    total = sum(totals)
    parts = [
        f'<svg class="chart r-histogram" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">',
        f"<title>{escape(_histogram_title(histogram, total))}</title>",
    ]
    for index, (good, bad) in enumerate(zip(histogram.reliable, histogram.unreliable, strict=True)):
        x = axis.left + index * bin_width
        parts.extend(_stacked_bar(x, bin_width, baseline, good * scale, bad * scale))
    parts.append(
        f'<line class="axis" x1="{_number(axis.left)}" y1="{_number(baseline)}" x2="{_number(axis.right)}" '
        f'y2="{_number(baseline)}" stroke="currentColor"/>'
    )
    for value in (0.0, 0.5, 1.0):
        if histogram.low <= value <= histogram.high:
            x = min(max(axis(value), 4.0), width - 4.0)
            parts.append(
                f'<text x="{_number(x)}" y="{height - 1}" text-anchor="middle" fill="currentColor">{value:g}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def _stacked_bar(x: float, bin_width: float, baseline: float, good: float, bad: float) -> list[str]:
    bars = []
    gap = 0.6 if bin_width > 3 else 0.0
    for css_class, bottom, length in (("bar-reliable", baseline, good), ("bar-unreliable", baseline - good, bad)):
        if length > 0:
            bars.append(
                f'<rect class="{css_class}" x="{_number(x + gap / 2)}" y="{_number(bottom - length)}" '
                f'width="{_number(bin_width - gap)}" height="{_number(length)}"/>'
            )
    return bars


def _histogram_title(histogram: RHistogram, total: int) -> str:
    reliable = sum(histogram.reliable)
    return (
        f"explained r of {total} neurons in {len(histogram.reliable)} bins from {histogram.low:g} to "
        f"{histogram.high:g}: {reliable} reliable (solid), {total - reliable} not"
    )


#: Where the band edges of a neuron's activation histogram are labelled: the share of images above each edge.
BAND_EDGE_LABELS = ("1%", "5%", "20%", "50%")


def activation_histogram_svg(distribution: NeuronDistribution, *, width: int = 640, height: int = 168) -> Markup:
    """Return an inline SVG of a neuron's activation histogram over the probe images, with the quantile band
    edges (dashed), the top images' activations (ticks under the axis) and the band examples (dots) marked."""
    bins = distribution.histogram
    if bins is None:
        return Markup("")
    tallest = max(bins.counts, default=0)
    top, baseline = 34.0, height - 44.0
    axis = Axis(bins.low, bins.high, 6.0, width - 6.0)
    bin_width = (axis.right - axis.left) / max(1, len(bins.counts))
    scale = (baseline - top) / tallest if tallest else 0.0
    parts = [
        f'<svg class="chart activation-histogram" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-labelledby="activation-histogram-title" id="activation-histogram">',
        f'<title id="activation-histogram-title">{escape(_activation_title(distribution, bins))}</title>',
    ]
    gap = 0.8 if bin_width > 4 else 0.0
    for index, count in enumerate(bins.counts):
        if count:
            length = max(1.0, count * scale)  # a bin of one image among thousands still shows
            parts.append(
                f'<rect class="bar-activation" x="{_number(axis.left + index * bin_width + gap / 2)}" '
                f'y="{_number(baseline - length)}" width="{_number(bin_width - gap)}" height="{_number(length)}">'
                f"<title>{count} images from {_edge(bins, index)} to {_edge(bins, index + 1)}</title></rect>"
            )
    parts.extend(_band_edges(distribution, axis, top, baseline))
    parts.append(
        f'<line class="axis" x1="{_number(axis.left)}" y1="{_number(baseline)}" x2="{_number(axis.right)}" '
        f'y2="{_number(baseline)}" stroke="currentColor"/>'
    )
    for band in distribution.bands:
        for image in band.images:
            parts.append(
                f'<circle class="band-mark" cx="{_number(_clamped(axis, image.activation))}" '
                f'cy="{_number(baseline + 6)}" r="2.5"/>'
            )
    for activation in distribution.top_activations:
        mark = _number(_clamped(axis, activation))
        parts.append(
            f'<line class="top-mark" x1="{mark}" y1="{_number(baseline + 11)}" x2="{mark}" '
            f'y2="{_number(baseline + 20)}" stroke="currentColor"/>'
        )
    for value, anchor in ((bins.low, "start"), (bins.high, "end")):
        parts.append(
            f'<text x="{_number(axis(value))}" y="{height - 4}" text-anchor="{anchor}" fill="currentColor">'
            f"{value:.3g}</text>"
        )
    if bins.low < 0 < bins.high and 0.08 < (0 - bins.low) / (bins.high - bins.low) < 0.92:
        parts.append(_tick(axis(0.0), baseline + 20, "0", width))
    parts.append("</svg>")
    return Markup("".join(parts))


def _band_edges(distribution: NeuronDistribution, axis: Axis, top: float, baseline: float) -> list[str]:
    """Return the dashed band edges, labelled on the first of two rows with room (1% first); crowded ones unlabelled."""
    room, rows = 30.0, [top - 6, top - 17]
    placed: list[list[float]] = [[] for _ in rows]
    parts = []
    for band, label in zip(distribution.bands, BAND_EDGE_LABELS, strict=False):
        if band.low is None:
            continue
        x = _clamped(axis, band.low)
        row = next((row for row, xs in enumerate(placed) if all(abs(x - other) >= room for other in xs)), None)
        y = rows[row] if row is not None else top - 2
        parts.append(
            f'<line class="band-edge" x1="{_number(x)}" y1="{_number(y + 2)}" x2="{_number(x)}" '
            f'y2="{_number(baseline)}" stroke="currentColor"/>'
        )
        if row is not None:
            placed[row].append(x)
            parts.append(
                f'<text class="band-edge-label" x="{_number(x)}" y="{_number(y)}" text-anchor="middle" '
                f'fill="currentColor">{label}</text>'
            )
    return parts


def _clamped(axis: Axis, value: float) -> float:
    return axis(min(max(value, axis.low), axis.high))


def _edge(bins: ActivationHistogram, index: int) -> str:
    return f"{bins.low + (bins.high - bins.low) * index / max(1, len(bins.counts)):.3g}"


def _activation_title(distribution: NeuronDistribution, bins: ActivationHistogram) -> str:
    parts = [
        f"Activation of {distribution.layer} unit {distribution.unit} over {distribution.n_images} probe images, "
        f"{len(bins.counts)} bins from {bins.low:.3g} to {bins.high:.3g}"
    ]
    edges = [
        f"{label} at {band.low:.3g}"
        for band, label in zip(distribution.bands, BAND_EDGE_LABELS, strict=False)
        if band.low is not None
    ]
    if edges:
        parts.append("band edges (dashed, share of images above): " + ", ".join(edges))
    if distribution.top_activations:
        parts.append(f"{len(distribution.top_activations)} top images ticked under the axis")
    n_examples = sum(len(band.images) for band in distribution.bands)
    if n_examples:
        parts.append(f"{n_examples} band examples dotted")
    return "; ".join(parts)


def agreement_curve_svg(agreement: WeightConceptAgreementView, *, width: int = 360, height: int = 170) -> Markup:
    """Return an inline SVG of the paper's Fig. 5b on one layer pair: the mean label–class cosine of the top-k
    weighted pairs against k (log scale), the all-pairs mean dashed, with r and its permutation p."""
    points = [(point.k, point.mean_similarity) for point in agreement.curve if point.k > 0]
    if not points:
        return Markup("")
    top, baseline = 26.0, height - 24.0
    values = [mean for _, mean in points] + [agreement.all_pairs_mean]
    low, high = min(values), max(values)
    pad = max(0.02, 0.1 * (high - low))
    y_axis = Axis(low - pad, high + pad, baseline, top)
    first, last = math.log2(points[0][0]), math.log2(points[-1][0])
    x_axis = Axis(first, last if last > first else first + 1.0, 34.0, width - 10.0)
    curve = [(x_axis(math.log2(k)), y_axis(mean)) for k, mean in points]
    title = (
        f"{agreement.from_layer} → {agreement.to_layer}: mean label–class cosine of the top-k weights, from "
        f"{points[0][1]:.3f} (k={points[0][0]}) to {points[-1][1]:.3f} (k={points[-1][0]}), against "
        f"{agreement.all_pairs_mean:.3f} over all pairs; r {agreement.pearson_r:.3f}, p {agreement.p_value:.3g}"
    )
    mean_y = y_axis(agreement.all_pairs_mean)
    mean_label = f"all pairs {agreement.all_pairs_mean:.3f}"
    parts = [
        f'<svg class="chart agreement-chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line class="axis" x1="{_number(x_axis.left)}" y1="{_number(baseline)}" x2="{_number(x_axis.right)}" '
        f'y2="{_number(baseline)}" stroke="currentColor"/>',
        f'<line class="threshold" x1="{_number(x_axis.left)}" y1="{_number(mean_y)}" x2="{_number(x_axis.right)}" '
        f'y2="{_number(mean_y)}" stroke="currentColor"/>',
        _label(x_axis.right, mean_y - 4, mean_label, "threshold-label", width, room=99),
        f'<path class="curve" d="{_path(curve)}" fill="none" stroke="currentColor"/>',
        *(f'<circle class="marker-dot" cx="{_number(x)}" cy="{_number(y)}" r="2.5"/>' for x, y in curve),
        _label(x_axis.left, 12, f"r {agreement.pearson_r:.3f} · p {agreement.p_value:.3g}", "marker-label", width),
        f'<text x="4" y="{_number(y_axis(high))}" fill="currentColor">{high:.2f}</text>',
        f'<text x="4" y="{_number(y_axis(low))}" fill="currentColor">{low:.2f}</text>',
    ]
    for k, _ in points[:: max(1, len(points) // 5)]:
        parts.append(_tick(x_axis(math.log2(k)), baseline, str(k), width))
    parts.append("</svg>")
    return Markup("".join(parts))
