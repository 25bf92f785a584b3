"""`neuron-atlas dissect`: label the neurons of some layers and write results.csv / results.json."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from app.cli.commands.execution import add_execution_arguments, execution_from_args
from app.core.errors import AtlasError
from dissect_core.config import DissectConfig
from dissect_core.data.concepts import CLEAN_20K, CLIP_DISSECT_20K, WORDFREQ_20K
from dissect_core.names import POOLING, SIMILARITY_NAMES, SIMULATIONS
from dissect_core.preprocessing import INTERPOLATIONS
from dissect_core.progress import StageBars

DEFAULTS = DissectConfig.defaults()
ENCODER_HELP = (
    "image–text encoder: open_clip ARCH:PRETRAINED (default %(default)s, the paper's; downloads when online), "
    "ARCH:/path/to/checkpoint, ARCH:none (random weights from seed 0, ARCH:none@SEED for another; for plumbing "
    "checks, never for labels), or the offline ConSE encoder conse:CLASSIFIER+TEXT (e.g. "
    "conse:efficientnet_lite2+minilm: an ImageNet classifier's class probabilities mixed over MiniLM "
    "embeddings of the class names; it only knows the 1,000 ImageNet classes, and a network must not be "
    "dissected with an encoder built on itself)"
)
CONCEPTS_HELP = (
    "concept set (default %(default)s): 20k (wordfreq's 20,000 most frequent English words, also "
    f"{WORDFREQ_20K}), {CLEAN_20K} (20k without generic and function words, inflections merged), "
    f"{CLIP_DISSECT_20K} (the CLIP-Dissect paper's list: downloaded once into the cache "
    "folder from the paper's GitHub repository at a pinned commit and checked against its sha256; offline, "
    "download data/20k.txt from github.com/Trustworthy-ML-Lab/CLIP-dissect and pass --concepts "
    "path/to/20k.txt), imagenet, cifar100, or a text file (one concept per line)"
)
PREPROCESSING_FLAGS = ("resize", "crop", "interpolation", "mean", "std")


def parse_param(text: str) -> tuple[str, Any]:
    """Parse KEY=VALUE into (key, int | float | str); never evaluates the text."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise AtlasError(f"--param {text!r} is not KEY=VALUE; write e.g. --param top_k=20")
    for cast in (int, float):
        try:
            return key.strip(), cast(value)
        except ValueError:
            continue
    return key.strip(), value


def parse_channels(text: str, flag: str) -> tuple[float, float, float]:
    """Parse R,G,B into three floats, raising a one-line error naming the flag."""
    parts = text.split(",")
    try:
        red, green, blue = (float(part) for part in parts)
    except ValueError:
        raise AtlasError(f"--{flag} {text!r} is not three numbers R,G,B; write e.g. --{flag} 0.5,0.5,0.5") from None
    return red, green, blue


def preprocessing_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Return the preprocessing overrides that --resize, --crop, --interpolation, --mean and --std give."""
    overrides: dict[str, Any] = {}
    for flag in PREPROCESSING_FLAGS:
        value = getattr(args, flag)
        if value is not None:
            overrides[flag] = parse_channels(value, flag) if flag in ("mean", "std") else value
    return overrides


def add_preprocessing_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags that override the target's own preprocessing (otherwise that of its weights)."""
    group = parser.add_argument_group(
        "target preprocessing",
        "how the target sees each probe image; by default exactly what its weights were trained with "
        "(torchvision weights' transforms(), timm's pretrained config; for --weights none or a --checkpoint, "
        "the architecture's DEFAULT weights')",
    )
    group.add_argument("--resize", type=int, metavar="N", help="resize the shorter side to N pixels")
    group.add_argument("--crop", type=int, metavar="N", help="then take the centre N x N square")
    group.add_argument("--interpolation", choices=INTERPOLATIONS, help="the resize's resampling filter")
    group.add_argument("--mean", metavar="R,G,B", help="per-channel mean subtracted after scaling pixels to 0..1")
    group.add_argument("--std", metavar="R,G,B", help="per-channel standard deviation divided by")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments that fill a DissectConfig (shared by `dissect` and `demo`)."""
    parser.add_argument(
        "--model", required=True, help="torchvision name, efficientnet_lite0/1/2, timm:NAME or TorchScript file"
    )
    parser.add_argument(
        "--weights",
        default=DEFAULTS["weights"],
        help="weights enum member, DEFAULT, or none (random init from seed 0; none@SEED for another seed)",
    )
    parser.add_argument("--checkpoint", help="state dict (.pt/.pth/.safetensors) to load onto --model")
    parser.add_argument(
        "--class-names",
        metavar="FILE",
        help="text file naming the model's outputs, one per line in output order (default: the weights' own; a "
        "checkpoint keeps its architecture's when its head has as many outputs)",
    )
    parser.add_argument(
        "--layers", required=True, help="comma-separated dotted layer names (see `neuron-atlas layers`)"
    )
    parser.add_argument("--probe", required=True, help="folder of probe images (recursive), or cifar100")
    parser.add_argument("--labels-file", help="optional CSV file,label for the probe images")
    parser.add_argument("--concepts", default=DEFAULTS["concepts"], help=CONCEPTS_HELP)
    parser.add_argument("--clip", "--encoder", dest="encoder", default=DEFAULTS["encoder"], help=ENCODER_HELP)
    parser.add_argument("--template", help="prompt template for concepts, e.g. 'a photo of a {}' (default: none)")
    parser.add_argument("--similarity", default=DEFAULTS["similarity"], choices=sorted(SIMILARITY_NAMES))
    parser.add_argument(
        "--top-k", type=int, help="top images per neuron (default: the paper's, scaled to the probe set)"
    )
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="similarity parameter")
    parser.add_argument("--pool", default=DEFAULTS["pool"], choices=POOLING, help="spatial pooling of conv channels")
    parser.add_argument(
        "--folds",
        dest="n_folds",
        type=int,
        default=DEFAULTS["n_folds"],
        help="folds for scoring each label on held-out images (0: no evaluation)",
    )
    parser.add_argument(
        "--fdr",
        dest="false_discovery_rate",
        type=float,
        default=DEFAULTS["false_discovery_rate"],
        help="false-discovery rate at which a label is called reliable across its layer",
    )
    parser.add_argument(
        "--simulation",
        default=DEFAULTS["simulation"],
        choices=SIMULATIONS,
        help="how a concept's presence in an image is simulated from the image–concept cosine",
    )
    parser.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    parser.add_argument(
        "--max-images", type=int, help="a seeded sample of N probe images, spread over labels or sub-folders"
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when present)")
    add_preprocessing_arguments(parser)


def config_from_args(args: argparse.Namespace) -> DissectConfig:
    """Return the DissectConfig the parsed arguments describe (the --class-names file read)."""
    from dissect_core.models.class_names import read_class_names

    params = dict(parse_param(text) for text in args.param)
    if args.top_k is not None:
        params["top_k"] = args.top_k
    return DissectConfig(
        model=args.model,
        layers=tuple(name.strip() for name in args.layers.split(",") if name.strip()),
        probe=args.probe,
        concepts=args.concepts,
        encoder=args.encoder,
        similarity=args.similarity,
        similarity_params=params,
        preprocessing=preprocessing_from_args(args),
        weights=args.weights,
        checkpoint=args.checkpoint,
        pool=args.pool,
        prompt_template=args.template,
        batch_size=args.batch_size,
        max_images=args.max_images,
        device=args.device,
        labels_file=args.labels_file,
        class_names=read_class_names(args.class_names) if args.class_names else None,
        n_folds=args.n_folds,
        false_discovery_rate=args.false_discovery_rate,
        simulation=args.simulation,
        **execution_from_args(args),
    )


def run(args: argparse.Namespace) -> int:
    """Run the dissection, write the result files, and store the run when --store is given."""
    from app.core.config import Settings
    from app.jobs.dissections import validate_config
    from dissect_core.pipeline import run_dissection

    config = validate_config(config_from_args(args))  # the one check: the pipeline takes a checked config
    settings = Settings.from_env()
    bars = StageBars(disable=args.quiet)
    try:
        if args.store:
            from app.jobs.dissections import execute_dissection

            stored = execute_dissection(settings, config, progress=bars)
            run_id, result = stored.run_id, stored.result
        else:
            result = run_dissection(config, cache_dir=settings.cache_dir, progress=bars, data_dir=settings.data_dir)
            run_id = None
    finally:
        bars.close()
    from dissect_core.saved import write_result_files

    paths = write_result_files(result, Path(args.out), run_id)
    print(
        f"labelled {sum(layer.n_units for layer in result.layers)} neurons in {len(result.layers)} layers "
        f"over {len(result.image_ids)} images ({len(result.record.facts.skipped_images)} unreadable skipped)"
    )
    for path in paths:
        print(f"wrote {path}")
    if run_id is not None:
        from app.cli.run_summary import stored_run_summary
        from app.core.urls import run_url

        print(f"stored as run {run_id}: {run_url(run_id)} on the dashboard of this data folder (neuron-atlas serve)")
        for line in stored_run_summary(settings, run_id):
            print(line)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Register `neuron-atlas dissect`."""
    parser = subparsers.add_parser("dissect", help="label the neurons of some layers of a model")
    add_config_arguments(parser)
    add_execution_arguments(parser)
    parser.add_argument("--out", default="results", help="output folder (default: %(default)s)")
    parser.add_argument("--store", action="store_true", help="also store the run in the database for the dashboard")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)
