"""check_spec: hostile requests are refused with the fix named; good ones come back sorted and deduplicated."""

from __future__ import annotations

import math

import pytest

from dissect_core.errors import DissectError
from dissect_core.interventions.modes import MAX_INTERVENTION_UNITS, MAX_SCALE_FACTOR, InterventionSpec, check_spec

LAYERS = {"blocks.5": 320, "conv_head": 1280}


def test_units_are_sorted_and_deduplicated_and_the_factor_becomes_a_float():
    checked = check_spec(InterventionSpec("conv_head", (705, 3, 705, 0), "scale", 3), LAYERS)
    assert checked == InterventionSpec("conv_head", (0, 3, 705), "scale", 3.0)
    assert isinstance(checked.factor, float)
    assert check_spec(InterventionSpec("blocks.5", (319,), "zero"), LAYERS).factor is None


@pytest.mark.parametrize(
    ("spec", "problem", "fix"),
    [
        (InterventionSpec("conv_hed", (1,), "zero"), "no dissected layer 'conv_hed'", "blocks.5, conv_head"),
        (InterventionSpec("conv_head", (1280,), "zero"), "unit 1280 is out of range", "0..1279"),
        (InterventionSpec("conv_head", (-1,), "zero"), "unit -1 is out of range", "0..1279"),
        (InterventionSpec("conv_head", (), "zero"), "non-empty list", "0..1279"),
        (InterventionSpec("conv_head", (1.5,), "zero"), "whole numbers", "0..1279"),  # type: ignore[arg-type]
        (InterventionSpec("conv_head", (True,), "zero"), "whole numbers", "0..1279"),
        (InterventionSpec("conv_head", tuple(range(10_000)), "zero"), "10000 units", "split them"),
        (InterventionSpec("conv_head", (1,), "ablate"), "unknown intervention mode 'ablate'", "zero, mean, scale"),  # type: ignore[arg-type]
        (InterventionSpec("conv_head", (1,), "scale", 1e30), "out of bounds", f"|factor| <= {MAX_SCALE_FACTOR:g}"),
        (InterventionSpec("conv_head", (1,), "scale", -1e4), "out of bounds", "finite number"),
        (InterventionSpec("conv_head", (1,), "scale", math.nan), "out of bounds", "finite number"),
        (InterventionSpec("conv_head", (1,), "scale", math.inf), "out of bounds", "finite number"),
        (InterventionSpec("conv_head", (1,), "scale", None), "needs a factor", "e.g. 0.5 or 3"),
        (InterventionSpec("conv_head", (1,), "scale", "3"), "must be a number", "e.g. 0.5"),  # type: ignore[arg-type]
        (InterventionSpec("conv_head", (1,), "zero", 2.0), "only to mode 'scale'", "leave it out"),
        (InterventionSpec("conv_head", (1,), "mean", 1.0), "only to mode 'scale'", "leave it out"),
    ],
)
def test_hostile_requests_are_refused_naming_the_fix(spec, problem, fix):
    with pytest.raises(DissectError) as raised:
        check_spec(spec, LAYERS)
    assert problem in str(raised.value)
    assert fix in str(raised.value)


def test_the_unit_bound_counts_distinct_units():
    repeated = InterventionSpec("conv_head", (7,) * (MAX_INTERVENTION_UNITS + 5), "zero")
    assert check_spec(repeated, LAYERS).units == (7,)
    with pytest.raises(DissectError, match=f"more than the {MAX_INTERVENTION_UNITS} allowed"):
        check_spec(InterventionSpec("conv_head", tuple(range(MAX_INTERVENTION_UNITS + 1)), "zero"), LAYERS)
    widest = InterventionSpec("conv_head", tuple(range(MAX_INTERVENTION_UNITS)), "zero")
    assert len(check_spec(widest, LAYERS).units) == MAX_INTERVENTION_UNITS
