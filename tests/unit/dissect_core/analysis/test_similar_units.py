"""The most correlated units, checked against hand-computed r: ordering, ties, constant units, the sketch."""

from __future__ import annotations

import pytest
import torch

from dissect_core.analysis.similar_units import (
    CorrelationSketch,
    centred_unit,
    correlation_sketch,
    most_correlated,
    most_correlated_all,
    most_correlated_tables,
    sketch_sample,
)
from dissect_core.analysis.standardise import LayerStandardiser


def sketch_of(activations: torch.Tensor, sketch_images: int = 4096) -> CorrelationSketch:
    return correlation_sketch(LayerStandardiser.from_activations(activations), sketch_images)


def test_the_sketch_rows_give_pearson_r_and_keep_the_activations() -> None:
    activations = torch.tensor([[1.0, 2.0, 5.0, 3.0], [2.0, 4.0, 5.0, 1.0], [3.0, 6.0, 5.0, 2.0]])
    sketch = sketch_of(activations)
    assert sketch.z.shape == (4, 3) and sketch.exact
    assert sketch.layer.constant.tolist() == [False, False, True, False]
    assert float(sketch.z[0] @ sketch.z[1]) == pytest.approx(1.0)  # unit 1 = 2 × unit 0
    # unit 0 = (1, 2, 3), unit 3 = (3, 1, 2): centred (-1, 0, 1) and (1, -1, 0): r = -1 / 2
    assert float(sketch.z[0] @ sketch.z[3]) == pytest.approx(-0.5)
    assert sketch.z[2].tolist() == [0.0, 0.0, 0.0]  # the constant unit has no r with anything
    assert sketch.layer.unit_activations(3).tolist() == [3.0, 1.0, 2.0]


def test_most_correlated_orders_by_r_and_skips_itself_and_constant_units() -> None:
    base = torch.tensor([1.0, 2.0, 3.0, 4.0])
    columns = [
        base,
        -base,
        base * 3,
        torch.ones(4),
        torch.tensor([1.0, 2.0, 4.0, 3.0]),
        torch.tensor([2.0, 1.0, 4.0, 3.0]),
    ]
    sketch = sketch_of(torch.stack(columns, dim=1))
    own = centred_unit(sketch.layer.rows[0])
    units, r = most_correlated(own, sketch.z[0], sketch, k=4, exclude=0)
    assert units.tolist() == [2, 4, 5, 1]  # r 1, 0.8, 0.6, -1; unit 3 is constant
    assert r.tolist() == pytest.approx([1.0, 0.8, 0.6, -1.0])
    units, _ = most_correlated(own, sketch.z[0], sketch, k=2)
    assert units.tolist() == [0, 2]


def tied_layer(n_images: int) -> torch.Tensor:
    """Return activations whose units 2, 3 and 5 are unit 0 times a power of two: exactly equal r with it."""
    base = torch.randn(n_images, generator=torch.Generator().manual_seed(1)).half().float()
    noisy = base + torch.randn(n_images, generator=torch.Generator().manual_seed(2))
    return torch.stack([base, noisy, base * 4, base * 2, -base, base * 0.5], dim=1)


@pytest.mark.parametrize("sketch_images", [4096, 16])  # the sketch's own r, and the exact re-rank over every image
def test_units_with_equal_r_come_lower_index_first(sketch_images: int) -> None:
    sketch = sketch_of(tied_layer(64), sketch_images)
    assert sketch.exact == (sketch_images == 4096)
    units, r = most_correlated(centred_unit(sketch.layer.rows[0]), sketch.z[0], sketch, k=4, exclude=0)
    assert units.tolist()[:3] == [2, 3, 5] and r[0] == r[1] == r[2]
    table_units, table_r = most_correlated_all(sketch, sketch, 4, same_layer=True)
    assert table_units[0].tolist() == units.tolist() and torch.allclose(table_r[0], r, atol=1e-5)
    # Unit 5 sees units 0, 2 and 3 at equal r: lowest index first again.
    assert table_units[5].tolist()[:3] == [0, 2, 3]


def test_correlations_over_a_sketch_sample_are_reported_exactly() -> None:
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(3000, generator=generator)
    noise = torch.randn(3000, 6, generator=generator)
    columns = torch.stack([base + scale * noise[:, j] for j, scale in enumerate((0.0, 0.2, 0.5, 1.0, 2.0, 4.0))], 1)
    columns = columns.half().float()
    sketch = sketch_of(columns, sketch_images=500)
    assert sketch.z.shape == (6, 500) and sketch.layer.rows.shape == (6, 3000) and not sketch.exact
    own = centred_unit(sketch.layer.rows[0])
    units, r = most_correlated(own, sketch.z[0], sketch, k=5, exclude=0, candidates=2)
    assert units.tolist() == [1, 2, 3, 4, 5]
    expected = [float(torch.corrcoef(columns[:, [0, j]].T.double())[0, 1]) for j in (1, 2, 3, 4, 5)]
    assert r.tolist() == pytest.approx(expected, abs=1e-5)  # over all 3,000 images, not the sample's 500
    assert float(own.norm()) == pytest.approx(1.0)
    assert float(own.sum()) == pytest.approx(0.0, abs=1e-4)


def test_sketch_sample_is_fixed_and_covers_small_probe_sets() -> None:
    assert sketch_sample(10, 20).tolist() == list(range(10))
    sample = sketch_sample(10_000, 100)
    assert sample.numel() == 100 and sample.tolist() == sorted(set(sample.tolist()))
    assert torch.equal(sample, sketch_sample(10_000, 100))


def test_a_unit_that_fires_faintly_on_one_image_has_correlations() -> None:
    # Std 6.1e-7 over 10,000 images: the image view once called it constant while this panel correlated it.
    activations = torch.zeros(10_000, 3)
    activations[0, 0] = 2.0**-14
    activations[0, 1] = 1.0  # unit 1 fires on the same image: r = 1
    sketch = sketch_of(activations)
    assert sketch.layer.constant.tolist() == [False, False, True]
    units, r = most_correlated_all(sketch, sketch, 2, same_layer=True)
    assert units[0].tolist() == [1, -1] and r[0, 0].item() == pytest.approx(1.0)
    assert units[2].tolist() == [-1, -1]  # the dead unit: no r with anything


def random_layer(n_images: int, n_units: int, seed: int, sketch_images: int) -> CorrelationSketch:
    generator = torch.Generator().manual_seed(seed)
    shared = torch.randn(n_images, 3, generator=generator)
    activations = shared @ torch.randn(3, n_units, generator=generator) + torch.randn(
        n_images, n_units, generator=generator
    )
    activations[:, 1] = 0.0  # a dead unit: no r with anything
    return sketch_of(activations, sketch_images)


def test_the_whole_layer_tables_equal_the_one_unit_answers() -> None:
    # What a page looks up (computed for a whole layer at once) must be what the one-unit function gives,
    # with a sketch smaller than the probe set (shortlist, then exact r) and with the sketch covering it.
    for sketch_images in (40, 4096):
        own, other = random_layer(300, 7, 0, sketch_images), random_layer(300, 5, 1, sketch_images)
        for target, same in ((own, True), (other, False)):
            units, r = most_correlated_all(own, target, 3, same_layer=same)
            for unit in range(7):
                one_units, one_r = most_correlated(
                    centred_unit(own.layer.rows[unit]), own.z[unit], target, 3, exclude=unit if same else None
                )
                if unit == 1:  # constant: nothing is correlated with it
                    assert (units[unit] == -1).all()
                    continue
                kept = units[unit] >= 0
                assert units[unit][kept].tolist() == one_units.tolist()
                assert torch.allclose(r[unit][kept], one_r, atol=1e-5)


def test_tables_against_several_layers_equal_one_layer_at_a_time() -> None:
    own, other = random_layer(300, 7, 0, 40), random_layer(300, 5, 1, 40)
    tables = most_correlated_tables(own, {"a": own, "b": other}, 3, own_name="a")
    for name, target, same in (("a", own, True), ("b", other, False)):
        units, r = most_correlated_all(own, target, 3, same_layer=same)
        assert torch.equal(tables[name][0], units)
        assert torch.allclose(tables[name][1], r, equal_nan=True)
