"""The compiled soft-WPMI/WPMI kernel against a plain float64 computation, across slab and group boundaries."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from dissect_core.similarity.kernel import SLAB, WeightedLogAccumulator, float64_group_size, row_sums_float64


def weighted_log_pmi(probabilities, rows, shifts, log_weight_sum, lam, n_blocks=1):
    """Feed the accumulator the P rows in `n_blocks` blocks of images, as `similarity` does, and take the PMI."""
    n_neurons, n_slots = rows.shape
    accumulator = WeightedLogAccumulator(n_neurons, probabilities.shape[1], shifts, log_weight_sum)
    bounds = np.linspace(0, probabilities.shape[0], n_blocks + 1).astype(int)
    for low, high in itertools.pairwise(bounds):
        slots = np.flatnonzero((rows >= low) & (rows < high))  # ascending: by neuron, then position
        accumulator.add_block(probabilities[low:high], slots // n_slots, rows.flat[slots] - low, slots % n_slots)
    return accumulator.pmi(lam)


def plain_weighted_log_pmi(probabilities, rows, shifts, log_weight_sum, lam):
    """The definition, one neuron at a time, in float64."""
    log_given = np.stack(
        [np.log(probabilities[neuron_rows].astype(np.float64) + shifts[:, None]).sum(0) for neuron_rows in rows]
    )
    log_given += log_weight_sum
    peak = log_given.max(0)
    log_prior = peak + np.log(np.exp(log_given - peak).sum(0)) - math.log(len(rows))
    return log_given - lam * log_prior


@pytest.mark.parametrize("n_blocks", [1, 3])
@pytest.mark.parametrize(
    ("n_concepts", "n_slots", "smallest_shift"),
    [
        (SLAB * 2 + 37, 100, 2e-3),  # soft-WPMI-like: one group of 100, a partial last slab
        (70, 60, 1e-7),  # WPMI-like: groups of 41 and 19 slots
        (SLAB, 5, 0.5),
    ],
)
def test_kernel_matches_the_definition(n_concepts, n_slots, smallest_shift, n_blocks):
    rng = np.random.default_rng(n_slots)
    logits = rng.normal(scale=2.0, size=(50, n_concepts))
    probabilities = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
    rows = rng.integers(0, 50, size=(7, n_slots))
    shifts = np.linspace(smallest_shift, 0.03, n_slots)
    got = weighted_log_pmi(probabilities, rows, shifts, log_weight_sum=-0.25, lam=0.6, n_blocks=n_blocks)
    expected = plain_weighted_log_pmi(probabilities, rows, shifts, -0.25, 0.6)
    assert got.dtype == np.float32 and got.shape == (7, n_concepts)
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-5 * max(1.0, np.abs(expected).max() / 100))


def test_groups_never_underflow_or_overflow_float64():
    assert float64_group_size(1e-7, 1e-7, 100) == 41
    assert float64_group_size(2e-3, 0.03, 100) == 100
    assert float64_group_size(0.0, 0.03, 100) == 1
    assert 1e-7**41 > 1e-300
    group = float64_group_size(2.3, 2.4, 600)
    assert 1 < group < 600 and (1 + 2.4) ** group < 1e300


def test_large_shifts_give_finite_sums():
    """Factors above 1 (weights under 1/2) must not overflow a group's product to inf."""
    probabilities = np.ones((1, 3), dtype=np.float32)
    rows = np.zeros((2, 600), dtype=np.int64)
    got = weighted_log_pmi(probabilities, rows, np.full(600, 2.4), log_weight_sum=0.0, lam=0.0)
    np.testing.assert_allclose(got, np.full((2, 3), 600 * math.log(3.4)), rtol=1e-6)


def test_tiny_factors_give_the_same_sum_as_one_log_each():
    """Factors near the smallest shift multiply to ~1e-287 within a group: still exact, no underflow to -inf."""
    probabilities = np.zeros((1, 3), dtype=np.float32)
    rows = np.zeros((2, 41), dtype=np.int64)
    got = weighted_log_pmi(probabilities, rows, np.full(41, 1e-7), log_weight_sum=0.0, lam=0.0)
    np.testing.assert_allclose(got, np.full((2, 3), 41 * math.log(1e-7)), rtol=1e-6)


def test_out_of_range_rows_are_refused():
    accumulator = WeightedLogAccumulator(1, 3, np.ones(2), 0.0)
    with pytest.raises(IndexError):
        accumulator.add_block(np.ones((2, 3), np.float32), np.array([0, 0]), np.array([0, 2]), np.array([0, 1]))


def test_row_sums_are_float64_accurate():
    values = np.full((2, 100_000), 1e-4, dtype=np.float32)
    values[1, 0] = 1e4
    sums = row_sums_float64(values)
    np.testing.assert_allclose(
        sums, [100_000 * np.float64(np.float32(1e-4)), 1e4 + 99_999 * np.float64(np.float32(1e-4))]
    )
