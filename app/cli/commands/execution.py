"""The flags that say where a dissection runs (`--executor ray` and its settings), shared by `dissect` and
`worker`; they change no result."""

from __future__ import annotations

import argparse
from typing import Any

from app.core.errors import AtlasError
from dissect_core.config import EXECUTORS, DissectConfig

DEFAULTS = DissectConfig.defaults()


def add_execution_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --executor, --ray-address, --actors and --gpus-per-actor."""
    group = parser.add_argument_group(
        "where it runs",
        "local: this process; ray: a Ray cluster (pip install 'neuron-atlas[ray]'), image chunks on probe actors "
        "and blocks of neurons as tasks, bulk rows under the cache folder, which every node must see",
    )
    group.add_argument("--executor", choices=EXECUTORS, default=DEFAULTS["executor"], help="default: %(default)s")
    group.add_argument(
        "--ray-address", help="the cluster to join, e.g. ray://head:10001 or auto (default: RAY_ADDRESS, else a new "
        "local cluster)"
    )  # fmt: skip
    group.add_argument(
        "--actors", type=int, metavar="N", help="probe actors (default: the cluster's GPUs / --gpus-per-actor, or 2)"
    )
    group.add_argument(
        "--gpus-per-actor",
        type=float,
        metavar="G",
        help="GPUs each probe actor requests from the cluster (default: 1 with --device cuda, else 0; 0.5 puts two "
        "actors on one GPU); never read from this machine's own GPUs",
    )


def execution_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Return the config's execution settings from the parsed flags; raise saying how to install Ray when
    `--executor ray` is asked for without it."""
    if args.executor == "ray":
        from dissect_core.executors import RAY_INSTALL_HINT

        try:
            import ray  # noqa: F401
        except ImportError:
            raise AtlasError(
                f"--executor ray needs the ray package, which is not installed; {RAY_INSTALL_HINT}"
            ) from None
    return {
        "executor": args.executor,
        "ray_address": args.ray_address,
        "actors": args.actors,
        "gpus_per_actor": args.gpus_per_actor,
    }
