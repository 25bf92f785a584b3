"""`neuron-atlas layers`: print a model's layers in forward order, dotted name first.

An architecture's layers do not depend on its weights, so by default (`--weights none`) it is built on PyTorch's
meta device, as the upload form's architecture catalogue builds it: nothing is allocated, initialised or
downloaded, and even vit_h_14 lists at once. Named weights, a checkpoint or a TorchScript file are loaded. Each
row shows the layer's unit count, and a `*` marks the main stages that a first dissection should look at.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dissect_core.api import LayerInfo


def layer_table(layers: Sequence[LayerInfo]) -> list[str]:
    """Return the printed table: a header, then per layer its name, module type, output shape, units and a `*`
    on the main stages (what a first dissection should look at), columns aligned for reading."""
    rows = [("layer", "type", "output", "units", "main")]
    for layer in layers:
        shape = "x".join(str(size) for size in layer.output_shape) if layer.output_shape else "-"
        units = "-" if layer.n_units is None else str(layer.n_units)
        rows.append((layer.name, layer.kind, shape, units, "*" if layer.main_stage else ""))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    return [
        f"{name:<{widths[0]}}  {kind:<{widths[1]}}  {shape:<{widths[2]}}  {units:>{widths[3]}}  {main}".rstrip()
        for name, kind, shape, units, main in rows
    ]


def run(args: argparse.Namespace) -> int:
    """Print one line per layer (name, module type, output shape, units, `*` on main stages), then the stages."""
    from dissect_core.api import list_layers

    layers = list_layers(args.model, weights=args.weights, checkpoint=args.checkpoint)
    for line in layer_table(layers):
        print(line)
    stages = [layer.name for layer in layers if layer.main_stage]
    print(f"* main stages: --layers {','.join(stages)}" if stages else "no main stages recognised")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register `neuron-atlas layers`."""
    parser = subparsers.add_parser("layers", help="list a model's layers in forward order")
    parser.add_argument("--model", required=True)
    parser.add_argument(
        "--weights",
        default="none",
        help="weights to load (default none: the layers don't depend on them, so none are built or downloaded)",
    )
    parser.add_argument("--checkpoint")
    parser.set_defaults(func=run)
