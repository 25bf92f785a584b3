"""The Ray executor's factored cosines: unit image rows written to the store in parts and mapped there, by the
driver and by the block tasks, equal to the single process's normalised in memory (no cluster needed)."""

from pathlib import Path

import pytest
import torch

from dissect_core.config import DissectConfig
from dissect_core.executors.store import ShardStore
from dissect_core.similarity.cosine import FactoredCosine
from dissect_core.stages import scoring
from dissect_core.stages.partition import neuron_blocks
from dissect_core.stages.scoring import layer_cosines

pytest.importorskip("ray", reason="ray is not installed; pip install 'neuron-atlas[ray]' to test the Ray executor")

from dissect_core.executors.ray_executor import RayExecutor


def test_factored_cosines_read_mapped_unit_rows_on_the_driver_and_in_the_block_tasks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scoring, "DEFAULT_MEMORY_BUDGET_BYTES", 0)  # the dense matrix never fits: factored
    generator = torch.Generator().manual_seed(3)
    images, texts = torch.randn(500, 24, generator=generator), torch.randn(30, 24, generator=generator)
    config = DissectConfig(model="resnet18", layers=("layer4",), probe="cifar100", executor="ray")
    executor = RayExecutor(config, n_blocks=2)
    executor._store = ShardStore(tmp_path)
    driver = executor.cosines(images, texts)
    single_process = layer_cosines(images, texts)
    assert isinstance(driver, FactoredCosine) and isinstance(single_process, FactoredCosine)
    assert torch.equal(driver.image_embeddings, single_process.image_embeddings)
    assert f"{tmp_path}/rows/unit-image-embeddings.f32" in Path("/proc/self/maps").read_text()  # mapped, not copied
    activations = torch.randn(500, 6, generator=generator)
    inputs, _ = executor._layer_inputs("layer4", activations, images, texts, "soft_wpmi", {"top_k": 5})
    task = inputs.cosines()
    assert inputs.unit_rows and isinstance(task, FactoredCosine)
    assert torch.equal(task.image_embeddings, single_process.image_embeddings)
    assert torch.equal(inputs.columns(neuron_blocks(6, 2)[1]), activations[:, 3:])
