"""`neuron-atlas worker`: migrate the database, then run queued dissections until stopped."""

from __future__ import annotations

import argparse
import logging

from app.cli.commands.execution import add_execution_arguments


def run(args: argparse.Namespace) -> int:
    """Run the job worker (after migrating the database); an unwritable database or data folder stops it."""
    from app.cli.commands.execution import execution_from_args
    from app.core.config import Settings
    from app.core.errors import AtlasError, StorageUnavailable
    from app.jobs.queue.worker import run_worker
    from app.persistence.writable import start_problem

    if args.poll <= 0:
        raise AtlasError(f"--poll {args.poll:g} must be a positive number of seconds, e.g. --poll 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    problem = start_problem(settings)
    if problem is not None:
        raise StorageUnavailable(f"{problem} The worker did not start: it could not store a run.")
    execution = execution_from_args(args)
    run_worker(settings, worker_id=args.id, once=args.once, poll_interval=args.poll, execution=execution)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register `neuron-atlas worker`."""
    parser = subparsers.add_parser(
        "worker",
        help="run queued dissections (SIGTERM gives the running job back to the queue and exits)",
    )
    parser.add_argument("--once", action="store_true", help="run at most one job, then exit")
    parser.add_argument("--poll", type=float, default=1.0, metavar="S", help="seconds between queue polls")
    parser.add_argument("--id", help="worker id shown on jobs (default: host:pid:random)")
    add_execution_arguments(parser)
    parser.set_defaults(func=run)
