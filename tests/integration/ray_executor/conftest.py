"""One Ray session for every Ray test: a two-node `ray.cluster_utils.Cluster` (a head and a worker "node" with one
CPU each, on this machine), a seeded random ResNet-18 seen at 32 x 32 pixels and 300 small probe images.

The tests skip with a message when ray is not installed (`pip install 'neuron-atlas[ray]'`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dissect_core.config import DissectConfig
from dissect_core.pipeline import run_dissection
from dissect_core.results import DissectionResult
from tests.conftest import TINY_CLIP, make_probe_folder

ray = pytest.importorskip(
    "ray", reason="ray is not installed; pip install 'neuron-atlas[ray]' to test the Ray executor"
)

REPOSITORY = Path(__file__).resolve().parents[3]
N_IMAGES = 300
#: Two chunks of the 300 images: 160 (5 batches of 32) and 140.
CHUNK_IMAGES = 160
N_BLOCKS = 2
#: Ray settings for the test cluster: idle workers stay up (up to 8) for the whole session.
KEEP_IDLE_WORKERS = {"num_workers_soft_limit": 8, "idle_worker_killing_time_threshold_ms": 3_600_000}


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A head and one worker node, one CPU each, joined by this process for the whole test session."""
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_raylet_start_wait_time_s", "120")  # a node starts in ~7 s here, far slower under load
    # Every Ray worker process imports torch (seconds, tens of seconds under load): keep the idle ones for the
    # session's later runs instead of Ray's default of ending them a second after their task.
    head = {"num_cpus": 1, "include_dashboard": False, "_system_config": KEEP_IDLE_WORKERS}
    cluster = Cluster(initialize_head=True, head_node_args=head)
    cluster.add_node(num_cpus=1)
    runtime_env = {
        "worker_process_setup_hook": "tests.integration.ray_executor.worker_setup.register_tiny_clip",
        "env_vars": {"PYTHONPATH": str(REPOSITORY), "RAY_USAGE_STATS_ENABLED": "0"},
    }
    ray.init(address=cluster.address, runtime_env=runtime_env, log_to_driver=False)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.fixture(scope="session")
def ray_probe(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """300 random 48 x 40 images in two sub-folders with an unreadable file in each (the first image of the first
    chunk, the last of the second), and a file of 12 concepts."""
    root = tmp_path_factory.mktemp("ray-probe")
    probe = make_probe_folder(root / "probe", n_images=N_IMAGES, seed=3)
    for unreadable in ("dots/a_broken.png", "stripes/z_broken.png"):
        (probe / unreadable).write_bytes(b"not an image")
    concepts = root / "concepts.txt"
    concepts.write_text("cat\ndog\nstriped\ndotted\ncar\nsky\nwater\ngrass\nred\nblue\nstone\ntree\n")
    return probe, concepts


@pytest.fixture(scope="session")
def local_result(ray_probe: tuple[Path, Path], tiny_clip: str) -> DissectionResult:
    """The single-process run every Ray run is compared with."""
    return run_dissection(ray_config(*ray_probe))


def ray_config(probe: Path, concepts: Path, **changes: Any) -> DissectConfig:
    """Return the tests' config: a seeded random ResNet-18's layer3 (256 units) at 32 x 32 pixels, on the CPU."""
    values: dict[str, Any] = {
        "model": "resnet18",
        "weights": "none@7",
        "layers": ("layer3",),
        "probe": str(probe),
        "concepts": str(concepts),
        "encoder": TINY_CLIP,
        "preprocessing": {"resize": 32, "crop": 32},
        "batch_size": 32,
        "device": "cpu",
        "actors": 2,
    }
    return DissectConfig(**{**values, **changes})
