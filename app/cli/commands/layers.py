"""`neuron-atlas layers`: print a model's layers in forward order, dotted name first."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    """Print one line per layer: name, module type, output shape."""
    from dissect_core.models.targets import list_layers, load_target

    target = load_target(args.model, args.weights, args.checkpoint)
    for layer in list_layers(target.model, target.preprocessing.crop):
        shape = "x".join(str(size) for size in layer.output_shape) if layer.output_shape else "-"
        print(f"{layer.name}\t{layer.type_name}\t{shape}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register `neuron-atlas layers`."""
    parser = subparsers.add_parser("layers", help="list a model's layers in forward order")
    parser.add_argument("--model", required=True)
    parser.add_argument(
        "--weights", default="none", help="weights to load (default none: the layers don't depend on them)"
    )
    parser.add_argument("--checkpoint")
    parser.set_defaults(func=run)
