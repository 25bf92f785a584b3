"""The library's entry points for a notebook: `dissect` a model (in memory or by name) and `list_layers` of one."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dissect_core.cache_dir import default_cache_dir
from dissect_core.config import DEFAULT_CLIP, DEFAULT_SIMILARITY, DissectConfig
from dissect_core.errors import DissectError

if TYPE_CHECKING:
    from torch import nn

    from dissect_core.results import DissectionResult

#: The DissectConfig fields `dissect` sets from its own arguments (the rest may be passed as options).
_OWN_ARGUMENTS = ("model", "layers", "probe", "concepts", "encoder", "similarity", "device")
#: Options that only make sense for a model given by name.
_NAMED_MODEL_OPTIONS = ("weights", "checkpoint")
#: The one option that is not a DissectConfig field: a shorthand for similarity_params["top_k"].
_TOP_K = "top_k"


def dissect(
    model: nn.Module | str,
    layers: Any,
    probe: Any,
    *,
    transform: object = None,
    concepts: str = DissectConfig.defaults()["concepts"],
    encoder: str = DEFAULT_CLIP,
    similarity: str = DEFAULT_SIMILARITY,
    device: str | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    **options: Any,
) -> DissectionResult:
    """Return the labels of `layers` of `model` over the `probe` images (the CLI's `neuron-atlas dissect`).

    `model`: an nn.Module, or any name the CLI takes (resnet18, efficientnet_lite0, timm:NAME, a TorchScript file).
    `layers`: dotted names or the submodules themselves. `probe`: a folder of images (or `cifar100`), a list of image
    paths, or a torch Dataset of PIL images or (image, label) pairs. `transform`: how an nn.Module sees an image
    (torchvision weights or their transforms(), a Compose of Resize/CenterCrop/ToTensor/Normalize, or a dict of
    resize, crop, mean, std); a timm model carries its own, and a named model's weights say it. `cache_dir`: where
    image and text embeddings are kept between calls (default: `default_cache_dir()`). `options`: any other
    DissectConfig setting (n_folds, pool, batch_size, max_images, n_top_images, prompt_template, model_name,
    similarity_params, preprocessing, ...; weights and checkpoint for a named model), and top_k; `class_names=`
    (a sequence of str, one per output of the model's head in output order) names the outputs, over its weights'.
    An nn.Module is put in eval mode on the device; it is identified by its state dict's sha256, so caches and
    the run's record work as for a named model.
    """
    from dissect_core.data.probe_inputs import probe_folder
    from dissect_core.pipeline import run_dissection
    from dissect_core.progress import StageBars

    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    settings = _checked_options(options, in_memory=not isinstance(model, str))
    folder = probe_folder(probe, cache)
    target = None
    if isinstance(model, str):
        if transform is not None:
            raise DissectError(
                "transform= is for an nn.Module; a named model sees images as its weights say, which "
                "preprocessing={'resize': ..., 'crop': ...} overrides"
            )
        names = (layers,) if isinstance(layers, str) else tuple(layers)
    else:
        from dissect_core.models.in_memory import layer_names, module_target

        target = module_target(model, transform)
        names = layer_names(model, layers)
        settings.setdefault("model_name", target.name.split(":", 1)[1])
        settings["weights"] = f"sha256:{target.identity.rsplit(':', 1)[1]}"
    config = DissectConfig(
        model=model if isinstance(model, str) else target.name,  # type: ignore[union-attr]
        layers=names,
        probe=_absolute(folder.probe),
        concepts=concepts,
        encoder=encoder,
        similarity=similarity,
        device=device,
        labels_file=settings.pop("labels_file", None) or folder.labels_file,
        **settings,
    )
    config.validate()
    bars = StageBars(disable=not progress)
    try:
        return run_dissection(config, cache_dir=cache, progress=bars, data_dir=cache, target=target)
    finally:
        bars.close()


def _checked_options(options: dict[str, Any], *, in_memory: bool) -> dict[str, Any]:
    """Return the options as DissectConfig settings (top_k into similarity_params); raise naming unknown ones."""
    allowed = [*sorted({spec.name for spec in fields(DissectConfig)} - set(_OWN_ARGUMENTS)), _TOP_K]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise DissectError(f"unknown option(s) {', '.join(unknown)}; the options are: {', '.join(allowed)}")
    if in_memory:
        named_only = [name for name in _NAMED_MODEL_OPTIONS if options.get(name) is not None]
        if named_only:
            raise DissectError(
                f"{', '.join(named_only)} apply to a model given by name; load the weights into the nn.Module "
                "(model.load_state_dict) before dissecting it"
            )
        if options.get("preprocessing"):
            raise DissectError("preprocessing= is for a named model; give an nn.Module's as transform=")
    settings = dict(options)
    if isinstance(settings.get("class_names"), list | tuple):  # any sequence of names, kept as the config's tuple
        settings["class_names"] = tuple(settings["class_names"])
    if _TOP_K in settings:
        settings["similarity_params"] = {**settings.get("similarity_params", {}), _TOP_K: settings.pop(_TOP_K)}
    return settings


def _absolute(probe: str) -> str:
    """Return a probe folder's absolute path (a built-in set's name as it is)."""
    from dissect_core.names import BUILT_IN_PROBE_SETS

    return probe if probe in BUILT_IN_PROBE_SETS else str(Path(probe).expanduser().resolve())


@dataclass(frozen=True)
class LayerInfo:
    """One layer of a model, as `list_layers` gives it: dotted name, module type, output shape (no batch
    dimension; None when the dummy forward pass did not reach it), unit count, and whether it is a main stage."""

    name: str
    kind: str
    output_shape: tuple[int, ...] | None
    n_units: int | None
    main_stage: bool


def list_layers(
    model: nn.Module | str,
    *,
    transform: object = None,
    weights: str | None = "none",
    checkpoint: str | None = None,
    cache_dir: str | Path | None = None,
) -> list[LayerInfo]:
    """Return a model's layers in forward order with their output shapes (one dummy forward pass at the crop
    size of `transform`, the model's own preprocessing, or 224), unit counts and main stages marked.

    A name's layers do not depend on its weights: by default (`weights="none"`) the architecture is traced on
    PyTorch's meta device, nothing downloaded, and its table kept in `cache_dir` (default: `default_cache_dir()`)
    so the next listing needs no torch (dissect_core.models.layer_tables); other weights, a `checkpoint` (whose
    head may differ from the architecture's) or a TorchScript file are loaded.
    """
    from dissect_core.models.main_stages import main_stages

    if isinstance(model, str):
        cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        layers = named_model_layers(model, weights, checkpoint, cache)
    else:
        from dissect_core.models import targets
        from dissect_core.models.in_memory import module_preprocessing

        try:
            crop = module_preprocessing(model, transform).crop
        except DissectError:
            crop = targets.FALLBACK_PREPROCESSING.crop
        layers = targets.list_layers(model, crop)
    stages = set(main_stages([(layer.name, layer.type_name) for layer in layers]))
    return [
        LayerInfo(layer.name, layer.type_name, layer.output_shape, layer.n_units, layer.name in stages)
        for layer in layers
    ]


def named_model_layers(model: str, weights: str | None, checkpoint: str | None, cache_dir: Path) -> list[Any]:
    """Return a named model's layers (dissect_core.models.layer_info.LayerInfo): traced on the meta device (its
    table kept in `cache_dir`) unless named weights, a checkpoint or a TorchScript file must be loaded."""
    from dissect_core.names import is_torchscript_name, random_init_seed

    if checkpoint or is_torchscript_name(model) or not weights or random_init_seed(weights) is None:
        from dissect_core.models.targets import list_layers as traced_layers
        from dissect_core.models.targets import load_target

        target = load_target(model, weights, checkpoint)
        return traced_layers(target.model, target.preprocessing.crop)
    from dissect_core.models.layer_tables import skeleton_layers_kept

    return skeleton_layers_kept(model, cache_dir)
