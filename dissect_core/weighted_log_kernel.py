"""Compiled inner loops of soft-WPMI and WPMI (numba): the weighted log-probability sum and the PMI on top.

For neuron k with top images i_j and concept m, log p(m | B_k) = sum_j log(P[i_j, m] + s_j) + sum_j log w_j.
The factors (P + s_j) are multiplied in float64 before one logarithm per group of slots: every factor is at
least the smallest shift s_j, so a group of `group` factors cannot underflow float64, and one log per group
replaces one per slot. The loop walks P in slabs of concepts that stay in cache while every neuron passes over
them, one slab per core, and finishes each slab with the PMI (log p(m) = logsumexp over the layer's neurons
minus log K), so only the float32 scores are ever written to memory. torch has no fused
gather-multiply-reduce: as separate torch ops the same sum makes several passes over gigabytes.

numba's default threading layer must not be entered by two threads at once, so calls are serialised. Besides
its [K, C] output, the kernel holds K x 256 float64 partial sums per running slab (2 KB per neuron per core).
"""

from __future__ import annotations

import math
import threading

import numba
import numpy as np

#: Concepts per slab: each neuron's 256 float64 partial products stay in L1 while P's slab sits in L2/L3.
SLAB = 256
#: Products are kept within these bounds (float64's normal numbers span 2.2e-308 to 1.8e308).
_SMALLEST_PRODUCT = 1e-290
_LARGEST_PRODUCT = 1e290
_LOCK = threading.Lock()


def float64_group_size(smallest_shift: float, largest_shift: float, n_slots: int) -> int:
    """Return how many factors in [smallest_shift, 1 + largest_shift] can be multiplied in float64 without
    underflow or overflow (P is a probability, so a factor P + s lies in that range)."""
    if smallest_shift <= 0:
        return 1
    group = n_slots
    if smallest_shift < 1:
        group = min(group, int(math.log(_SMALLEST_PRODUCT) / math.log(smallest_shift)))
    group = min(group, int(math.log(_LARGEST_PRODUCT) / math.log1p(largest_shift)))
    return max(1, group)


@numba.njit(parallel=True, cache=True, nogil=True)
def _weighted_log_pmi(probabilities, rows, shifts, group, log_weight_sum, lam, out):  # pragma: no cover - compiled
    n_concepts = probabilities.shape[1]
    n_neurons, n_slots = rows.shape
    log_n_neurons = math.log(n_neurons)
    n_slabs = (n_concepts + SLAB - 1) // SLAB
    for slab in numba.prange(n_slabs):
        start = slab * SLAB
        width = min(SLAB, n_concepts - start)
        stop = start + width
        product = np.empty(width, dtype=np.float64)
        totals = np.empty((n_neurons, width), dtype=np.float64)
        for neuron in range(n_neurons):
            total = totals[neuron]
            total[:] = log_weight_sum
            for first in range(0, n_slots, group):
                product[:] = 1.0
                for slot in range(first, min(first + group, n_slots)):
                    row = probabilities[rows[neuron, slot], start:stop]
                    shift = shifts[slot]
                    for m in range(width):
                        product[m] *= np.float64(row[m]) + shift
                for m in range(width):
                    total[m] += math.log(product[m])
        # log p(m) = logsumexp over neurons of log p(m | B_k) - log K, row by row so the loops vectorise
        maxima = np.full(width, -np.inf)
        for neuron in range(n_neurons):
            total = totals[neuron]
            for m in range(width):
                maxima[m] = max(maxima[m], total[m])
        sums = np.zeros(width, dtype=np.float64)
        for neuron in range(n_neurons):
            total = totals[neuron]
            for m in range(width):
                if maxima[m] > -np.inf:
                    sums[m] += math.exp(total[m] - maxima[m])
        log_p_concept = np.empty(width, dtype=np.float64)
        for m in range(width):
            log_p_concept[m] = maxima[m] + math.log(sums[m]) - log_n_neurons if maxima[m] > -np.inf else -np.inf
        for neuron in range(n_neurons):
            total = totals[neuron]
            for m in range(width):
                out[neuron, start + m] = np.float32(total[m] - lam * log_p_concept[m])


@numba.njit(parallel=True, cache=True, nogil=True)
def _row_sums(values, out):  # pragma: no cover - compiled
    for row in numba.prange(values.shape[0]):
        total = 0.0
        for value in values[row]:
            total += np.float64(value)
        out[row] = total


def weighted_log_pmi(
    probabilities: np.ndarray, rows: np.ndarray, shifts: np.ndarray, log_weight_sum: float, lam: float
) -> np.ndarray:
    """Return float32 [K, C] scores log p(m|B_k) - lam * log p(m), the PMI of the weighted log kernel.

    log p(m|B_k) = log_weight_sum + sum_j log(probabilities[rows[k, j], m] + shifts[j]); `probabilities` is
    float32 [U, C], `rows` int64 [K, top_k] row indices into it, `shifts` float64 [top_k].
    """
    probabilities = np.ascontiguousarray(probabilities, dtype=np.float32)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    shifts = np.ascontiguousarray(shifts, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != shifts.shape[0]:
        raise ValueError(f"rows {rows.shape} and shifts {shifts.shape} disagree on the number of slots")
    if rows.size and (rows.min() < 0 or rows.max() >= probabilities.shape[0]):
        raise IndexError("rows index outside the probability rows")
    out = np.empty((rows.shape[0], probabilities.shape[1]), dtype=np.float32)
    if rows.size == 0:
        raise ValueError("weighted_log_pmi needs at least one neuron and one slot")
    group = float64_group_size(float(shifts.min()), float(shifts.max()), rows.shape[1])
    with _LOCK:
        _weighted_log_pmi(probabilities, rows, shifts, group, float(log_weight_sum), float(lam), out)
    return out


def row_sums_float64(values: np.ndarray) -> np.ndarray:
    """Return the float64 sum of each row of a float32 matrix (exactly accumulated, not a float32 sum)."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    out = np.empty(values.shape[0], dtype=np.float64)
    with _LOCK:
        _row_sums(values, out)
    return out
