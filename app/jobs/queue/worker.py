"""The job worker: claims queued jobs, runs them with heartbeats and progress, records the outcome.

Dissections run through the executor; every other kind through its handler (app.jobs.queue.kinds).

Tests and tools can swap what a job does through `run_worker(executor=...)`: any JobExecutor, i.e. a callable
with the signature of `app.jobs.dissections.execute_dissection` returning a StoredDissection.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from app.core.config import Settings
from app.jobs.dissections import StoredDissection, config_from_params, execute_dissection
from app.jobs.queue import jobs as queue
from app.jobs.queue.kinds import DISSECT_JOB, handler_for
from app.persistence import cleanup
from app.persistence.db import create_db_engine
from app.persistence.models import Job
from app.persistence.store import BeforeCommit
from dissect_core.config import DissectConfig
from dissect_core.errors import DissectError
from dissect_core.progress import Progress

log = logging.getLogger(__name__)
# Progress reports are written at most this often (plus on every stage change) to spare the database.
PROGRESS_WRITE_INTERVAL_S = 0.5
STOP_CANCEL = "cancel"
STOP_LOST = "lost"
STOP_SHUTDOWN = "shutdown"


class JobExecutor(Protocol):
    """What a worker calls to run one job (execute_dissection, or a test's stand-in)."""

    def __call__(
        self,
        settings: Settings,
        config: DissectConfig,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
        *,
        engine: Engine | None = None,
        before_commit: BeforeCommit | None = None,
        target_model_id: int | None = None,
    ) -> StoredDissection:
        """Run the job's dissection (its config checked) and store it, the run joining the model row
        `target_model_id` when given; return the result with its run id."""


def default_worker_id() -> str:
    """Return an id unique to this process: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def run_worker(
    settings: Settings,
    *,
    worker_id: str | None = None,
    once: bool = False,
    poll_interval: float = 1.0,
    executor: JobExecutor | None = None,
    handle_signals: bool = True,
    execution: Mapping[str, Any] | None = None,
) -> int:
    """Process queued jobs until SIGTERM/SIGINT (or after one job with `once`); return how many ran.

    `execution`: where this worker runs each dissection (`dissect_core.config.EXECUTION_SETTINGS`, e.g.
    {"executor": "ray"}), put into every claimed job's config; it changes no result.

    On SIGTERM the running job stops at its next progress report and goes back to the queue (the
    attempt is not counted), then the worker exits; a job already storing its run completes first.
    """
    worker_id = worker_id or default_worker_id()
    shutdown = threading.Event()
    engine = create_db_engine(settings.database_url)
    processed = 0
    log.info("worker %s polling %s", worker_id, engine.url.render_as_string(hide_password=True))
    _remove_orphans(engine, settings)
    with _signals_set(shutdown, enabled=handle_signals):
        try:
            while not shutdown.is_set():
                job = _next_job(engine, settings, worker_id)
                if job is None:
                    if once:
                        break
                    shutdown.wait(poll_interval)
                    continue
                _JobRun(engine, settings, job, worker_id, shutdown, execution).run(executor or execute_dissection)
                processed += 1
                if once:
                    break
        finally:
            engine.dispose()
    log.info("worker %s stopped after %d job(s)", worker_id, processed)
    return processed


def _remove_orphans(engine: Engine, settings: Settings) -> None:
    """Remove artifacts folders no run references (left by a worker killed while storing), and the folders of
    uploads interrupted while unpacked."""
    orphans = cleanup.find_removable(engine, settings, orphans_only=True)
    cleanup.remove(orphans)
    for path in orphans.paths:
        log.info("removed %s: nothing references it (a store or an upload was interrupted)", path)


def _next_job(engine: Engine, settings: Settings, worker_id: str) -> Job | None:
    try:
        for job_id in queue.requeue_stale(engine, settings.stale_timeout_s, settings.max_attempts):
            log.warning("job %d had no heartbeat for %g s; requeued or given up", job_id, settings.stale_timeout_s)
        return queue.claim_next(engine, worker_id)
    except OperationalError as error:
        # The database may be restarting; keep polling rather than dying.
        log.warning("database unavailable (%s); retrying", error.orig or error)
        return None


@contextmanager
def _signals_set(shutdown: threading.Event, *, enabled: bool) -> Iterator[None]:
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum: int, _frame: object) -> None:
        log.info("received %s: stopping after giving the running job back", signal.Signals(signum).name)
        shutdown.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _JobRun:
    """One claimed job: its heartbeat thread, progress reports and stop reason."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        job: Job,
        worker_id: str,
        shutdown: threading.Event,
        execution: Mapping[str, Any] | None = None,
    ) -> None:
        self.engine = engine
        self.execution = dict(execution or {})
        self.settings = settings
        self.job = job
        self.worker_id = worker_id
        self.shutdown = shutdown
        self.stop_reason: str | None = None
        self.finished = threading.Event()
        self.last_write = 0.0
        self.last_stage: str | None = None

    def should_stop(self) -> bool:
        """True once the job was cancelled, lost to another worker, or the worker is shutting down."""
        if self.stop_reason is None and self.shutdown.is_set():
            self.stop_reason = STOP_SHUTDOWN
        return self.stop_reason is not None

    def progress(self, stage: str, done: int, total: int) -> None:
        """Record progress (throttled) and learn about cancellation."""
        now = time.monotonic()
        if stage == self.last_stage and done < total and now - self.last_write < PROGRESS_WRITE_INTERVAL_S:
            return
        self.last_stage, self.last_write = stage, now
        try:
            signal_ = queue.report_progress(self.engine, self.job.id, self.worker_id, stage, done, total)
        except OperationalError as error:
            log.warning("job %d: could not record progress (%s)", self.job.id, error.orig or error)
            return
        self._note(signal_)

    def _note(self, signal_: queue.JobSignal) -> None:
        if not signal_.owned:
            self.stop_reason = self.stop_reason or STOP_LOST
        elif signal_.cancel_requested:
            self.stop_reason = self.stop_reason or STOP_CANCEL

    def _beat(self) -> None:
        while not self.finished.wait(self.settings.heartbeat_interval_s):
            try:
                self._note(queue.heartbeat(self.engine, self.job.id, self.worker_id))
            except Exception as error:  # a missed beat is survivable; the thread must not die
                log.warning("job %d: heartbeat failed (%s)", self.job.id, error)

    def run(self, executor: JobExecutor) -> None:
        """Run the job to an outcome: succeeded, failed, cancelled, given back, or abandoned if lost."""
        job_id = self.job.id
        log.info("job %d: attempt %d on worker %s", job_id, self.job.attempts, self.worker_id)
        beater = threading.Thread(target=self._beat, name=f"heartbeat-{job_id}", daemon=True)
        beater.start()
        try:
            if self.job.kind != DISSECT_JOB:
                handler_for(self.job.kind)(self.engine, self.settings, self.job, self.progress, self.should_stop)
                log.info("job %d: %s succeeded", job_id, self.job.kind)
                return
            config = config_from_params({**self.job.params, **self.execution}, self.settings.data_dir)  # one check
            before_commit = partial(_complete, job_id=job_id, worker_id=self.worker_id)
            run_id = executor(
                self.settings,
                config,
                self.progress,
                self.should_stop,
                engine=self.engine,
                before_commit=before_commit,
                target_model_id=self.job.target_model_id,
            ).run_id
        except Exception as error:
            self._record_failure(error)
        else:
            if queue.finish(self.engine, job_id, self.worker_id, run_id):
                log.info("job %d: succeeded as run %s", job_id, run_id)
            else:
                log.warning("job %d: finished but no longer ours; run %s kept", job_id, run_id)
        finally:
            self.finished.set()
            beater.join()

    def _record_failure(self, error: Exception) -> None:
        job_id, worker_id = self.job.id, self.worker_id
        self.should_stop()
        if isinstance(error, queue.JobLost) or self.stop_reason == STOP_LOST:
            log.warning("job %d: taken over by another worker; result discarded", job_id)
        elif self.stop_reason == STOP_CANCEL:
            queue.mark_cancelled(self.engine, job_id, worker_id)
            log.info("job %d: cancelled", job_id)
        elif self.stop_reason == STOP_SHUTDOWN:
            queue.release(self.engine, job_id, worker_id)
            log.info("job %d: given back to the queue (worker shutting down)", job_id)
        elif isinstance(error, DissectError):
            queue.fail(self.engine, job_id, worker_id, str(error))
            log.info("job %d: failed: %s", job_id, error)
        else:
            log.exception("job %d: crashed", job_id)
            message = f"internal error ({type(error).__name__}: {error}); see the worker's log and report it"
            queue.fail(self.engine, job_id, worker_id, message)


def _complete(session: Any, run_id: int, *, job_id: int, worker_id: str) -> None:
    queue.complete_in_session(session, job_id, worker_id, run_id)
