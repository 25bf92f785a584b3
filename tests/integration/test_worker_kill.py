"""Workers dying or being stopped mid-job: the job is run again elsewhere, nothing is lost or duplicated.

The workers are real OS processes running the fake executor (tests/integration/fakes.py), injected through
`run_worker(executor=...)`; it steps slowly with progress reports, then stores a small real run.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.jobs.dissections import config_to_params
from app.jobs.queue import jobs as queue
from app.jobs.queue.worker import run_worker
from app.persistence.models import Job, Run
from tests.support import children
from tests.support.fakes import fake_executor, job_config, make_images, read_events

SPAWN = multiprocessing.get_context("spawn")
STARTUP_TIMEOUT_S = 90


def queue_one_job(engine: Engine, tmp_path: Path) -> int:
    """Queue one fake job over a small probe folder; return its id."""
    make_images(tmp_path / "probe", 3)
    with Session(engine) as session:
        job = queue.enqueue(session, config_to_params(job_config(tmp_path / "probe", 1)))
        session.commit()
        return job.id


def wait_until_running(engine: Engine, job_id: int) -> Job:
    """Wait until a worker has claimed the job and reported progress; return the job."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        job = queue.get_job(engine, job_id)
        if job is not None and job.status == "running" and job.stage == "fake":
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never started running")


def test_killed_worker_job_is_finished_by_another(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    (settings.data_dir / "behaviour.json").write_text(json.dumps({"steps": 20, "step_s": 0.1}))
    job_id = queue_one_job(engine, tmp_path)
    workers = [SPAWN.Process(target=children.work_until_one_job, args=(settings, 120)) for _ in range(2)]
    for worker in workers:
        worker.start()

    victim_pid = int(wait_until_running(engine, job_id).worker_id.split(":")[1])
    (victim,) = [worker for worker in workers if worker.pid == victim_pid]
    os.kill(victim_pid, signal.SIGKILL)
    victim.join(10)
    (survivor,) = [worker for worker in workers if worker is not victim]
    survivor.join(STARTUP_TIMEOUT_S)
    assert survivor.exitcode == 0

    job = queue.get_job(engine, job_id)
    assert job.status == "succeeded" and job.attempts == 2
    assert job.worker_id.split(":")[1] == str(survivor.pid)
    events = read_events(settings)
    assert [event for event, _ in events] == ["start", "start", "stored"]
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Run)) == 1
        assert session.scalar(select(Run.id)) == job.run_id
    assert len(list(settings.artifacts_dir.iterdir())) == 1


def test_sigterm_gives_the_job_back(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    (settings.data_dir / "behaviour.json").write_text(json.dumps({"steps": 600, "step_s": 0.05}))
    job_id = queue_one_job(engine, tmp_path)
    worker = SPAWN.Process(target=children.work_one_job, args=(settings,))
    worker.start()
    wait_until_running(engine, job_id)
    worker.terminate()  # SIGTERM
    worker.join(15)
    assert worker.exitcode == 0

    job = queue.get_job(engine, job_id)
    assert (job.status, job.attempts, job.worker_id) == ("queued", 0, None)
    assert "shut down" in job.error
    assert ("stopped", "1") in read_events(settings)

    (settings.data_dir / "behaviour.json").write_text(json.dumps({}))
    assert run_worker(settings, once=True, executor=fake_executor, handle_signals=False) == 1
    job = queue.get_job(engine, job_id)
    assert (job.status, job.attempts, job.error) == ("succeeded", 1, None)
