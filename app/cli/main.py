"""The `neuron-atlas` command line: one subcommand per module in `app.cli.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys

from dissect_core.errors import DissectError

#: The modules of app.cli.commands, one per subcommand (`probe_sets` registers `probe-sets`).
SUBCOMMANDS = (
    "dissect",
    "layers",
    "demo",
    "worker",
    "serve",
    "migrate",
    "users",
    "tokens",
    "probe_sets",
    "gc",
    "push",
    "interventions",
)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every available subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="neuron-atlas",
        description="Label every neuron of a vision network with CLIP-Dissect, then browse the labels.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"app.cli.commands.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"app.cli.commands.{name}":
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; bad input prints one line naming the problem and the fix, exit code 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DissectError as error:
        print(f"neuron-atlas {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
