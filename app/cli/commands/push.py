"""`neuron-atlas push FOLDER --server URL`: upload a run saved by `DissectionResult.save` to a server, which stores
it as the token's user's run; print its URL."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    """Push the saved folder with the token from --token or NEURON_ATLAS_TOKEN and print the run's URL."""
    from dissect_core.client import Client

    with Client(args.server, token=args.token) as client:  # without --token, the client reads NEURON_ATLAS_TOKEN
        print(client.push(args.folder))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register `neuron-atlas push`."""
    parser = subparsers.add_parser("push", help="upload a saved run to a server and print its URL")
    parser.add_argument("folder", help="a folder written by DissectionResult.save(folder)")
    parser.add_argument("--server", required=True, help="the server's address, e.g. https://atlas.example.org")
    parser.add_argument("--token", help="an API token of an editor or admin (default: $NEURON_ATLAS_TOKEN)")
    parser.set_defaults(func=run)
