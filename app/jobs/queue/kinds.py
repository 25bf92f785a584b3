"""What a worker does for each kind of job besides dissections: kind name -> handler.

A handler runs the job, stores its own result and marks the job succeeded in the same transaction, conditional on
the worker still owning it (`app.jobs.queue.jobs.succeed_in_session`). It reports progress through `progress` and
stops when `should_stop()` says so by raising; the worker records failures, cancellations and shutdowns alike for
every kind. Dissections ("dissect", the default kind) run through the worker's executor instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Protocol

from sqlalchemy import Engine

from app.core.config import Settings
from app.jobs.interventions import INTERVENTION_JOB, SWEEP_JOB, run_intervention_job, run_sweep_job
from app.jobs.run_images import IMAGE_JOB, run_image_job
from app.persistence.models import Job
from dissect_core.errors import DissectError
from dissect_core.progress import Progress

#: The kind of a dissection job (relabels and uploads are dissections too).
DISSECT_JOB = "dissect"


class JobHandler(Protocol):
    """Runs one claimed job of its kind to its stored result (see the module's docstring)."""

    def __call__(
        self, engine: Engine, settings: Settings, job: Job, progress: Progress, should_stop: Callable[[], bool]
    ) -> None:
        """Run the job and store its result, completing the job in the storing transaction."""


#: The handlers of every kind a worker runs besides dissections.
JOB_HANDLERS: Mapping[str, JobHandler] = MappingProxyType(
    {INTERVENTION_JOB: run_intervention_job, SWEEP_JOB: run_sweep_job, IMAGE_JOB: run_image_job}
)


def handler_for(kind: str) -> JobHandler:
    """Return the handler of a job kind, or raise DissectError naming the kinds this worker runs."""
    handler = JOB_HANDLERS.get(kind)
    if handler is None:
        known = ", ".join([DISSECT_JOB, *JOB_HANDLERS])
        raise DissectError(
            f"this worker does not know job kind {kind!r} (it runs {known}); upgrade the worker to the server's version"
        )
    return handler
