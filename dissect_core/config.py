"""The settings of one dissection, as one frozen dataclass the CLI, the worker and the demo all fill in."""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from dissect_core.data.concepts import BUILT_IN_CONCEPT_SETS
from dissect_core.errors import DissectError
from dissect_core.names import (
    BUILT_IN_PROBE_SETS,
    DEFAULT_FALSE_DISCOVERY_RATE,
    DEFAULT_N_FOLDS,
    DEFAULT_SIMULATION,
    POOLING,
    SIMULATIONS,
    random_init_seed,
)
from dissect_core.preprocessing import check_overrides

DEFAULT_CLIP = "ViT-B-16:openai"
DEFAULT_OFFLINE_ENCODER = "conse:efficientnet_lite2+minilm"
DEFAULT_SIMILARITY = "soft_wpmi"


@dataclass(frozen=True)
class DissectConfig:
    """Everything that determines a dissection's result.

    model: a torchvision name (`resnet18`), a built-in (`efficientnet_lite0`), `timm:NAME`, or a
        TorchScript file. weights: a torchvision weights enum member name, `DEFAULT`, or `none` (`none@SEED`)
        for random initialisation from seed 0 (SEED). checkpoint: a state dict (.pt/.pth/.safetensors) put
        onto the architecture.
    probe: a folder of images, or `cifar100`. concepts: `20k` (wordfreq's, also `wordfreq-20k`),
        `clip-dissect-20k` (the paper's, downloaded), `imagenet`, `cifar100` or a text file.
    encoder: `ARCH:PRETRAINED` for open_clip, a local open_clip checkpoint, `ARCH:none` (`ARCH:none@SEED`)
        for seeded random weights, or `conse:CLASSIFIER+TEXT`.
    similarity_params: overrides of the similarity function's defaults (for example {"top_k": 5}).
    preprocessing: overrides of how the target sees images (resize, crop, interpolation, mean, std,
        antialias), which otherwise follows its weights; the run's settings record the resolved values.
    model_name: what a stored run calls the model (default: `model`); it changes no result, and the app
        names each uploaded checkpoint by it.
    n_folds: folds of the probe set over which each label is scored on images it was not chosen from (0
        skips that evaluation); false_discovery_rate: the Benjamini–Hochberg rate at which a label is called
        reliable across its layer; simulation: how a concept's presence in an image is simulated (`cosine`
        or `softmax`, see dissect_core.evaluation).
    """

    model: str
    layers: tuple[str, ...]
    probe: str
    concepts: str = "20k"
    encoder: str = DEFAULT_CLIP
    similarity: str = DEFAULT_SIMILARITY
    similarity_params: dict[str, Any] = field(default_factory=dict)
    preprocessing: dict[str, Any] = field(default_factory=dict)
    weights: str | None = "DEFAULT"
    checkpoint: str | None = None
    pool: str = "avg"
    prompt_template: str | None = None
    n_top_images: int = 20
    batch_size: int = 32
    max_images: int | None = None
    device: str | None = None
    labels_file: str | None = None
    model_name: str | None = None
    n_folds: int = DEFAULT_N_FOLDS
    false_discovery_rate: float = DEFAULT_FALSE_DISCOVERY_RATE
    simulation: str = DEFAULT_SIMULATION

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-ready dict."""
        data = asdict(self)
        data["layers"] = list(self.layers)
        data["preprocessing"] = {
            key: list(value) if isinstance(value, tuple) else value for key, value in self.preprocessing.items()
        }
        return data

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Return the default of every setting that has one (the one place entry points take defaults from)."""
        return {spec.name: spec.default for spec in fields(cls) if spec.default is not MISSING}

    def validate(self) -> None:
        """Raise DissectError naming the first setting of the wrong type, range or name, and how to fix it.

        Only checks that need no files, network or model: the server checks paths on top, the pipeline what
        depends on the probe set and the loaded model.
        """
        _check_text(self.model, "model", "a torchvision name such as resnet18, timm:NAME, or a TorchScript file")
        _check_layers(self.layers)
        for name, value in (("encoder", self.encoder), ("similarity", self.similarity), ("pool", self.pool)):
            _check_text(value, name, "see `neuron-atlas dissect --help`")
        if self.pool not in POOLING:
            raise DissectError(f"unknown pooling {self.pool!r}; use one of {', '.join(POOLING)}")
        _check_similarity(self.similarity, self.similarity_params)
        check_overrides(self.preprocessing)
        for name in ("weights", "prompt_template", "device", "model_name"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise DissectError(f"{name} must be text or left out, not {value!r}")
        if self.weights:
            random_init_seed(self.weights)  # raises on a malformed seed (`none@x`)
        if self.prompt_template is not None and "{}" not in self.prompt_template:
            raise DissectError(
                f"prompt template {self.prompt_template!r} has no {{}} for the concept; write e.g. 'a photo of a {{}}'"
            )
        _check_count(self.n_top_images, "n_top_images", allow_none=False)
        _check_count(self.batch_size, "batch_size", allow_none=False)
        _check_count(self.max_images, "max_images", allow_none=True)
        _check_evaluation(self.n_folds, self.false_discovery_rate, self.simulation)
        _check_text(self.probe, "probe", f"a folder of images or {', '.join(BUILT_IN_PROBE_SETS)}")
        _check_text(self.concepts, "concepts", f"{', '.join(BUILT_IN_CONCEPT_SETS)} or a text file")
        for name, label in (("checkpoint", "checkpoint file"), ("labels_file", "labels file")):
            value = getattr(self, name)
            if value is not None:
                _check_text(value, name, f"the path of the {label}")


def _check_text(value: object, name: str, hint: str) -> None:
    """Raise unless `value` is text with something besides whitespace."""
    if not isinstance(value, str) or not value.strip():
        raise DissectError(f"{name} must be non-empty text ({hint}), not {value!r}")


def _check_layers(layers: object) -> None:
    """Raise unless `layers` is a non-empty sequence of distinct, non-empty layer names."""
    if (
        not isinstance(layers, tuple | list)
        or not layers
        or not all(isinstance(name, str) and name.strip() for name in layers)
    ):
        raise DissectError("layers must be one or more layer names; list them with `neuron-atlas layers`")
    if len(set(layers)) != len(layers):
        raise DissectError(f"layers {list(layers)} repeat a name; give each layer once")


def _check_similarity(name: str, params: object) -> None:
    """Raise unless `params` maps parameter names that the similarity function `name` takes to values."""
    if not isinstance(params, dict) or not all(isinstance(key, str) for key in params):
        raise DissectError("similarity_params must map parameter names to values, e.g. {'top_k': 20}")
    # Imported here: it loads torch, which whoever only builds or reads a config need not pay for.
    from dissect_core.similarity.functions import check_similarity_params

    check_similarity_params(name, params)


def _check_evaluation(n_folds: object, false_discovery_rate: object, simulation: object) -> None:
    """Raise unless the label evaluation's folds, false-discovery rate and simulation are usable."""
    if isinstance(n_folds, bool) or not isinstance(n_folds, int) or n_folds < 0 or n_folds == 1:
        raise DissectError(f"n_folds must be 0 (no evaluation) or a whole number of at least 2, not {n_folds!r}")
    if (
        isinstance(false_discovery_rate, bool)
        or not isinstance(false_discovery_rate, int | float)
        or not 0 < false_discovery_rate < 1
    ):
        raise DissectError(
            f"false_discovery_rate must be a number between 0 and 1, e.g. 0.05, not {false_discovery_rate!r}"
        )
    if simulation not in SIMULATIONS:
        raise DissectError(f"unknown simulation {simulation!r}; use one of {', '.join(SIMULATIONS)}")


def _check_count(value: object, name: str, *, allow_none: bool) -> None:
    """Raise unless `value` is an int of at least 1 (a bool is not a count), or None where allowed."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DissectError(f"{name} must be a whole number of at least 1, not {value!r}")
