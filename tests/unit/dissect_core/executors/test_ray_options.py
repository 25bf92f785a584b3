"""Where the Ray executor's block tasks run the scoring kernel: on the GPUs the config asks for, never on those the
driver happens to see."""

import pytest
import torch

from dissect_core.config import DissectConfig

pytest.importorskip("ray", reason="ray is not installed; pip install 'neuron-atlas[ray]' to test the Ray executor")

from dissect_core.executors.ray_executor import block_task_options, kernel_device

BASE = {"model": "resnet18", "layers": ("layer4",), "probe": "cifar100", "executor": "ray"}


@pytest.mark.parametrize(
    ("settings", "gpus", "device"),
    [
        ({"gpus_per_actor": 1.0}, 1.0, "cuda"),
        ({"gpus_per_actor": 0.5, "device": "cuda"}, 0.5, "cuda"),
        ({"device": "cuda"}, 1.0, "cuda"),  # a CUDA device and no count: one GPU per actor
        ({"gpus_per_actor": 0.0, "device": "cpu"}, 0.0, "cpu"),
        ({}, 0.0, "cpu"),
    ],
)
def test_kernel_tasks_request_the_configs_gpus_and_run_the_kernel_there(
    settings: dict[str, object], gpus: float, device: str
) -> None:
    config = DissectConfig(**BASE, **settings)  # type: ignore[arg-type]
    assert block_task_options(config, kernel=True)["num_gpus"] == gpus
    assert block_task_options(config, kernel=False)["num_gpus"] == 0.0  # labels and evaluations: CPU work
    assert block_task_options(config, kernel=True)["num_cpus"] < 1  # fractional: never every CPU of a node
    assert kernel_device(config) == device


def test_the_drivers_own_gpu_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    config = DissectConfig(**BASE)  # type: ignore[arg-type]
    assert block_task_options(config, kernel=True)["num_gpus"] == 0.0
    assert kernel_device(config) == "cpu"
