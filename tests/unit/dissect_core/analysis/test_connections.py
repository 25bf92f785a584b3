"""strongest_links: each unit's strongest inputs and outputs by |weight|, ties to the lower unit index."""

from __future__ import annotations

import pytest
import torch

from dissect_core.analysis.connections import strongest_links
from dissect_core.errors import DissectError


def test_links_rank_by_magnitude_keep_sign_and_break_ties_by_lower_unit():
    weights = torch.tensor([[0.5, -0.9, 0.5, 0.1], [0.0, 0.2, -0.2, 0.3]])  # [2 downstream, 4 upstream]
    inputs, outputs = strongest_links(weights, k=3)
    assert inputs.of(0) == [(1, pytest.approx(-0.9)), (0, 0.5), (2, 0.5)]
    assert inputs.of(1) == [(3, pytest.approx(0.3)), (1, pytest.approx(0.2)), (2, pytest.approx(-0.2))]
    assert outputs.of(1) == [(0, pytest.approx(-0.9)), (1, pytest.approx(0.2))]  # k capped at 2 downstream units
    assert outputs.units.shape == (4, 2)


def test_links_refuse_a_matrix_that_is_not_two_dimensional():
    with pytest.raises(DissectError, match="K_to, K_from"):
        strongest_links(torch.zeros(3))
