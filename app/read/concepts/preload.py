"""Concept search made ready before the first typed concept: a run's text encoder and artifacts are loaded on a
background thread when one of the run's pages is opened and, at start, for the newest runs.

Loading an encoder and a run's tensors takes seconds; scoring a concept with them loaded, tens of milliseconds.
The loads go through the `ConceptSearcher`'s own caches (each value loads once, even when a typed concept asks
for it mid-load: that query waits for the load in progress instead of starting another). Requests only queue
work: they never wait for it, and nothing the thread meets reaches them (a run that cannot be scored is told
when a concept is typed, as before).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.errors import AtlasError
from app.persistence.models import Run
from app.read.concepts.search import ConceptSearcher, run_scoring
from app.read.layers.queries import get_layer
from app.read.runs.queries import get_run

log = logging.getLogger(__name__)

#: Loads waiting at most; a request beyond them is dropped (the typed concept then loads what it needs).
MAX_QUEUED = 16

Task = Callable[[], None]


class RunPreloader:
    """Loads runs' text encoders and concept-search artifacts on one background thread, started on first use."""

    def __init__(self, sessions: Callable[[], Session], searcher: ConceptSearcher, *, enabled: bool = True) -> None:
        self._sessions = sessions
        self._searcher = searcher
        self.enabled = enabled
        self._queue: queue.Queue[Task | None] = queue.Queue(MAX_QUEUED)
        self._pending: set[tuple[int, str | None]] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def request(self, run_id: int, layer: str | None = None) -> None:
        """Queue loading what typing a concept on the run (and its layer) needs; return at once."""
        key = (run_id, layer)
        with self._lock:
            if key in self._pending or not self._queue_task(lambda: self._warm_once(key)):
                return
            self._pending.add(key)

    def request_newest(self, count: int) -> None:
        """Queue loading the newest `count` runs (the newest loaded last, so it is the last evicted)."""
        if count > 0:
            with self._lock:
                self._queue_task(lambda: self._warm_newest(count))

    def close(self) -> None:
        """Stop taking work and let the thread end after the load in progress (it is not waited for)."""
        with self._lock:
            self._closed = True
            if self._thread is not None:
                self._put(None)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Return once every queued load has finished (True), or False after `timeout` seconds; for tests."""
        done = threading.Event()
        with self._lock:
            if self._thread is None:
                return True
            if not self._put(done.set):
                return False
        return done.wait(timeout)

    def _queue_task(self, task: Task) -> bool:
        """Queue a task, starting the thread on first use; return False when preloading is off, closed or full."""
        if not self.enabled or self._closed:
            return False
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="concept-preload", daemon=True)
            self._thread.start()
        return self._put(task)

    def _put(self, task: Task | None) -> bool:
        try:
            self._queue.put_nowait(task)
        except queue.Full:
            return False
        return True

    def _work(self) -> None:
        """Run queued tasks until closed; a task's failure is logged and never ends the thread."""
        while not self._closed and (task := self._queue.get()) is not None:
            try:
                task()
            except Exception:  # never fatal: the query that needs the load will try it again and tell why
                log.warning("preloading concept search failed", exc_info=True)

    def _warm_once(self, key: tuple[int, str | None]) -> None:
        try:
            self._warm(*key)
        finally:
            with self._lock:
                self._pending.discard(key)

    def _warm(self, run_id: int, layer: str | None) -> None:
        """Load the run's encoder and artifacts, and the layer's top images, into the searcher's caches."""
        with self._sessions() as session:
            try:
                scoring = run_scoring(get_run(session, run_id))
                if layer is not None:
                    get_layer(session, run_id, layer)  # a stored layer's name, never a path taken from the URL
            except AtlasError:  # the run was deleted meanwhile, or never had that layer
                return
        try:
            self._searcher.warm(scoring, layer)
        except AtlasError as error:  # no artifacts, or an encoder that cannot load: told when a concept is typed
            log.info("run %s cannot be preloaded for concept search: %s", run_id, error)

    def _warm_newest(self, count: int) -> None:
        with self._sessions() as session:
            newest = session.scalars(select(Run.id).order_by(Run.created_at.desc(), Run.id.desc()).limit(count))
            run_ids = list(newest)
        for run_id in reversed(run_ids):
            if self._closed:
                return
            self._warm(run_id, None)
