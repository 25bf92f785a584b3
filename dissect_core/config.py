"""The settings of one dissection, as one frozen dataclass the CLI, the worker and the demo all fill in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
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
    is_torchscript_name,
    random_init_seed,
)
from dissect_core.preprocessing import check_overrides

DEFAULT_CLIP = "ViT-B-16:openai"
DEFAULT_OFFLINE_ENCODER = "conse:efficientnet_lite2+minilm"
DEFAULT_SIMILARITY = "soft_wpmi"
#: The settings a config cannot do without.
REQUIRED_SETTINGS = ("model", "layers", "probe")
#: The settings that may name a file or folder rather than a built-in set or an architecture.
PATH_SETTINGS = ("probe", "concepts", "checkpoint", "labels_file", "model")
#: Where a dissection can run: this process, or a Ray cluster (`pip install 'neuron-atlas[ray]'`).
EXECUTORS = ("local", "ray")
#: The settings of where a run executes: they change no result, no cache key and no job's identity.
EXECUTION_SETTINGS = ("executor", "ray_address", "actors", "gpus_per_actor")
#: How a ConSE encoder spec starts (dissect_core.encoders.CONSE_PREFIX, which imports torch).
_CONSE_PREFIX = "conse:"


def names_a_path(key: str, value: object) -> bool:
    """Return whether the setting `key` holds a file or folder (not a built-in set's or an architecture's name)."""
    if key not in PATH_SETTINGS or not isinstance(value, str) or not value.strip():
        return False
    if key == "probe":
        return value.strip() not in BUILT_IN_PROBE_SETS
    if key == "concepts":
        return value.strip() not in BUILT_IN_CONCEPT_SETS
    return is_torchscript_name(value) if key == "model" else True


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
    class_names: the names of the model's outputs, one per output of its head in output order (a fine-tuned
        checkpoint's own classes); left out, a run keeps its weights' names (dissect_core.models.class_names).
        They change no activation or label, so they enter no cache key (the connections stage is not cached).
    n_folds: folds of the probe set over which each label is scored on images it was not chosen from (0
        skips that evaluation); false_discovery_rate: the Benjamini–Hochberg rate at which a label is called
        reliable across its layer; simulation: how a concept's presence in an image is simulated (`cosine`
        or `softmax`, see dissect_core.evaluation).
    executor, ray_address, actors, gpus_per_actor: where the run executes (`EXECUTION_SETTINGS`), never what
        it finds: `local` (this process) or `ray` (a Ray cluster at `ray_address`, default RAY_ADDRESS or a new
        local one, with `actors` probe actors of `gpus_per_actor` GPUs each; see dissect_core.executors). They
        enter no cache key, and a job's stored settings leave them out (the worker that runs it decides).
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
    class_names: tuple[str, ...] | None = None
    n_folds: int = DEFAULT_N_FOLDS
    false_discovery_rate: float = DEFAULT_FALSE_DISCOVERY_RATE
    simulation: str = DEFAULT_SIMULATION
    executor: str = "local"
    ray_address: str | None = None
    actors: int | None = None
    gpus_per_actor: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-ready dict."""
        data = asdict(self)
        data["layers"] = list(self.layers)
        data["class_names"] = None if self.class_names is None else list(self.class_names)
        data["preprocessing"] = {
            key: list(value) if isinstance(value, tuple) else value for key, value in self.preprocessing.items()
        }
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base_dir: Path | None = None, *, stored: bool = False) -> DissectConfig:
        """Return the config a dict of settings describes (`to_dict`'s inverse, JSON lists back as tuples), relative
        files and folders found under `base_dir` when given; raise DissectError naming unknown or missing settings.

        The one way from a dict to a config; values are not checked (call `validate()`). `stored`: the dict is a
        run's stored record (`RunRecord.from_json` reads it), which is read, never refused: keys besides the
        config's are ignored and a missing model, layers or probe is left empty.
        """
        if not isinstance(data, Mapping):
            raise DissectError("settings must be a JSON object of dissection settings, e.g. {'model': 'resnet18'}")
        known = [spec.name for spec in fields(cls)]
        if stored:
            data = {"model": "", "probe": "", **{key: value for key, value in data.items() if key in known}}
            data["layers"] = data.get("layers") or ()
        else:
            unknown = sorted(str(key) for key in set(data) - set(known))
            if unknown:
                raise DissectError(f"unknown setting(s) {', '.join(unknown)}; the settings are: {', '.join(known)}")
            missing = [name for name in REQUIRED_SETTINGS if data.get(name) in (None, "", [], ())]
            if missing:
                raise DissectError(
                    f"missing setting(s) {', '.join(missing)}; give the model, its layers and a probe set"
                )
        values = dict(data)
        if base_dir is not None:
            values = {
                key: str(resolved_path(value, base_dir)) if names_a_path(key, value) else value
                for key, value in data.items()
            }
        layers = values["layers"]
        if isinstance(layers, str):
            layers = [name.strip() for name in layers.split(",") if name.strip()]
        if not isinstance(layers, list | tuple):
            raise DissectError("layers must be a list of layer names, e.g. ['layer3', 'layer4']")
        values["layers"] = tuple(layers)
        if isinstance(values.get("class_names"), list):
            values["class_names"] = tuple(values["class_names"])
        preprocessing = values.get("preprocessing")
        if isinstance(preprocessing, Mapping):
            values["preprocessing"] = {
                key: tuple(value) if isinstance(value, list) else value for key, value in preprocessing.items()
            }
        return cls(**values)

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
        _check_encoder_is_not_target(self.encoder, self.model)
        _check_similarity(self.similarity, self.similarity_params)
        check_overrides(self.preprocessing)
        _check_class_names_setting(self.class_names)
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
        check_execution(self.executor, self.ray_address, self.actors, self.gpus_per_actor)
        _check_text(self.probe, "probe", f"a folder of images or {', '.join(BUILT_IN_PROBE_SETS)}")
        _check_text(self.concepts, "concepts", f"{', '.join(BUILT_IN_CONCEPT_SETS)} or a text file")
        for name, label in (("checkpoint", "checkpoint file"), ("labels_file", "labels file")):
            value = getattr(self, name)
            if value is not None:
                _check_text(value, name, f"the path of the {label}")


def check_execution(executor: object, ray_address: object, actors: object, gpus_per_actor: object) -> None:
    """Raise unless the executor is known and the Ray settings are usable (address text, a whole number of actors
    of at least 1, a number of GPUs of at least 0 per actor)."""
    if executor not in EXECUTORS:
        raise DissectError(f"unknown executor {executor!r}; use one of {', '.join(EXECUTORS)} (e.g. --executor ray)")
    if ray_address is not None and (not isinstance(ray_address, str) or not ray_address.strip()):
        raise DissectError(f"ray_address must be a Ray address such as ray://head:10001 or auto, not {ray_address!r}")
    _check_count(actors, "actors", allow_none=True)
    if gpus_per_actor is not None and (
        isinstance(gpus_per_actor, bool) or not isinstance(gpus_per_actor, int | float) or gpus_per_actor < 0
    ):
        raise DissectError(
            f"gpus_per_actor must be a number of at least 0 (0.5 shares a GPU between two actors), not "
            f"{gpus_per_actor!r}"
        )


def resolved_path(stored: str | Path, base_dir: Path) -> Path:
    """Return the absolute path a stored path stands for: a relative one lies under `base_dir`."""
    path = Path(stored).expanduser()
    return path if path.is_absolute() else base_dir / path


def _check_encoder_is_not_target(encoder: str, model: str) -> None:
    """Raise when the encoder is a ConSE encoder built on the very network being dissected."""
    if encoder.startswith(_CONSE_PREFIX) and encoder[len(_CONSE_PREFIX) :].split("+", 1)[0] == model:
        raise DissectError(
            f"the encoder {encoder} is built on {model} itself, so its labels would only echo the network's own "
            "class predictions; use a ConSE encoder on another classifier, e.g. conse:efficientnet_lite2+minilm, "
            "or a CLIP model"
        )


def _check_text(value: object, name: str, hint: str) -> None:
    """Raise unless `value` is text with something besides whitespace."""
    if not isinstance(value, str) or not value.strip():
        raise DissectError(f"{name} must be non-empty text ({hint}), not {value!r}")


def _check_class_names_setting(class_names: object) -> None:
    """Raise unless `class_names` is left out or a non-empty sequence of one-line, non-empty names."""
    if class_names is None:
        return
    if (
        isinstance(class_names, str)
        or not isinstance(class_names, tuple | list)
        or not class_names
        or not all(isinstance(name, str) and name.strip() and "\n" not in name for name in class_names)
    ):
        raise DissectError(
            "class_names must be a list of one-line class names, one per output of the model's head in output "
            "order (a file of one name per line: --class-names FILE), or left out"
        )


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
