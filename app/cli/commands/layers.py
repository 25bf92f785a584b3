"""`neuron-atlas layers`: print a model's layers in forward order, dotted name first.

An architecture's layers do not depend on its weights, so by default (`--weights none`) it is built on PyTorch's
meta device, as the upload form's architecture catalogue builds it: nothing is allocated, initialised or
downloaded, and even vit_h_14 lists at once. Named weights, a checkpoint or a TorchScript file are loaded.
"""

from __future__ import annotations

import argparse


def needs_loading(model: str, weights: str | None, checkpoint: str | None) -> bool:
    """Return whether listing the layers needs the model loaded (named weights, a checkpoint, a TorchScript file)."""
    from dissect_core.names import is_torchscript_name, random_init_seed

    return bool(checkpoint) or is_torchscript_name(model) or not weights or random_init_seed(weights) is None


def run(args: argparse.Namespace) -> int:
    """Print one line per layer: name, module type, output shape."""
    from dissect_core.models.targets import list_layers, load_target, skeleton_layers

    if needs_loading(args.model, args.weights, args.checkpoint):
        target = load_target(args.model, args.weights, args.checkpoint)
        layers = list_layers(target.model, target.preprocessing.crop)
    else:
        layers = skeleton_layers(args.model)
    for layer in layers:
        shape = "x".join(str(size) for size in layer.output_shape) if layer.output_shape else "-"
        print(f"{layer.name}\t{layer.type_name}\t{shape}")
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
