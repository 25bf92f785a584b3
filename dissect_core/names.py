"""The names the library accepts for built-ins and files, importable without torch (the web server checks them)."""

from __future__ import annotations

from pathlib import Path

from dissect_core.errors import DissectError

#: How a conv layer's [h, w] map becomes one activation per image.
POOLING = ("avg", "max")
#: The probe set `load_probe` downloads by name instead of reading a folder.
CIFAR100_PROBE = "cifar100"
BUILT_IN_PROBE_SETS = (CIFAR100_PROBE,)
#: The seed of the sample `max_images` draws from a larger probe folder: fixed, so a folder always gives one sample.
DEFAULT_PROBE_SAMPLE_SEED = 0
#: The suffixes of the model files `load_target` reads as TorchScript (compared in lower case).
TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript")
#: The weights names that ask for random initialisation (of a target, or an open_clip encoder); `none@SEED` seeds it.
RANDOM_WEIGHTS = ("none", "random")
#: The seed of a random initialisation that names none (`none` means `none@0`).
DEFAULT_SEED = 0
#: Folds of the probe set for scoring labels on held-out images (0 skips the evaluation).
DEFAULT_N_FOLDS = 5
#: The Benjamini–Hochberg false-discovery rate at which a label is called reliable, across a layer.
DEFAULT_FALSE_DISCOVERY_RATE = 0.05
#: How a concept's presence in an image is simulated from the image–concept cosine (see dissect_core.evaluation).
SIMULATIONS = ("cosine", "softmax")
DEFAULT_SIMULATION = "cosine"
#: The similarity functions' names, in the paper's order (dissect_core.similarity.functions maps each to its code).
SIMILARITY_NAMES = ("soft_wpmi", "wpmi", "cos_similarity", "cos_similarity_cubed", "rank_reorder")


def is_torchscript_name(model: str) -> bool:
    """Return whether `model` ends in a TorchScript suffix, i.e. names a file rather than an architecture."""
    return Path(model).suffix.lower() in TORCHSCRIPT_SUFFIXES


def random_init_seed(weights: str) -> int | None:
    """Return the seed `none`, `none@SEED` (or `random`, `random@SEED`) asks for, or None for real weights."""
    name, sep, seed = weights.partition("@")
    if name.lower() not in RANDOM_WEIGHTS:
        return None
    if not sep:
        return DEFAULT_SEED
    if not seed.isascii() or not seed.isdigit():
        raise DissectError(
            f"weights {weights!r} do not end in a whole-number seed; write {name} or {name}@SEED, e.g. {name}@1"
        )
    return int(seed)


def probe_display_name(name: str, n_images: int, sampled_from: int | None = None) -> str:
    """Return a probe set's name for people: `cifar10-test (sample of 200 of 10,000)` or `cifar10-test (200 images)`."""
    if sampled_from is None:
        return f"{name} ({n_images:,} image{'' if n_images == 1 else 's'})"
    return f"{name} (sample of {n_images:,} of {sampled_from:,})"
