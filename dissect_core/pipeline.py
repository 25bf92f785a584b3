"""The one service function that runs CLIP-Dissect end to end; the CLI, the worker and the demo call it."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import dissect_core
from dissect_core.activations import (
    POOLING,
    ActivationRecorder,
    RecordedLayer,
    box_around_peak,
    peak_location,
)
from dissect_core.config import DissectConfig
from dissect_core.data.cache import TensorCache, cache_key
from dissect_core.data.concepts import ConceptSet, load_concepts
from dissect_core.data.probe import ProbeSet, iter_decoded_batches, load_probe
from dissect_core.encoders import CONSE_PREFIX, ImageTextEncoder, load_encoder
from dissect_core.encoders.conse import parse_conse_spec
from dissect_core.errors import DissectError
from dissect_core.labels import label_neurons
from dissect_core.models.targets import Target, get_layer, load_target
from dissect_core.results import DissectionResult, LayerResult, TopImage
from dissect_core.similarity.cosine import DenseCosine, FactoredCosine
from dissect_core.similarity.functions import (
    ADAPTIVE_TOP_K,
    DEFAULT_MEMORY_BUDGET_BYTES,
    adaptive_top_k,
    get_similarity,
    image_log_normalisers,
    resolve_similarity_params,
    top_image_indices,
)

ProgressFn = Callable[[str, int, int], None]
#: The soft-WPMI settings used to score concepts typed after the run (stored with the run).
CONCEPT_SEARCH_DEFAULTS = {"a": 10.0, "lam": 1.0, "p_start": 0.998, "p_end": 0.97, "min_prob": 1e-7}


class DissectionCancelled(Exception):
    """Raised when `should_stop` asks a running dissection to stop."""


def choose_device(requested: str | None) -> torch.device:
    """Return the requested device, else CUDA when present, else CPU."""
    if requested:
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise DissectError(f"device {requested} was requested but CUDA is not available; use --device cpu")
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _validate(config: DissectConfig) -> None:
    get_similarity(config.similarity)
    if config.pool not in POOLING:
        raise DissectError(f"unknown pooling {config.pool!r}; use one of {', '.join(POOLING)}")
    if not config.layers:
        raise DissectError("no layers given; pass --layers NAME[,NAME...] (list them with `neuron-atlas layers`)")
    if config.n_top_images < 1:
        raise DissectError("n_top_images must be at least 1")
    if config.prompt_template is not None and "{}" not in config.prompt_template:
        raise DissectError(
            f"prompt template {config.prompt_template!r} has no {{}} for the concept; write e.g. 'a photo of a {{}}'"
        )
    if config.encoder.startswith(CONSE_PREFIX) and parse_conse_spec(config.encoder)[0] == config.model:
        raise DissectError(
            f"the encoder {config.encoder} is built on {config.model} itself, so its labels would only echo the "
            "network's own class predictions; use a ConSE encoder on another classifier, e.g. "
            "conse:efficientnet_lite2+minilm, or a CLIP model"
        )
    if config.batch_size < 1:
        raise DissectError("batch_size must be at least 1")


def _embed_concepts(
    encoder: ImageTextEncoder, concepts: ConceptSet, config: DissectConfig, cache: TensorCache
) -> Tensor:
    key = cache_key("text", encoder.identity, config.prompt_template, concepts.content_hash)
    cached = cache.load("text", key)
    if cached is not None:
        return cached["embeddings"]
    texts = concepts.concepts
    if config.prompt_template:
        texts = [config.prompt_template.format(concept) for concept in texts]
    embeddings = encoder.encode_texts(texts).float().cpu()
    cache.save("text", key, {"embeddings": embeddings})
    return embeddings


def _probe_pass(
    probe: ProbeSet,
    target: Target,
    encoder: ImageTextEncoder,
    config: DissectConfig,
    cache: TensorCache,
    report: ProgressFn,
    check_stop: Callable[[], None],
) -> tuple[Tensor, dict[str, RecordedLayer], Tensor]:
    """Return image embeddings, recorded layers and the readable-image mask, using caches where they hit."""
    image_key = cache_key("images", encoder.identity, encoder.preprocess_identity, probe.content_hash)
    layer_keys = {
        layer: cache_key(
            "activations",
            target.identity,
            layer,
            config.pool,
            config.n_top_images,
            asdict(target.preprocessing),
            probe.content_hash,
        )
        for layer in config.layers
    }
    cached_images = cache.load("images", image_key)
    recorded: dict[str, RecordedLayer] = {}
    valid: Tensor | None = cached_images["valid"] if cached_images else None
    for layer, key in layer_keys.items():
        hit = cache.load("activations", key)
        if hit is not None:
            recorded[layer] = RecordedLayer(
                hit["kind"], hit["activations"], hit["top_values"], hit["top_indices"], hit.get("top_maps")
            )
            valid = hit["valid"]
    missing_layers = [layer for layer in config.layers if layer not in recorded]
    if cached_images is not None and not missing_layers:
        return cached_images["embeddings"], recorded, valid

    n_images = len(probe)
    transforms = []
    if cached_images is None:
        transforms.append(encoder.image_transform)
    if missing_layers:
        transforms.append(target.preprocessing.transform())
    embeddings = torch.zeros(0)
    embedding_rows: dict[int, Tensor] = {}
    valid_mask = torch.zeros(n_images, dtype=torch.bool)
    total_batches = math.ceil(n_images / config.batch_size)
    workers = 2 if n_images > 4 * config.batch_size else 0
    recorder = ActivationRecorder(target.model, missing_layers, n_images, config.n_top_images, config.pool)
    with recorder:
        for batch_number, (good, _bad, tensors) in enumerate(
            iter_decoded_batches(probe, transforms, config.batch_size, num_workers=workers), start=1
        ):
            check_stop()
            if good:
                valid_mask[good] = True
                column = 0
                if cached_images is None:
                    for index, row in zip(good, encoder.encode_images(tensors[0]).cpu(), strict=True):
                        embedding_rows[index] = row
                    column = 1
                if missing_layers:
                    recorder.run_batch(tensors[column], good)
            report("probe pass", batch_number, total_batches)
    if not valid_mask.any():
        raise DissectError(f"none of the {n_images} probe images could be read; check the probe folder's files")
    if cached_images is None:
        embeddings = torch.stack([embedding_rows[i] for i in sorted(embedding_rows)])
        cache.save("images", image_key, {"embeddings": embeddings, "valid": valid_mask})
    else:
        embeddings = cached_images["embeddings"]
    if missing_layers:
        for layer, result in recorder.results().items():
            recorded[layer] = result
            cache.save(
                "activations",
                layer_keys[layer],
                {**asdict(result), "valid": valid_mask},
            )
    if valid is not None and not torch.equal(valid, valid_mask):
        raise DissectError("cached and fresh passes disagree on which images are readable; clear the cache dir")
    return embeddings, recorded, valid_mask


def _top_images(
    recorded: RecordedLayer, new_index: Tensor, image_ids: list[str]
) -> tuple[list[list[TopImage]], Tensor | None]:
    tops: list[list[TopImage]] = []
    for unit in range(recorded.top_indices.shape[0]):
        row = []
        for rank, (value, original) in enumerate(
            zip(recorded.top_values[unit].tolist(), recorded.top_indices[unit].tolist(), strict=True)
        ):
            index = int(new_index[original])
            peak = None
            box = (0.0, 0.0, 1.0, 1.0)
            if recorded.top_maps is not None:
                activation_map = recorded.top_maps[unit, rank]
                peak = peak_location(activation_map)
                box = box_around_peak(peak, tuple(activation_map.shape))
            row.append(TopImage(rank, index, image_ids[index], float(value), peak, box))
        tops.append(row)
    return tops, recorded.top_maps


def run_dissection(
    config: DissectConfig,
    *,
    cache_dir: Path | None = None,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
    data_dir: Path | None = None,
) -> DissectionResult:
    """Run CLIP-Dissect on every requested layer and return labels, top images and reusable artifacts."""
    report = progress or (lambda stage, done, total: None)

    def check_stop() -> None:
        if should_stop is not None and should_stop():
            raise DissectionCancelled("the dissection was cancelled")

    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(timings.get(stage, 0.0) + now - clock, 3)
        clock = now

    _validate(config)
    device = choose_device(config.device)
    report("load", 0, 4)
    probe = load_probe(config.probe, config.labels_file, config.max_images, data_dir=data_dir)
    params = resolve_similarity_params(config.similarity, config.similarity_params, len(probe))
    if "top_k" in params and params["top_k"] > len(probe):
        raise DissectError(
            f"top_k={params['top_k']} is larger than the probe set ({len(probe)} images); use a smaller top_k or "
            "more probe images"
        )
    report("load", 1, 4)
    concepts = load_concepts(config.concepts)
    report("load", 2, 4)
    target = load_target(config.model, config.weights, config.checkpoint, device)
    for layer in config.layers:
        get_layer(target.model, layer)
    report("load", 3, 4)
    encoder = load_encoder(config.encoder, device)
    report("load", 4, 4)
    lap("load")
    check_stop()

    cache = TensorCache(cache_dir)
    report("embed concepts", 0, 1)
    text_embeddings = _embed_concepts(encoder, concepts, config, cache)
    report("embed concepts", 1, 1)
    lap("embed concepts")
    check_stop()

    embeddings, recorded, valid = _probe_pass(probe, target, encoder, config, cache, report, check_stop)
    lap("probe pass")
    kept = valid.nonzero().squeeze(1)
    new_index = torch.cumsum(valid.long(), 0) - 1
    image_ids = [probe.images[i].content_hash for i in kept.tolist()]
    image_paths = [probe.images[i].path for i in kept.tolist()]
    skipped = [probe.images[i].path for i in (~valid).nonzero().squeeze(1).tolist()]
    n_images = len(kept)
    if "top_k" in params and params["top_k"] > n_images:
        raise DissectError(f"top_k={params['top_k']} is larger than the {n_images} readable probe images; lower top_k")

    dense_fits = n_images * len(concepts) * 4 <= DEFAULT_MEMORY_BUDGET_BYTES
    factored = FactoredCosine(embeddings, text_embeddings)
    cosine = DenseCosine(factored.dense()) if dense_fits else factored
    search_top_k = params.get("top_k", adaptive_top_k(ADAPTIVE_TOP_K["soft_wpmi"], n_images))
    search_params = {**CONCEPT_SEARCH_DEFAULTS, "top_k": search_top_k}
    if config.similarity == "soft_wpmi":
        search_params.update({k: v for k, v in params.items() if k in search_params})
    similarity_fn = get_similarity(config.similarity)

    layers: list[LayerResult] = []
    for number, layer in enumerate(config.layers, start=1):
        check_stop()
        activations = recorded[layer].activations[kept]
        scores = similarity_fn(cosine, activations, **params)
        neurons = label_neurons(scores, concepts.concepts)
        tops, maps = _top_images(recorded[layer], new_index, image_ids)
        layers.append(
            LayerResult(
                name=layer,
                kind=recorded[layer].kind,
                neurons=neurons,
                top_images=tops,
                activations=activations,
                top_indices=top_image_indices(activations, search_params["top_k"]),
                top_maps=maps,
            )
        )
        report("similarity", number, len(config.layers))
    lap("similarity")
    log_normalisers = image_log_normalisers(cosine, search_params["a"]).float()
    lap("normalisers")

    settings: dict[str, Any] = {
        **config.to_dict(),
        "similarity_params": params,
        "concept_search": search_params,
        "n_images": n_images,
        "n_concepts": len(concepts),
        "probe_hash": probe.content_hash,
        "concepts_hash": concepts.content_hash,
        "concept_set_name": concepts.name,
        "target_identity": target.identity,
        "encoder_identity": encoder.identity,
        "view": {"resize": target.preprocessing.resize, "crop": target.preprocessing.crop},
        "device": str(device),
        "code_version": dissect_core.__version__,
    }
    return DissectionResult(
        settings=settings,
        image_ids=image_ids,
        image_paths=image_paths,
        concepts=list(concepts.concepts),
        layers=layers,
        image_embeddings=embeddings,
        log_normalisers=log_normalisers,
        skipped_images=skipped,
        timings=timings,
    )
