"""Random initialisation from a seed, the same in every process, leaving the caller's random state alone."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def seeded_init(seed: int | None) -> Iterator[None]:
    """Return a context in which the CPU generator starts from `seed` (None: unseeded), restored on exit."""
    if seed is None:
        yield
        return
    # Models are built on the CPU; seeding only its generator (not torch.manual_seed, which also reseeds
    # CUDA) lets fork_rng restore everything the block touched.
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield
