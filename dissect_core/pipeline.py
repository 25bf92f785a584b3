"""The one service function that runs CLIP-Dissect end to end; the CLI, the worker and the demo call it."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import dissect_core
from dissect_core.activations import RecordedLayer, box_around_peak, peak_location
from dissect_core.allocator import tune_allocator
from dissect_core.analysis.coverage import vocabulary_spreads
from dissect_core.config import DissectConfig
from dissect_core.data.cache import TensorCache, cache_key
from dissect_core.data.concepts import ConceptSet, load_concepts
from dissect_core.data.probe import ProbeSet, load_probe
from dissect_core.encoders import ImageTextEncoder, load_encoder
from dissect_core.encoders.base import recognised_concepts
from dissect_core.errors import DissectError
from dissect_core.evaluation.cache import EvaluationCache, EvaluationInputs, evaluation_key
from dissect_core.evaluation.evaluate import EvaluationSettings, evaluate_layer
from dissect_core.evaluation.folds import fold_of_images
from dissect_core.evaluation.grading import graded_layer, label_coverages
from dissect_core.evaluation.signals import ConceptSignals
from dissect_core.executors import Executor, executor_for
from dissect_core.models.class_names import run_class_names
from dissect_core.models.targets import Target, get_layer, load_target
from dissect_core.probe_pass import probe_pass
from dissect_core.progress import Progress
from dissect_core.results import DissectionResult, LayerResult, TopImage
from dissect_core.run_record import InputIdentities, ResolvedSettings, RunFacts, RunRecord, weights_provenance
from dissect_core.similarity.cosine import CosineSource
from dissect_core.similarity.functions import (
    ADAPTIVE_TOP_K,
    CONCEPT_SEARCH_DEFAULTS,
    DEFAULT_MEMORY_BUDGET_BYTES,
    adaptive_top_k,
    get_similarity,
    resolve_similarity_params,
)
from dissect_core.similarity.row_summaries import image_row_summaries
from dissect_core.wiring.stage import wire_run


class DissectionCancelled(Exception):
    """Raised when `should_stop` asks a running dissection to stop."""


def choose_device(requested: str | None) -> torch.device:
    """Return the requested device, else CUDA when present, else CPU."""
    if requested:
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise DissectError(f"device {requested} was requested but CUDA is not available; use --device cpu")
        return torch.device(requested)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _embed_concepts(
    encoder: ImageTextEncoder, concepts: ConceptSet, config: DissectConfig, cache: TensorCache
) -> Tensor:
    """Return the concepts' text embeddings (prompt template applied), from the cache when it has them."""
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


def _top_images(
    recorded: RecordedLayer, new_index: Tensor, image_ids: list[str]
) -> tuple[list[list[TopImage]], Tensor | None]:
    """Return each neuron's top images (indexed among the readable images, with peak boxes) and their maps."""
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
                rows, cols = activation_map.shape
                box = box_around_peak(peak, (rows, cols))
            row.append(TopImage(rank, index, image_ids[index], float(value), peak, box))
        tops.append(row)
    return tops, recorded.top_maps


@dataclass
class _Inputs:
    """What a run loads before any pass: probe set, similarity parameters, concepts, target and encoder."""

    probe: ProbeSet
    params: dict[str, Any]
    concepts: ConceptSet
    target: Target
    encoder: ImageTextEncoder


@dataclass
class _Readable:
    """The probe images that could be read, and the paths of those that could not."""

    kept: Tensor  # probe indices of the readable images
    new_index: Tensor  # probe index -> index among the readable images
    image_ids: list[str]
    image_paths: list[str]
    image_labels: list[str | None]
    skipped: list[str]

    def folds(self, n_folds: int) -> Tensor:
        """Return each readable image's fold, stratified by the probe labels where the images have them."""
        return fold_of_images(self.image_ids, n_folds, self.image_labels)


class _StageTimer:
    """Seconds per stage, each lap adding the time since the previous one to its stage."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._clock = time.perf_counter()

    def lap(self, stage: str) -> None:
        """Add the seconds since the last lap to `stage`'s total."""
        now = time.perf_counter()
        self.timings[stage] = round(self.timings.get(stage, 0.0) + now - self._clock, 3)
        self._clock = now


def _no_progress(stage: str, done: int, total: int) -> None:
    """Ignore a progress report."""


def _stop_checker(should_stop: Callable[[], bool] | None) -> Callable[[], None]:
    """Return a function that raises DissectionCancelled once `should_stop` says so."""

    def check_stop() -> None:
        if should_stop is not None and should_stop():
            raise DissectionCancelled("the dissection was cancelled")

    return check_stop


def _load_inputs(
    config: DissectConfig,
    device: torch.device,
    data_dir: Path | None,
    cache_dir: Path | None,
    report: Progress,
    target: Target | None = None,
) -> _Inputs:
    """Return the probe set, similarity parameters, concept set, target (`target` when given, else the config's,
    loaded) and encoder, reporting each load."""
    report("load", 0, 4)
    probe = load_probe(config.probe, config.labels_file, config.max_images, data_dir=data_dir)
    params = resolve_similarity_params(config.similarity, config.similarity_params, len(probe))
    if "top_k" in params and params["top_k"] > len(probe):
        raise DissectError(
            f"top_k={params['top_k']} is larger than the probe set ({len(probe)} images); use a smaller top_k or "
            "more probe images"
        )
    report("load", 1, 4)
    concepts = load_concepts(config.concepts, cache_dir=cache_dir)
    report("load", 2, 4)
    if target is None:
        target = load_target(config.model, config.weights, config.checkpoint, device, config.preprocessing)
    else:
        target.model.eval().to(device)
    for layer in config.layers:
        get_layer(target.model, layer)
    report("load", 3, 4)
    encoder = load_encoder(config.encoder, device)
    report("load", 4, 4)
    return _Inputs(probe, params, concepts, target, encoder)


def _readable_images(probe: ProbeSet, valid: Tensor) -> _Readable:
    """Return which probe images were readable, their ids and paths, and the unreadable images' paths."""
    kept = valid.nonzero().squeeze(1)
    return _Readable(
        kept=kept,
        new_index=torch.cumsum(valid.long(), 0) - 1,
        image_ids=[probe.images[i].content_hash for i in kept.tolist()],
        image_paths=[probe.images[i].path for i in kept.tolist()],
        image_labels=[probe.images[i].label for i in kept.tolist()],
        skipped=[probe.images[i].path for i in (~valid).nonzero().squeeze(1).tolist()],
    )


def _readable_rows(rows: Tensor, readable: _Readable) -> Tensor:
    """Return the readable images' rows of `rows`: `rows` itself when it holds only those (every image was readable,
    or the Ray executor wrote only their rows), so a matrix mapped from a file is never copied; else a copy of them
    from every probe image's rows (the local executor's, probe order)."""
    return rows if len(readable.kept) == len(rows) else rows[readable.kept]


def _concepts_per_read(n_images: int, most: int = 2048) -> int:
    """Return how many cosine columns a read of every image's column takes at once: `most`, fewer where the columns,
    their sorted copy and a mask would pass the memory budget (at 1.28 M images, 69 columns instead of 9.8 GB)."""
    return max(1, min(most, DEFAULT_MEMORY_BUDGET_BYTES // (n_images * 4 * 3)))


def _concept_search_params(config: DissectConfig, params: dict[str, Any], n_images: int) -> dict[str, Any]:
    """Return the soft-WPMI settings stored for scoring typed concepts: the run's own where it used soft-WPMI."""
    search_top_k = params.get("top_k", adaptive_top_k(ADAPTIVE_TOP_K["soft_wpmi"], n_images))
    search_params: dict[str, Any] = {**CONCEPT_SEARCH_DEFAULTS, "top_k": search_top_k}
    if config.similarity == "soft_wpmi":
        search_params.update({k: v for k, v in params.items() if k in search_params})
    return search_params


def _score_layers(
    config: DissectConfig,
    inputs: _Inputs,
    recorded: dict[str, RecordedLayer],
    readable: _Readable,
    cosine: CosineSource,
    embeddings: tuple[Tensor, Tensor],
    search_top_k: int,
    executor: Executor,
    report: Progress,
    check_stop: Callable[[], None],
) -> list[LayerResult]:
    """Return each layer's labels and top images under the configured similarity function (`embeddings`: the
    image and text embeddings the cosines come from, for an executor that scores elsewhere); each of `recorded`'s
    layers is left holding the readable images' rows only."""
    layers: list[LayerResult] = []
    report("similarity", 0, len(config.layers))  # each stage reports its start (dissect_core.progress)
    for number, layer in enumerate(config.layers, start=1):
        check_stop()
        activations = _readable_rows(recorded[layer].activations, readable)
        # The recording keeps the readable rows only from here on, so a copy does not sit beside every image's rows
        recorded[layer] = replace(recorded[layer], activations=activations)
        labelled = executor.label_layer(
            layer,
            activations,
            cosine,
            *embeddings,
            config.similarity,
            inputs.params,
            inputs.concepts.concepts,
            search_top_k,
        )
        tops, maps = _top_images(recorded[layer], readable.new_index, readable.image_ids)
        layers.append(
            LayerResult(
                name=layer,
                kind=recorded[layer].kind,
                neurons=labelled.neurons,
                top_images=tops,
                activations=activations,
                top_indices=labelled.top_indices,
                top_maps=maps,
            )
        )
        report("similarity", number, len(config.layers))
    return layers


def _evaluation_skipped(config: DissectConfig, params: dict[str, Any], n_images: int) -> str | None:
    """Return why the labels cannot be scored on held-out images (None when they can)."""
    if config.n_folds == 0:
        return "n_folds is 0"
    if n_images < 2 * config.n_folds:
        return f"{n_images} probe images are too few for {config.n_folds} folds of at least 2"
    smallest_training_set = n_images - -(-n_images // config.n_folds)
    if params.get("top_k", 0) > smallest_training_set:
        return f"top_k={params['top_k']} is larger than a fold's {smallest_training_set} training images"
    return None


def _evaluation_inputs(
    config: DissectConfig,
    inputs: _Inputs,
    readable: _Readable,
    signals: ConceptSignals,
    settings: EvaluationSettings,
    folds: Tensor,
) -> EvaluationInputs:
    """Return what every layer's evaluation in this run depends on besides the layer: its cache key's shared part."""
    return EvaluationInputs(
        target=inputs.target.identity,
        pool=config.pool,
        preprocessing=asdict(inputs.target.preprocessing),
        probe_hash=inputs.probe.content_hash,
        encoder=inputs.encoder.identity,
        encoder_preprocessing=inputs.encoder.preprocess_identity,
        concept_hash=inputs.concepts.content_hash,
        prompt_template=config.prompt_template,
        similarity=config.similarity,
        similarity_params=dict(inputs.params),
        softmax_a=signals.a,
        settings=settings,
        image_ids=readable.image_ids,
        image_labels=readable.image_labels,
        folds=folds,
    )


def _evaluate_layers(
    config: DissectConfig,
    inputs: _Inputs,
    layers: list[LayerResult],
    readable: _Readable,
    cosine: CosineSource,
    signals: ConceptSignals,
    evaluations: EvaluationCache,
    executor: Executor,
    report: Progress,
    check_stop: Callable[[], None],
) -> list[LayerResult]:
    """Return the layers with every neuron's label scored out of fold (see dissect_core.evaluation), each layer's
    evaluation from `evaluations` when an earlier run stored it."""
    similarity_fn = get_similarity(config.similarity)

    def score_fn(subset: CosineSource, activations: Tensor) -> Tensor:
        return similarity_fn(subset, activations, **inputs.params)

    folds = readable.folds(config.n_folds)
    settings = EvaluationSettings(
        n_folds=config.n_folds, simulation=config.simulation, false_discovery_rate=config.false_discovery_rate
    )
    position = {concept: index for index, concept in enumerate(inputs.concepts.concepts)}
    run_digest = _evaluation_inputs(config, inputs, readable, signals, settings, folds).digest()
    evaluated = []
    report("evaluate", 0, len(layers))
    for number, layer in enumerate(layers, start=1):
        check_stop()
        label_index = torch.tensor([position[neuron.label] for neuron in layer.neurons])
        key = evaluation_key(run_digest, layer.name, label_index)
        stored = evaluations.load(key, inputs.concepts.concepts, layer.n_units)
        if stored is None:
            stored = (executor.layer_evaluator(layer.name) or evaluate_layer)(
                score_fn,
                cosine,
                signals,
                layer.activations,
                label_index,
                folds,
                inputs.concepts.concepts,
                settings,
                readable.image_labels,
            )
            evaluations.save(key, *stored, inputs.concepts.concepts)
        neurons, summary = stored
        evaluated.append(
            replace(
                layer,
                neurons=[replace(n, evaluation=e) for n, e in zip(layer.neurons, neurons, strict=True)],
                evaluation=summary,
            )
        )
        report("evaluate", number, len(layers))
    return evaluated


def _run_record(
    config: DissectConfig,
    inputs: _Inputs,
    resolved: ResolvedSettings,
    readable: _Readable,
    timings: dict[str, float],
    class_names: Sequence[str] | None,
) -> RunRecord:
    """Return the run's record: the config, what the run resolved, its inputs' identities (the output units'
    `class_names` among them: a classifier's final layer shows them) and what it found."""
    identities = InputIdentities(
        probe_hash=inputs.probe.content_hash,
        concept_hash=inputs.concepts.content_hash,
        concept_set_name=inputs.concepts.name,
        target=inputs.target.identity,
        encoder=inputs.encoder.identity,
        class_names=None if class_names is None else tuple(class_names),
        code_version=dissect_core.__version__,
        sampled_from=inputs.probe.sampled_from,
        sample_seed=inputs.probe.sample_seed,
    )
    facts = RunFacts(
        n_images=len(readable.kept),
        n_concepts=len(inputs.concepts),
        skipped_images=tuple(readable.skipped),
        timings_s=dict(timings),
        weights=weights_provenance(config),
    )
    return RunRecord(config=config, resolved=resolved, identities=identities, facts=facts)


def run_dissection(
    config: DissectConfig,
    *,
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    data_dir: Path | None = None,
    target: Target | None = None,
    executor: Executor | None = None,
) -> DissectionResult:
    """Run CLIP-Dissect on every requested layer and return labels, top images, reusable artifacts and the run's
    record.

    `config` must have been checked (`config.validate()`, and its files by the caller, e.g. the app's
    `validate_config`): this checks only what depends on the probe set and the loaded model. `target`: a network
    already in memory (`dissect_core.api.dissect` passes one), used instead of loading `config.model`.
    `executor`: where the stages run (default: `config.executor`'s, see dissect_core.executors); the result does
    not depend on it.
    """
    executor = executor or executor_for(config)
    with executor.session(cache_dir, progress or _no_progress, _stop_checker(should_stop)):
        result = _dissect(config, cache_dir, progress, should_stop, data_dir, target, executor)
    facts = replace(result.record.facts, executor=executor.description)
    return replace(result, record=replace(result.record, facts=facts))


def _dissect(
    config: DissectConfig,
    cache_dir: Path | None,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
    data_dir: Path | None,
    target: Target | None,
    executor: Executor,
) -> DissectionResult:
    """Return `run_dissection`'s result, its stages run by `executor` (its session open)."""
    tune_allocator()  # before the first large tensor: batches then reuse heap pages instead of faulting them in
    report = progress or _no_progress
    check_stop = _stop_checker(should_stop)
    timer = _StageTimer()
    device = choose_device(config.device)
    inputs = _load_inputs(config, device, data_dir, cache_dir, report, target)
    class_names = run_class_names(config, inputs.target.model)  # given ones are checked before the long stages
    timer.lap("load")
    check_stop()

    cache = TensorCache(cache_dir)
    report("embed concepts", 0, 1)
    text_embeddings = _embed_concepts(inputs.encoder, inputs.concepts, config, cache)
    report("embed concepts", 1, 1)
    timer.lap("embed concepts")
    check_stop()

    embeddings, recorded, valid, probe_outputs = probe_pass(
        inputs.probe, inputs.target, inputs.encoder, config, cache, report, check_stop, executor.fresh_pass
    )
    timer.lap("probe pass")
    readable = _readable_images(inputs.probe, valid)
    n_images = len(readable.kept)
    if "top_k" in inputs.params and inputs.params["top_k"] > n_images:
        raise DissectError(
            f"top_k={inputs.params['top_k']} is larger than the {n_images} readable probe images; lower top_k"
        )

    cosine = executor.cosines(embeddings, text_embeddings)
    search_params = _concept_search_params(config, inputs.params, n_images)
    layers = _score_layers(
        config,
        inputs,
        recorded,
        readable,
        cosine,
        (embeddings, text_embeddings),
        search_params["top_k"],
        executor,
        report,
        check_stop,
    )
    timer.lap("similarity")
    # One read of the cosine rows gives the normalisers and each image's bar for carrying a concept.
    log_normalisers, carry_cosines = image_row_summaries(cosine, search_params["a"])
    timer.lap("normalisers")
    skipped_evaluation = _evaluation_skipped(config, inputs.params, n_images)
    signals = None
    if skipped_evaluation is None:
        signals = ConceptSignals(cosine, config.simulation, search_params["a"], log_normalisers)
        evaluations = EvaluationCache(cache_dir)
        layers = _evaluate_layers(
            config, inputs, layers, readable, cosine, signals, evaluations, executor, report, check_stop
        )
        timer.lap("evaluation")
    reference_spreads = vocabulary_spreads(cosine, carry_cosines, _concepts_per_read(n_images))
    coverages = label_coverages(
        cosine,
        carry_cosines,
        reference_spreads,
        inputs.concepts.concepts,
        {neuron.label for layer in layers for neuron in layer.neurons},
        readable.image_labels,
        signals=signals,  # the labels' folds and simulation give each concept's ceiling r
        folds=None if signals is None else readable.folds(config.n_folds),
        recognised=recognised_concepts(inputs.encoder, text_embeddings),
    )
    layers = [graded_layer(layer, coverages, embeddings, config.n_folds) for layer in layers]
    timer.lap("grading")
    wiring = wire_run(
        config,
        inputs.target,
        inputs.encoder,
        layers,
        readable.image_paths,
        probe_outputs,
        readable.kept,
        inputs.concepts.concepts,
        text_embeddings,
        class_names,
    )
    timer.lap("connections")
    preprocessing = inputs.target.preprocessing
    resolved = ResolvedSettings(
        device=str(device),
        preprocessing=asdict(preprocessing),
        similarity_params=dict(inputs.params),
        concept_search=search_params,
        view=(preprocessing.resize, preprocessing.crop),
        evaluation_skipped=skipped_evaluation,
    )
    return DissectionResult(
        record=_run_record(config, inputs, resolved, readable, timer.timings, class_names),
        image_ids=readable.image_ids,
        image_paths=readable.image_paths,
        concepts=list(inputs.concepts.concepts),
        layers=layers,
        image_embeddings=embeddings,
        log_normalisers=log_normalisers.float(),
        carry_cosines=carry_cosines,
        reference_spreads=reference_spreads,
        outputs=wiring.outputs,
        connections=wiring.connections,
        weight_concept_agreement=wiring.weight_concept_agreement,
    )
