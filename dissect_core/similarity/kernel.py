"""Compiled inner loops of soft-WPMI and WPMI (numba): the weighted log-probability sum and the PMI on top.

For neuron k with top images i_j and concept m, log p(m | B_k) = sum_j log(P[i_j, m] + s_j) + sum_j log w_j.
The factors (P + s_j) are multiplied in float64 before one logarithm per group of slots: every factor lies in
[min s_j, 1 + max s_j], so a group of `group` factors can neither underflow nor overflow float64, and one log
per group replaces one per slot. The loops walk P in slabs of 256 concepts, one slab per core, so a slab stays
in cache while every neuron passes over it. P arrives in blocks of images (all top images at once when they
fit the memory budget), and the sums go into float64 totals; the PMI (log p(m) = logsumexp over the layer's
neurons minus log K) is a second compiled pass, split so that blocks of neurons computed apart (on other
machines) give their `ConceptPartials` and the PMI takes the layer's log p(m) from all of them. torch has no
fused gather-multiply-reduce: as separate torch ops the same sum makes several passes over gigabytes.

numba's default threading layer must not be entered by two threads at once, so calls are serialised. The compiled
code is cached where numba finds a writable folder: NUMBA_CACHE_DIR when set (the Docker image sets it under the
data volume), else next to this file, else the user's cache folder; with none, each process compiles afresh.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

#: Concepts per slab: each neuron's 256 float64 partial products stay in L1 while P's slab sits in L2/L3.
SLAB = 256
#: Products are kept within these bounds (float64's normal numbers span 2.2e-308 to 1.8e308).
_SMALLEST_PRODUCT = 1e-290
_LARGEST_PRODUCT = 1e290
_LOCK = threading.Lock()


def _compiled(function: Callable[..., Any]) -> Callable[..., Any]:
    """Return `function` compiled by numba (parallel, without the GIL), cached on disk when a folder is writable."""
    try:
        return numba.njit(parallel=True, cache=True, nogil=True)(function)
    except RuntimeError:  # numba found no writable cache folder (a read-only install, no home folder)
        warnings.warn(
            "numba cannot cache the similarity kernels (no writable folder), so every process compiles them "
            "(a few seconds); set NUMBA_CACHE_DIR to a writable folder to keep them",
            RuntimeWarning,
            stacklevel=2,
        )
        return numba.njit(parallel=True, nogil=True)(function)


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


@_compiled
def _add_log_products(probabilities, neurons, slot_starts, slot_rows, slot_shifts, group, totals):  # pragma: no cover
    n_concepts = probabilities.shape[1]
    n_slabs = (n_concepts + SLAB - 1) // SLAB
    for slab in numba.prange(n_slabs):
        start = slab * SLAB
        width = min(SLAB, n_concepts - start)
        stop = start + width
        product = np.empty(width, dtype=np.float64)
        for i in range(neurons.shape[0]):
            total = totals[neurons[i], start:stop]
            end = slot_starts[i + 1]
            for first in range(slot_starts[i], end, group):
                product[:] = 1.0
                for slot in range(first, min(first + group, end)):
                    row = probabilities[slot_rows[slot], start:stop]
                    shift = slot_shifts[slot]
                    for m in range(width):
                        product[m] *= np.float64(row[m]) + shift
                for m in range(width):
                    total[m] += math.log(product[m])


@_compiled
def _concept_partials(totals, maxima, sums):  # pragma: no cover - compiled
    n_neurons, n_concepts = totals.shape
    n_slabs = (n_concepts + SLAB - 1) // SLAB
    for slab in numba.prange(n_slabs):
        start = slab * SLAB
        stop = min(start + SLAB, n_concepts)
        # logsumexp over neurons of log p(m | B_k), as (maximum, sum of exp(total - maximum)), neuron by neuron so
        # the loops vectorise
        for m in range(start, stop):
            maxima[m] = -np.inf
            sums[m] = 0.0
        for neuron in range(n_neurons):
            for m in range(start, stop):
                maxima[m] = max(maxima[m], totals[neuron, m])
        for neuron in range(n_neurons):
            for m in range(start, stop):
                if maxima[m] > -np.inf:
                    sums[m] += math.exp(totals[neuron, m] - maxima[m])


@_compiled
def _log_p_concept(maxima, sums, n_neurons, out):  # pragma: no cover - compiled
    n_parts, n_concepts = maxima.shape
    log_n_neurons = math.log(n_neurons)
    for m in numba.prange(n_concepts):
        largest = -np.inf
        for part in range(n_parts):
            largest = max(largest, maxima[part, m])
        total = 0.0
        for part in range(n_parts):
            if maxima[part, m] > -np.inf:
                total += sums[part, m] * math.exp(maxima[part, m] - largest)
        out[m] = largest + math.log(total) - log_n_neurons if largest > -np.inf else -np.inf


@_compiled
def _pmi(totals, lam, log_p_concept, out):  # pragma: no cover - compiled
    n_neurons, n_concepts = totals.shape
    for neuron in numba.prange(n_neurons):
        for m in range(n_concepts):
            out[neuron, m] = np.float32(totals[neuron, m] - lam * log_p_concept[m])


@_compiled
def _row_sums(values, out):  # pragma: no cover - compiled
    for row in numba.prange(values.shape[0]):
        total = 0.0
        for value in values[row]:
            total += np.float64(value)
        out[row] = total


class WeightedLogAccumulator:
    """Accumulates log p(m | B_k) = log_weight_sum + sum_j log(P[i_j, m] + shifts[j]) block by block of images.

    Each block adds, for every neuron with top images in it, the logarithms of its factors' group products;
    `pmi` then returns log p(m | B_k) - lam * log p(m) as float32 [K, C]. Holds K x C float64 totals.
    """

    def __init__(self, n_neurons: int, n_concepts: int, shifts: np.ndarray, log_weight_sum: float) -> None:
        if n_neurons < 1 or len(shifts) < 1:
            raise ValueError("the kernel needs at least one neuron and one top image")
        self.shifts = np.ascontiguousarray(shifts, dtype=np.float64)
        self.group = float64_group_size(float(self.shifts.min()), float(self.shifts.max()), len(self.shifts))
        self.totals = np.full((n_neurons, n_concepts), float(log_weight_sum), dtype=np.float64)

    def add_block(
        self, probabilities: np.ndarray, slot_neurons: np.ndarray, slot_rows: np.ndarray, slot_positions: np.ndarray
    ) -> None:
        """Add the slots whose P rows `probabilities` [B, C] (float32) holds.

        Slot s belongs to neuron slot_neurons[s] at top-image position slot_positions[s] and reads
        probabilities[slot_rows[s]]; slots must be ordered by neuron, then position.
        """
        probabilities = np.ascontiguousarray(probabilities, dtype=np.float32)
        if probabilities.shape[1] != self.totals.shape[1]:
            raise ValueError(f"P rows have {probabilities.shape[1]} concepts, the totals {self.totals.shape[1]}")
        slot_rows = np.ascontiguousarray(slot_rows, dtype=np.int64)
        if slot_rows.size == 0:
            return
        if slot_rows.min() < 0 or slot_rows.max() >= probabilities.shape[0]:
            raise IndexError("slot rows index outside the block's probability rows")
        neurons, first_slots = np.unique(np.asarray(slot_neurons, dtype=np.int64), return_index=True)
        slot_starts = np.append(first_slots, len(slot_rows)).astype(np.int64)
        slot_shifts = self.shifts[np.asarray(slot_positions, dtype=np.int64)]
        with _LOCK:
            _add_log_products(probabilities, neurons, slot_starts, slot_rows, slot_shifts, self.group, self.totals)

    def pmi(self, lam: float) -> np.ndarray:
        """Return float32 [K, C] log p(m | B_k) - lam * log p(m), with p(m) the mean over the K neurons."""
        return pmi_scores(self.totals, log_p_concept([concept_partials(self.totals)]), lam)


@dataclass(frozen=True)
class ConceptPartials:
    """One block of neurons' share of log p(m) = logsumexp over every neuron k of log p(m | B_k) - log K: per
    concept, the block's largest total and the sum of exp(total - largest) over its neurons (float64 [C])."""

    maxima: np.ndarray
    sums: np.ndarray
    n_neurons: int


def concept_partials(totals: np.ndarray) -> ConceptPartials:
    """Return a block's ConceptPartials from its float64 totals log p(m | B_k) [K_b, C]."""
    totals = np.ascontiguousarray(totals, dtype=np.float64)
    maxima = np.empty(totals.shape[1], dtype=np.float64)
    sums = np.empty(totals.shape[1], dtype=np.float64)
    with _LOCK:
        _concept_partials(totals, maxima, sums)
    return ConceptPartials(maxima, sums, totals.shape[0])


def log_p_concept(parts: Sequence[ConceptPartials]) -> np.ndarray:
    """Return float64 log p(m) [C], the mean over every neuron of the blocks `parts` came from.

    One block gives exactly what a single pass over the layer gives; more blocks are rescaled to the largest
    maximum (float64 rounding only).
    """
    if not parts:
        raise ValueError("log p(m) needs the partials of at least one block of neurons")
    maxima = np.ascontiguousarray(np.stack([part.maxima for part in parts]))
    sums = np.ascontiguousarray(np.stack([part.sums for part in parts]))
    out = np.empty(maxima.shape[1], dtype=np.float64)
    with _LOCK:
        _log_p_concept(maxima, sums, sum(part.n_neurons for part in parts), out)
    return out


def pmi_scores(totals: np.ndarray, log_p: np.ndarray, lam: float) -> np.ndarray:
    """Return float32 [K_b, C] log p(m | B_k) - lam * log p(m) for a block's totals and the layer's log p(m)."""
    totals = np.ascontiguousarray(totals, dtype=np.float64)
    out = np.empty(totals.shape, dtype=np.float32)
    with _LOCK:
        _pmi(totals, float(lam), np.ascontiguousarray(log_p, dtype=np.float64), out)
    return out


def row_sums_float64(values: np.ndarray) -> np.ndarray:
    """Return the float64 sum of each row of a float32 matrix (exactly accumulated, not a float32 sum)."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    out = np.empty(values.shape[0], dtype=np.float64)
    with _LOCK:
        _row_sums(values, out)
    return out
