"""Entry points for worker processes started by the integration tests (multiprocessing, spawn).

Imports happen inside each function so a child loads only what it uses (torch is slow to import).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any


def claim_loop(database_url: str, worker_id: str, out: str, barrier: Any) -> None:
    """Claim and finish jobs until the queue is empty; write the claimed ids to `out` as JSON."""
    from app.jobs.queue import jobs as queue
    from app.persistence.db import create_db_engine

    engine = create_db_engine(database_url)
    claimed = []
    barrier.wait()
    while (job := queue.claim_next(engine, worker_id)) is not None:
        claimed.append(job.id)
        assert queue.finish(engine, job.id, worker_id, None)
    engine.dispose()
    Path(out).write_text(json.dumps(claimed))


def drain_queue(settings: Any, barrier: Any) -> None:
    """Run fake jobs until the queue is empty."""
    from app.jobs.queue.worker import run_worker
    from tests.support.fakes import fake_executor

    logging.basicConfig(level=logging.WARNING)
    barrier.wait()
    while run_worker(settings, once=True, executor=fake_executor, handle_signals=False):
        pass


def work_until_one_job(settings: Any, timeout_s: float) -> None:
    """Poll until one fake job has run (a stale one must first be requeued), or give up after `timeout_s`."""
    from app.jobs.queue.worker import run_worker
    from tests.support.fakes import fake_executor

    logging.basicConfig(level=logging.INFO)
    import dissect_core.data.probe  # noqa: F401  (imported by storing a run: load it before taking jobs)

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if run_worker(settings, once=True, executor=fake_executor, handle_signals=False, poll_interval=0.1):
            return
        time.sleep(0.1)
    raise SystemExit(f"no job became available within {timeout_s} s")


def work_one_job(settings: Any) -> None:
    """Run at most one fake job, with SIGTERM/SIGINT handling like `neuron-atlas worker --once`."""
    from app.jobs.queue.worker import run_worker
    from tests.support.fakes import fake_executor

    logging.basicConfig(level=logging.INFO)
    run_worker(settings, once=True, executor=fake_executor)
