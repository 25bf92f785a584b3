import math

import torch

from dissect_core.evaluation.significance import benjamini_hochberg, correlation_null_sd, one_sided_p_values


def test_benjamini_hochberg_hand_computed():
    # m = 5, q = 0.05: thresholds 0.01, 0.02, 0.03, 0.04, 0.05; the largest p_(k) <= kq/m is p_(3) = 0.025
    # (p_(4) = 0.045 > 0.04)
    p = torch.tensor([0.045, 0.001, 0.6, 0.025, 0.019])
    assert benjamini_hochberg(p, 0.05).tolist() == [False, True, False, True, True]


def test_benjamini_hochberg_rejects_nothing_when_nothing_passes():
    assert not benjamini_hochberg(torch.tensor([0.2, 0.5, 0.9])).any()
    assert benjamini_hochberg(torch.tensor([])).numel() == 0


def test_p_values_are_one_sided_fisher_z():
    p = one_sided_p_values(torch.tensor([0.0, 0.1, -0.1, 0.5]), 103)
    assert math.isclose(float(p[0]), 0.5, abs_tol=1e-12)
    z = math.atanh(0.1) * math.sqrt(100)
    assert math.isclose(float(p[1]), 0.5 * math.erfc(z / math.sqrt(2)), rel_tol=1e-6)
    assert math.isclose(float(p[1] + p[2]), 1.0, rel_tol=1e-9)
    assert float(p[3]) < 1e-6
    assert correlation_null_sd(103) == 0.1


def test_p_values_of_independent_columns_are_uniform():
    generator = torch.Generator().manual_seed(3)
    n, k = 200, 4000
    x, y = torch.randn(n, k, generator=generator), torch.randn(n, k, generator=generator).exp()  # skewed
    x, y = x - x.mean(0), y - y.mean(0)
    r = (x * y).sum(0) / (x.norm(dim=0) * y.norm(dim=0))
    p = one_sided_p_values(r, n)
    for level in (0.01, 0.05, 0.2, 0.5):
        assert abs(float((p < level).double().mean()) - level) < 0.02 + level * 0.15
