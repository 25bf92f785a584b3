"""How many processes decode probe images beside the forward passes."""

from __future__ import annotations

from types import SimpleNamespace

from torch import nn

from dissect_core.probe_pass import loader_workers


def test_workers_only_where_they_do_not_take_cores_from_the_forward_passes():
    cpu_target = SimpleNamespace(model=nn.Linear(2, 2))
    assert loader_workers(cpu_target, 1000, 32, cpu_count=2) == 0  # 2 cores: the forwards use both
    assert loader_workers(cpu_target, 1000, 32, cpu_count=16) == 2
    assert loader_workers(cpu_target, 100, 32, cpu_count=16) == 0  # a few batches: starting workers costs more
    meta_target = SimpleNamespace(model=nn.Linear(2, 2, device="meta"))  # any non-CPU device, as a GPU
    assert loader_workers(meta_target, 1000, 32, cpu_count=16) == 8
    assert loader_workers(meta_target, 1000, 32, cpu_count=2) == 1
