"""The one layer standardiser, checked against hand-computed means, spreads and z-scores, and its constant rule."""

from __future__ import annotations

import math

import pytest
import torch

from dissect_core.analysis.standardise import LayerStandardiser, unit_norm_rows

# Four images (rows) by four units: unit 0 varies, unit 1 is dead (all zero), unit 2 is constant at 7.
ACTIVATIONS = torch.tensor(
    [
        [1.0, 0.0, 7.0, 0.0],
        [2.0, 0.0, 7.0, 0.0],
        [3.0, 0.0, 7.0, 0.0],
        [6.0, 0.0, 7.0, 0.5],
    ]
)


def test_means_and_population_spreads_by_hand() -> None:
    layer = LayerStandardiser.from_activations(ACTIVATIONS)
    assert (layer.n_units, layer.n_images) == (4, 4)
    assert layer.rows.dtype == torch.float16 and layer.rows.shape == (4, 4)
    # unit 0: mean 3, deviations (-2, -1, 0, 3), variance 14 / 4
    # unit 3: mean 1/8, deviations (-1/8, -1/8, -1/8, 3/8), variance (3/64 + 9/64) / 4 = 3/64
    assert layer.mean.tolist() == pytest.approx([3.0, 0.0, 7.0, 0.125])
    assert layer.std.tolist() == pytest.approx([math.sqrt(3.5), 0.0, 0.0, math.sqrt(3 / 64)])
    assert layer.constant.tolist() == [False, True, True, False]
    assert layer.centred_norms().tolist() == pytest.approx([math.sqrt(14.0), 0.0, 0.0, math.sqrt(3 / 16)])


def test_z_scores_by_hand_and_zero_on_dead_and_constant_units() -> None:
    layer = LayerStandardiser.from_activations(ACTIVATIONS)
    z = layer.z_scores(layer.image_activations(3))
    # unit 3 fires on one image of four: z = (N - 1) / sqrt(N - 1) = sqrt(3) there
    assert z.tolist() == pytest.approx([3.0 / math.sqrt(3.5), 0.0, 0.0, math.sqrt(3.0)])
    assert layer.z_scores(torch.tensor([3.0, 5.0, 9.0, 0.125])).tolist() == pytest.approx([0.0, 0.0, 0.0, 0.0])


def test_the_constant_rule_is_relative_to_the_units_scale() -> None:
    n = 10_000
    rows = torch.zeros(4, n)
    rows[0, 0] = 2.0**-14  # fires faintly on one image: std 6.1e-7, yet it varies
    rows[1] = 1000.0  # constant at any magnitude
    rows[2] = 1.0
    rows[2, 0] = 1.0 + 2.0**-23  # one float32 ulp on one image: within the tolerance of rounding
    rows[3] = 1.0
    rows[3, 0] = 1.0 + 2.0**-10  # one float16 ulp on one image: a real, stored variation
    layer = LayerStandardiser.from_rows(rows)
    assert layer.constant.tolist() == [False, True, True, False]
    # A unit that fires on one image of N: z = sqrt(N - 1) there, whatever the activation's size.
    assert float(layer.z_scores(layer.image_activations(0))[0]) == pytest.approx(math.sqrt(n - 1), rel=1e-5)
    assert float(layer.z_scores(layer.image_activations(0))[2]) == 0.0


def test_rows_are_used_as_they_are() -> None:
    rows = ACTIVATIONS.T.half().contiguous()
    layer = LayerStandardiser.from_rows(rows)
    assert layer.rows is rows
    assert layer.nbytes() == 4 * 4 * 2 + 4 * 4 + 4 * 4 + 4
    assert torch.equal(layer.mean, LayerStandardiser.from_activations(ACTIVATIONS).mean)


def test_a_layer_with_no_images_has_only_constant_units() -> None:
    layer = LayerStandardiser.from_rows(torch.zeros(3, 0, dtype=torch.float16))
    assert layer.constant.tolist() == [True, True, True] and layer.std.tolist() == [0.0, 0.0, 0.0]


def test_activations_must_be_images_by_units() -> None:
    with pytest.raises(ValueError, match=r"\[images, units\]"):
        LayerStandardiser.from_activations(torch.randn(4))
    with pytest.raises(ValueError, match=r"\[units, images\]"):
        LayerStandardiser.from_rows(torch.randn(2, 3, 4))


def test_unit_norm_rows_by_hand() -> None:
    rows = unit_norm_rows(ACTIVATIONS.T)
    assert rows[0].tolist() == pytest.approx([v / math.sqrt(14.0) for v in (-2.0, -1.0, 0.0, 3.0)])
    assert rows[1].tolist() == [0.0] * 4 and rows[2].tolist() == [0.0] * 4  # dead and constant: zeros
    assert float(rows[0] @ rows[3]) == pytest.approx(float(torch.corrcoef(ACTIVATIONS.T[[0, 3]])[0, 1]))
