"""The Ray executor against the single-process path: the same labels, scores, evaluation and top images with two
chunks and two neuron blocks over two nodes; the same after an actor is killed mid-run; a worker's job on the
cluster cancelled mid-run."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from sqlalchemy.orm import Session

from app.jobs.dissections import submit_dissection
from app.jobs.queue import jobs as queue
from app.jobs.queue.worker import run_worker
from app.persistence.db import write_session
from app.persistence.models import Job
from dissect_core.executors.ray_executor import RayExecutor
from dissect_core.pipeline import run_dissection
from dissect_core.results import DissectionResult
from tests.integration.ray_executor.conftest import CHUNK_IMAGES, N_BLOCKS, N_IMAGES, ray_config
from tests.support.dashboard_seed import prepare_database

pytestmark = pytest.mark.usefixtures("tiny_clip", "ray_cluster")


def assert_same_result(local: DissectionResult, distributed: DissectionResult) -> None:
    """Labels identical; scores, r and p within 1e-6; per-image rows and top images equal."""
    assert torch.equal(local.image_embeddings, distributed.image_embeddings)
    assert local.outputs is not None and distributed.outputs is not None  # a classifier: logits and its inputs
    assert torch.equal(local.outputs.logits, distributed.outputs.logits)
    assert local.outputs.classifier_inputs is not None and distributed.outputs.classifier_inputs is not None
    assert torch.equal(local.outputs.classifier_inputs, distributed.outputs.classifier_inputs)
    assert local.outputs.feeding_layer == distributed.outputs.feeding_layer
    for one, other in zip(local.layers, distributed.layers, strict=True):
        assert [n.label for n in one.neurons] == [n.label for n in other.neurons]
        assert [n.unit for n in other.neurons] == list(range(one.n_units))
        for a, b in zip(one.neurons, other.neurons, strict=True):
            assert abs(a.score - b.score) <= 1e-6
            assert a.evaluation is not None and b.evaluation is not None
            assert abs(a.evaluation.explained_r - b.evaluation.explained_r) <= 1e-6
            assert abs(a.evaluation.p_value - b.evaluation.p_value) <= 1e-6
            assert a.evaluation.explanation == b.evaluation.explanation
        assert one.evaluation is not None and other.evaluation is not None
        assert one.evaluation.null_sd == other.evaluation.null_sd  # the null runs as one task, on the same columns
        assert one.evaluation.share_reliable == other.evaluation.share_reliable
        assert torch.equal(one.activations, other.activations)
        assert torch.equal(one.top_indices, other.top_indices)
        assert [[t.image_index for t in row] for row in one.top_images] == [
            [t.image_index for t in row] for row in other.top_images
        ]
        assert one.top_maps is not None and other.top_maps is not None
        assert torch.equal(one.top_maps, other.top_maps)


def test_two_chunks_and_two_blocks_on_two_nodes_give_the_local_result(
    ray_probe: tuple[Path, Path], local_result: DissectionResult, tmp_path: Path
) -> None:
    executor = RayExecutor(ray_config(*ray_probe), chunk_images=CHUNK_IMAGES, n_blocks=N_BLOCKS)
    result = run_dissection(ray_config(*ray_probe), cache_dir=tmp_path, executor=executor)
    assert_same_result(local_result, result)
    assert sorted(executor.chunk_runs) == [0, 1]
    assert len(set(executor.chunk_nodes.values())) == 2  # one chunk on each node
    assert result.record.facts.executor is not None and result.record.facts.executor.startswith(
        "ray: 2 actors on 2 nodes"
    )
    assert local_result.record.facts.executor == "local"
    assert not any((tmp_path / "ray-shards").iterdir())  # the run's shards are gone
    # ... but for the row files the result maps (its activations and embeddings: file pages, not driver memory),
    # which live on unnamed until the result lets go of them
    mapped = Path("/proc/self/maps").read_text()
    assert f"{tmp_path}/ray-shards/" in mapped and "/rows/layer3.f32 (deleted)" in mapped
    assert "/rows/image-embeddings.f32 (deleted)" in mapped and "/rows/outputs-logits.f32 (deleted)" in mapped
    # With two images unreadable, the result's rows are still those mappings (the readable images' rows were
    # written, not every image's, so nothing picks a copy of them out on the driver)
    assert len(result.record.facts.skipped_images) == 2 and result.layers[0].activations.shape[0] == N_IMAGES
    assert maps_row_file(result.layers[0].activations, "layer3", mapped)
    assert result.outputs is not None and maps_row_file(result.outputs.logits, "outputs-logits", mapped)


def maps_row_file(rows: torch.Tensor, name: str, maps: str) -> bool:
    """Return whether `rows`' data lies in this process's mapping of the removed row file `name`."""
    for line in maps.splitlines():
        if line.endswith(f"/rows/{name}.f32 (deleted)"):
            start, end = (int(address, 16) for address in line.split()[0].split("-"))
            if start <= rows.data_ptr() < end:
                return True
    return False


def test_an_actor_killed_mid_run_reruns_its_chunk_and_changes_nothing(
    ray_probe: tuple[Path, Path], local_result: DissectionResult, tmp_path: Path
) -> None:
    # One actor over 4 chunks of 96 images: it is on a later chunk when the first is stored, and one actor (and
    # its restart) is half the start-up of two.
    config = ray_config(*ray_probe, actors=1)
    executor = RayExecutor(config, chunk_images=96, n_blocks=N_BLOCKS)
    killed: list[int] = []

    def kill_after_first_chunk() -> None:
        deadline = time.monotonic() + 600  # the models load first: minutes on a loaded 2-core machine
        while time.monotonic() < deadline:
            ran_on = executor._store.ran_on(0) if executor._store is not None else None
            if ran_on is not None:
                os.kill(ran_on["pid"], signal.SIGKILL)  # the actor is on its next chunk by now
                killed.append(ran_on["pid"])
                return
            time.sleep(0.01)

    killer = threading.Thread(target=kill_after_first_chunk)
    killer.start()
    result = run_dissection(config, cache_dir=tmp_path, executor=executor)
    killer.join()
    assert killed, "no chunk finished within 10 minutes, so no actor was killed"
    n_chunks = -(-N_IMAGES // 96)
    assert sorted(executor.chunk_runs) == list(range(n_chunks))  # every chunk counted exactly once
    assert_same_result(local_result, result)


def test_a_worker_runs_its_job_on_the_cluster_and_a_cancel_stops_it(
    ray_probe: tuple[Path, Path], tmp_path: Path
) -> None:
    settings, engine = prepare_database(tmp_path / "data")
    settings = replace(settings, heartbeat_interval_s=0.2)  # the worker learns of the cancel at its next beat
    with write_session(engine) as session:
        job_id = submit_dissection(session, ray_config(*ray_probe, actors=None))
    stages: list[str] = []

    def cancel_once_on_the_cluster() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            job = queue.get_job(engine, job_id)
            if job is not None and job.stage:
                stages.append(job.stage)
                if job.stage.startswith("probe pass (ray"):
                    queue.cancel(engine, job_id)
                    return
            time.sleep(0.02)

    canceller = threading.Thread(target=cancel_once_on_the_cluster)
    canceller.start()
    execution = {"executor": "ray", "actors": 2}
    assert run_worker(settings, once=True, handle_signals=False, execution=execution) == 1
    canceller.join()
    with Session(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None and (job.status, job.run_id) == ("cancelled", None)
    assert "executor" not in job.params  # the worker chose it; the job's settings do not say
    assert ray_cluster_is_still_up()
    shards = settings.cache_dir / "ray-shards"
    assert not shards.exists() or not any(shards.iterdir())


def ray_cluster_is_still_up() -> bool:
    """Return whether this session's Ray connection survived the job (the executor did not start it, so it must not
    shut it down)."""
    import ray

    return ray.is_initialized() and ray.cluster_resources().get("CPU", 0) == 2
