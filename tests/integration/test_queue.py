"""The job queue: claim order, ownership, cancellation, stale requeue, and two processes racing on it."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.jobs.dissections import config_to_params
from app.jobs.queue import jobs as queue
from app.jobs.queue.worker import run_worker
from app.persistence.models import Job, Run, utcnow
from dissect_core.errors import DissectError
from tests.support import children
from tests.support.fakes import fake_executor, job_config, make_images, read_events

SPAWN = multiprocessing.get_context("spawn")
PROCESS_TIMEOUT_S = 120


def add_jobs(engine: Engine, n: int, probe: Path | None = None) -> list[int]:
    """Queue `n` jobs (fake-executor configs when a probe folder is given); return their ids."""
    with Session(engine) as session:
        ids = [
            queue.enqueue(session, config_to_params(job_config(probe, i)) if probe else {"n": i}).id
            for i in range(1, n + 1)
        ]
        session.commit()
    return ids


def load(engine: Engine, job_id: int) -> Job:
    """Return a fresh copy of a job."""
    job = queue.get_job(engine, job_id)
    assert job is not None
    return job


def age_heartbeat(engine: Engine, job_id: int, seconds: float) -> None:
    """Pretend the job's worker last beat `seconds` ago."""
    with Session(engine) as session, session.begin():
        session.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow() - timedelta(seconds=seconds)))


def test_claims_oldest_first_and_counts_attempts(engine: Engine) -> None:
    first, second = add_jobs(engine, 2)
    job = queue.claim_next(engine, "w1")
    assert job is not None and job.id == first
    assert (job.status, job.worker_id, job.attempts) == ("running", "w1", 1)
    assert queue.claim_next(engine, "w2").id == second
    assert queue.claim_next(engine, "w3") is None


def test_only_the_owner_may_report_or_finish(engine: Engine) -> None:
    (job_id,) = add_jobs(engine, 1)
    queue.claim_next(engine, "owner")
    assert not queue.report_progress(engine, job_id, "intruder", "x", 1, 2).owned
    assert not queue.finish(engine, job_id, "intruder", None)
    assert not queue.fail(engine, job_id, "intruder", "nope")
    signal = queue.report_progress(engine, job_id, "owner", "probe pass", 3, 10)
    assert signal.owned and not signal.cancel_requested
    job = load(engine, job_id)
    assert (job.status, job.stage, job.done, job.total) == ("running", "probe pass", 3, 10)
    assert queue.finish(engine, job_id, "owner", None)
    assert load(engine, job_id).status == "succeeded"


def test_cancel(engine: Engine) -> None:
    queued, running, done = add_jobs(engine, 3)
    # Claim the latter two: cancel the oldest first so it is not claimed.
    assert queue.cancel(engine, queued).status == "cancelled"
    assert load(engine, queued).finished_at is not None
    assert queue.claim_next(engine, "w").id == running
    assert queue.claim_next(engine, "w").id == done
    queue.finish(engine, done, "w", None)

    assert queue.cancel(engine, running).cancel_requested
    assert load(engine, running).status == "running"
    signal = queue.report_progress(engine, running, "w", "x", 1, 2)
    assert signal.owned and signal.cancel_requested
    assert queue.mark_cancelled(engine, running, "w")
    assert load(engine, running).status == "cancelled"

    assert queue.cancel(engine, queued).status == "cancelled"  # again: harmless
    with pytest.raises(DissectError, match="already succeeded"):
        queue.cancel(engine, done)
    with pytest.raises(DissectError, match="no job 999"):
        queue.cancel(engine, 999)


def test_stale_jobs_are_requeued_then_given_up(engine: Engine) -> None:
    (job_id,) = add_jobs(engine, 1)
    queue.claim_next(engine, "dead-1")
    assert queue.requeue_stale(engine, timeout_s=60, max_attempts=2) == []  # fresh heartbeat: kept
    age_heartbeat(engine, job_id, 120)
    assert queue.requeue_stale(engine, timeout_s=60, max_attempts=2) == [job_id]
    job = load(engine, job_id)
    assert (job.status, job.worker_id, job.attempts) == ("queued", None, 1)
    assert "dead-1 sent no heartbeat" in job.error

    assert queue.claim_next(engine, "dead-2").attempts == 2
    assert not queue.heartbeat(engine, job_id, "dead-1").owned  # the first worker lost it
    age_heartbeat(engine, job_id, 120)
    queue.requeue_stale(engine, timeout_s=60, max_attempts=2)
    job = load(engine, job_id)
    assert job.status == "failed" and job.error.startswith("gave up after 2 attempts")
    assert "lower batch_size" in job.error


def test_stale_job_with_cancel_request_is_cancelled(engine: Engine) -> None:
    (job_id,) = add_jobs(engine, 1)
    queue.claim_next(engine, "dead")
    queue.cancel(engine, job_id)
    age_heartbeat(engine, job_id, 120)
    queue.requeue_stale(engine, timeout_s=60, max_attempts=5)
    assert load(engine, job_id).status == "cancelled"


def test_release_does_not_count_the_attempt(engine: Engine) -> None:
    (job_id,) = add_jobs(engine, 1)
    queue.claim_next(engine, "w")
    assert queue.release(engine, job_id, "w")
    job = load(engine, job_id)
    assert (job.status, job.attempts, job.worker_id) == ("queued", 0, None)


def test_release_of_a_job_being_cancelled_cancels_it(engine: Engine) -> None:
    (job_id,) = add_jobs(engine, 1)
    queue.claim_next(engine, "w")
    queue.cancel(engine, job_id)
    assert queue.release(engine, job_id, "w")
    assert load(engine, job_id).status == "cancelled"


def test_enqueue_rejects_non_json_params(engine: Engine) -> None:
    with Session(engine) as session, pytest.raises(DissectError, match="plain JSON"):
        queue.enqueue(session, {"probe": Path("/x")})
    with Session(engine) as session, pytest.raises(DissectError, match="NaN"):
        queue.enqueue(session, {"a": float("nan")})


def test_cancel_stops_a_running_worker(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    (settings.data_dir / "behaviour.json").write_text(json.dumps({"steps": 200, "step_s": 0.05}))
    (job_id,) = add_jobs(engine, 1, make_images(tmp_path / "probe", 3) and tmp_path / "probe")
    worker = threading.Thread(
        target=run_worker, args=(settings,), kwargs={"once": True, "executor": fake_executor, "handle_signals": False}
    )
    worker.start()
    deadline = time.monotonic() + 30
    while load(engine, job_id).done < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    queue.cancel(engine, job_id)
    worker.join(timeout=30)
    assert not worker.is_alive()
    job = load(engine, job_id)
    assert job.status == "cancelled" and job.run_id is None
    assert ("stopped", "1") in read_events(settings)


def test_two_processes_claim_each_job_once(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    job_ids = add_jobs(engine, 150)
    barrier = SPAWN.Barrier(2)
    outs = [tmp_path / f"claims-{n}.json" for n in range(2)]
    processes = [
        SPAWN.Process(target=children.claim_loop, args=(settings.database_url, f"w{n}", str(out), barrier))
        for n, out in enumerate(outs)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(PROCESS_TIMEOUT_S)
        assert process.exitcode == 0
    claims = [json.loads(out.read_text()) for out in outs]
    assert sorted(claims[0] + claims[1]) == job_ids  # every job, none twice
    with Session(engine) as session:
        assert set(session.scalars(select(Job.status))) == {"succeeded"}
        assert set(session.scalars(select(Job.attempts))) == {1}


def test_two_workers_run_each_job_exactly_once(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    make_images(probe, 4)
    job_ids = add_jobs(engine, 16, probe)
    barrier = SPAWN.Barrier(2)
    processes = [SPAWN.Process(target=children.drain_queue, args=(settings, barrier)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(PROCESS_TIMEOUT_S)
        assert process.exitcode == 0

    events = read_events(settings)
    markers = [str(i) for i in range(1, len(job_ids) + 1)]
    assert sorted(marker for event, marker in events if event == "start") == sorted(markers)
    assert sorted(marker for event, marker in events if event == "stored") == sorted(markers)
    with Session(engine) as session:
        jobs = session.scalars(select(Job)).all()
        run_ids = session.scalars(select(Run.id)).all()
    assert {job.status for job in jobs} == {"succeeded"}
    assert sorted(job.run_id for job in jobs) == sorted(run_ids) and len(run_ids) == len(job_ids)
    assert len(list(settings.artifacts_dir.iterdir())) == len(job_ids)
