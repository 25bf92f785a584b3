"""What an intervention asks for (a layer, its units, a mode and a factor), its bounds, and the one check of it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Literal

from dissect_core.errors import DissectError

InterventionMode = Literal["zero", "mean", "scale"]
#: zero: the unit's output map set to 0; mean: set to its mean map over the probe set; scale: multiplied by a factor.
INTERVENTION_MODES: tuple[str, ...] = ("zero", "mean", "scale")
#: The most probe images one intervention runs over; a larger probe set is sampled (see `sample_images`).
DEFAULT_MAX_INTERVENTION_IMAGES = 2000
#: The most units one intervention may change at once; a longer list is refused.
MAX_INTERVENTION_UNITS = 256
#: The largest |factor| `scale` accepts (beyond it float32 activations overflow to inf in a few layers).
MAX_SCALE_FACTOR = 1000.0


@dataclass(frozen=True)
class InterventionSpec:
    """One intervention: `mode` applied to `units` of the dissected `layer`; `factor` only for `scale`."""

    layer: str
    units: tuple[int, ...]
    mode: InterventionMode
    factor: float | None = None


def checked_factor(mode: str, factor: object) -> float | None:
    """Return the factor of an intervention in `mode` as a float (None unless `scale`), or raise naming the modes
    or the factor's bounds."""
    if mode not in INTERVENTION_MODES:
        raise DissectError(f"unknown intervention mode {mode!r}; use one of {', '.join(INTERVENTION_MODES)}")
    if mode != "scale":
        if factor is not None:
            raise DissectError(f"factor applies only to mode 'scale'; leave it out for mode {mode!r}")
        return None
    if factor is None:
        raise DissectError(f"mode 'scale' needs a factor, e.g. 0.5 or 3, with |factor| <= {MAX_SCALE_FACTOR:g}")
    if isinstance(factor, bool) or not isinstance(factor, int | float):
        raise DissectError(f"factor must be a number, got {type(factor).__name__}; pass e.g. 0.5 or 3")
    value = float(factor)
    if not math.isfinite(value) or abs(value) > MAX_SCALE_FACTOR:
        raise DissectError(
            f"factor {factor!r} is out of bounds; pass a finite number with |factor| <= {MAX_SCALE_FACTOR:g}"
        )
    return value


def _checked_units(layer: str, units: object, n_units: int) -> tuple[int, ...]:
    """Return the units sorted without duplicates, or raise naming the layer's unit range."""
    if not isinstance(units, tuple | list) or not units:
        raise DissectError(f"give the units to change as a non-empty list of integers in 0..{n_units - 1}")
    if any(isinstance(unit, bool) or not isinstance(unit, int) for unit in units):
        raise DissectError(f"units must be whole numbers in 0..{n_units - 1} (layer {layer}); got {list(units)[:5]}")
    distinct = tuple(sorted(set(units)))
    if len(distinct) > MAX_INTERVENTION_UNITS:
        raise DissectError(
            f"{len(distinct)} units in one intervention is more than the {MAX_INTERVENTION_UNITS} allowed; "
            "split them into several requests, or sweep the layer one unit at a time"
        )
    outside = [unit for unit in distinct if not 0 <= unit < n_units]
    if outside:
        raise DissectError(
            f"unit {outside[0]} is out of range for layer {layer} ({n_units} units); use units 0..{n_units - 1}"
        )
    return distinct


def check_spec(spec: InterventionSpec, layer_units: Mapping[str, int]) -> InterventionSpec:
    """Return `spec` with its units sorted and deduplicated and its factor a float, or raise DissectError.

    `layer_units` maps each dissected layer to its number of units. A factor is required for `scale` and refused
    for `zero` and `mean` (rather than silently ignored, so a request means exactly what it says).
    """
    factor = checked_factor(spec.mode, spec.factor)
    if spec.layer not in layer_units:
        raise DissectError(
            f"the run has no dissected layer {spec.layer!r}; choose one of {', '.join(layer_units) or '(none)'}"
        )
    units = _checked_units(spec.layer, spec.units, layer_units[spec.layer])
    return replace(spec, units=units, factor=factor)
