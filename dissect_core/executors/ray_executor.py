"""The Ray executor: image chunks on a pool of probe actors, neuron blocks as tasks, bulk rows on shared storage.

The driver (the CLI or the worker process) connects to a cluster (`ray_address`, else RAY_ADDRESS, else a new
local one) and shuts it down in `finally` when it started it. Each probe actor loads the target and the encoder
once, from the config, on the device the config names (GPUs are requested from the configuration,
`gpus_per_actor`, never from the driver's own `torch.cuda.is_available()`). A chunk's task writes its rows to
the shared store by chunk id, atomically, and returns only its readable-image mask and its neurons' top images;
nothing accumulates in an actor across tasks, so an actor Ray restarts after a crash (`max_restarts=-1`) reruns
its task (`max_task_retries=-1`) to the same files and the same result. The driver merges the top images exactly
(stable order), then each layer's blocks of neurons run as tasks that read their own columns from the store and
return their totals' partials, labels and per-neuron evaluations (the tasks that run the scoring kernel, totals,
fold totals and the null, ask for the config's GPUs per actor and run it there in torch when it gives GPUs); the
driver combines the partials (log p(m)), the p-values across the layer and the summary.

The result a run returns carries every layer's activations and the image embeddings (the app stores them for its
pages) as matrices mapped from the store's row files (`ShardStore.map_rows`), which the driver assembles chunk by
chunk, and the driver's factored cosines read unit image embeddings mapped the same way: the driver holds
file-backed pages the kernel can drop, not anonymous copies. The run's folder is removed when the session ends;
the mapped files live on (unnamed) until the result lets go of them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import ray
import torch
from torch import Tensor

from dissect_core.activations import RecordedLayer
from dissect_core.analysis.outputs import ModelOutputs
from dissect_core.config import DissectConfig
from dissect_core.data.probe import ProbeSet
from dissect_core.encoders import ImageTextEncoder, load_encoder
from dissect_core.evaluation.evaluate import (
    EvaluationSettings,
    ScoreFn,
    UnitEvaluations,
    evaluate_units,
    joined_units,
    layer_evaluations,
)
from dissect_core.evaluation.signals import ConceptSignals
from dissect_core.executors import LayerEvaluator
from dissect_core.executors.store import ShardStore
from dissect_core.models.targets import Target, load_target
from dissect_core.probe_pass import loader_workers
from dissect_core.progress import Progress
from dissect_core.results import LayerEvaluation, NeuronEvaluation
from dissect_core.similarity.cosine import CosineSource
from dissect_core.similarity.kernel import ConceptPartials
from dissect_core.stages.evaluation import block_fold_labels, fold_totals, null_columns, null_sd_of_columns
from dissect_core.stages.partition import Span, image_chunks, neuron_blocks
from dissect_core.stages.probe import ChunkPass, merge_top_images, merged_pass, probe_chunk
from dissect_core.stages.scoring import (
    BlockLabels,
    BlockTotals,
    block_scores,
    block_totals,
    check_blocks,
    dense_cosines_fit,
    label_block,
    layer_cosines,
    layer_log_p_concept,
    needs_layer_normaliser,
    unit_rows,
)
from dissect_core.tensor_files import PART_BYTES

#: CPUs each actor and task claims: fractional, so Ray Data-style pipelines never wait for a CPU the actors hold.
ACTOR_CPUS = 0.5
#: Actors when the config names none and asks for no GPUs.
DEFAULT_CPU_ACTORS = 2
#: Images per chunk when the executor is not told: this many batches.
DEFAULT_CHUNK_BATCHES = 16
#: Seconds between checks of `should_stop` while the cluster works.
_POLL_S = 0.25
#: The store's row file of the readable images' embeddings [N, D], and of the same normalised to unit rows.
IMAGE_EMBEDDINGS = "image-embeddings"
UNIT_IMAGE_EMBEDDINGS = "unit-image-embeddings"
#: The target's outputs kept per image (row files); the rest of a chunk's outputs is the same in every chunk.
_OUTPUT_ROWS = ("logits", "classifier_inputs")


def _rows_per_part(width: int) -> int:
    """Return how many float32 rows of `width` values the driver writes to a row file at a time (one part,
    `tensor_files.PART_BYTES`)."""
    return max(1, PART_BYTES // max(1, 4 * width))


def gpus_per_actor(config: DissectConfig) -> float:
    """Return the GPUs each probe actor asks for: the config's, else 1 when its device is CUDA, else 0."""
    if config.gpus_per_actor is not None:
        return float(config.gpus_per_actor)
    return 1.0 if (config.device or "").startswith("cuda") else 0.0


def actor_device(config: DissectConfig) -> str:
    """Return the device the probe actors run on: the config's, else `cuda` when they get GPUs, else `cpu`."""
    return config.device or ("cuda" if gpus_per_actor(config) > 0 else "cpu")


def kernel_device(config: DissectConfig) -> str:
    """Return where the block tasks run soft-WPMI's and WPMI's kernel: `cuda` (the GPU Ray gave the task) when the
    config gives each actor GPUs (`gpus_per_actor`), else `cpu` (the compiled kernel); never from this process's
    own `torch.cuda.is_available()`."""
    return "cuda" if gpus_per_actor(config) > 0 else "cpu"


def block_task_options(config: DissectConfig, *, kernel: bool) -> dict[str, Any]:
    """Return the Ray options of a block task: fractional CPUs, and, for a task that runs the scoring kernel
    (totals, fold totals, the null), the config's GPUs per actor (`gpus_per_actor`)."""
    return {"num_cpus": ACTOR_CPUS, "num_gpus": gpus_per_actor(config) if kernel else 0.0, "max_retries": 3}


@dataclass(frozen=True)
class ChunkSummary:
    """What a chunk's task returns to the driver: its span, readable-image mask, each layer's kind, width and top
    images (activations left in the store), and where it ran (node id, process id)."""

    span: Span
    valid: Tensor
    tops: dict[str, RecordedLayer]
    node_id: str
    pid: int


class ProbeWorker:
    """A probe actor: the target and the encoder loaded once; each call runs one chunk and stores its rows."""

    def __init__(self, config: DissectConfig) -> None:
        device = torch.device(actor_device(config))
        self.config = config
        self.target: Target = load_target(config.model, config.weights, config.checkpoint, device, config.preprocessing)
        self.encoder: ImageTextEncoder = load_encoder(config.encoder, device)

    def run(
        self,
        probe: ProbeSet,
        span: Span,
        embed_images: bool,
        layers: list[str],
        record_outputs: bool,
        store_root: str,
        n_blocks: int,
    ) -> ChunkSummary:
        """Run the probe stage on one chunk, store its rows by chunk and neuron block, return its summary."""
        chunk = probe_chunk(
            probe,
            span,
            self.target,
            self.encoder,
            self.config,
            embed_images=embed_images,
            layers=layers,
            record_outputs=record_outputs,
            workers=loader_workers(self.target, len(span), self.config.batch_size),
        )
        store = ShardStore(Path(store_root))
        outputs = None if chunk.outputs is None else asdict(chunk.outputs)
        node_id, pid = ray.get_runtime_context().get_node_id(), os.getpid()
        tops = {}
        for name, recorded in chunk.layers.items():
            for block in neuron_blocks(recorded.activations.shape[1], n_blocks):
                columns = recorded.activations[:, block.start : block.stop]
                store.write_block(name, block.index, span.index, columns, chunk.valid)
            empty = torch.empty(0, recorded.activations.shape[1])
            tops[name] = RecordedLayer(
                recorded.kind, empty, recorded.top_values, recorded.top_indices, recorded.top_maps
            )
        store.write_chunk(span.index, chunk.embeddings, outputs, {"node_id": node_id, "pid": pid})  # last: complete
        return ChunkSummary(span, chunk.valid, tops, node_id, pid)


@dataclass(frozen=True)
class _BlockInputs:
    """What a layer's block tasks share: the store, how the layer's rows are stored (chunks, neuron blocks), the
    text embeddings and the similarity function with its parameters."""

    store_root: str
    layer: str
    n_chunks: int
    stored_blocks: list[Span]
    image_rows: tuple[int, int]  # the shape [N, D] of the readable images' embeddings in the store
    unit_rows: bool  # whether the store holds them normalised too (the driver's cosines are factored)
    text_embeddings: Tensor
    similarity: str
    params: dict[str, Any]
    device: str  # where the kernel tasks run the scoring kernel (`kernel_device`)

    def columns(self, block: Span) -> Tensor:
        """Return neurons block.start..block.stop-1 over every readable image, from the stored blocks they span."""
        store = ShardStore(Path(self.store_root))
        parts = []
        for stored in self.stored_blocks:
            start, stop = max(block.start, stored.start), min(block.stop, stored.stop)
            if start < stop:
                rows = store.read_block(self.layer, stored.index, self.n_chunks)
                parts.append(rows[:, start - stored.start : stop - stored.start])
        return torch.cat(parts, dim=1)

    def cosines(self) -> CosineSource:
        """Return the image x concept cosines of every readable image, as the driver builds them."""
        store = ShardStore(Path(self.store_root))
        embeddings = store.map_rows(IMAGE_EMBEDDINGS, *self.image_rows)
        unit = store.map_rows(UNIT_IMAGE_EMBEDDINGS, *self.image_rows) if self.unit_rows else None
        return layer_cosines(embeddings, self.text_embeddings, unit)


def _block_data(inputs: _BlockInputs, block: Span) -> tuple[CosineSource, Tensor]:
    """Return the cosines of every readable image and one block's activations, read from the store."""
    return inputs.cosines(), inputs.columns(block)


def _score_totals_task(inputs: _BlockInputs, block: Span) -> tuple[BlockTotals, ConceptPartials]:
    """Return a block's soft-WPMI/WPMI totals and their log p(m) partials."""
    cosine, activations = _block_data(inputs, block)
    totals = block_totals(inputs.similarity, inputs.params, cosine, activations, torch.device(inputs.device))
    return totals, totals.partials


def _label_task(
    inputs: _BlockInputs,
    block: Span,
    totals: BlockTotals | None,
    log_p: np.ndarray | None,
    concepts: list[str],
    search_top_k: int,
) -> BlockLabels:
    """Return a block's labels (from its totals and the layer's log p(m) where the similarity needs them)."""
    cosine, activations = _block_data(inputs, block)
    scores = block_scores(inputs.similarity, inputs.params, cosine, activations, totals, log_p)
    return label_block(scores, concepts, block.start, activations, search_top_k)


def _fold_totals_task(
    inputs: _BlockInputs, block: Span, folds: Tensor, n_folds: int
) -> tuple[list[BlockTotals], list[ConceptPartials]]:
    """Return a block's totals on each fold's training images and their partials, per fold."""
    cosine, activations = _block_data(inputs, block)
    device = torch.device(inputs.device)
    totals = fold_totals(inputs.similarity, inputs.params, cosine, activations, folds, n_folds, device)
    return totals, [entry.partials for entry in totals]


@dataclass(frozen=True)
class _EvaluationInputs:
    """What every block's evaluation shares: folds, concepts, settings, the signals' settings, image labels."""

    folds: Tensor
    concepts: list[str]
    settings: EvaluationSettings
    simulation: str
    a: float
    log_normalisers: Tensor | None
    image_labels: list[str | None] | None


def _signals(cosine: CosineSource, shared: _EvaluationInputs) -> ConceptSignals:
    return ConceptSignals(cosine, shared.simulation, shared.a, shared.log_normalisers)


def _evaluate_task(
    inputs: _BlockInputs,
    shared: _EvaluationInputs,
    block: Span,
    label_index: Tensor,
    totals: list[BlockTotals] | None,
    fold_log_p: list[np.ndarray] | None,
) -> UnitEvaluations:
    """Return a block's per-neuron evaluations."""
    cosine, activations = _block_data(inputs, block)
    fold_labels = block_fold_labels(inputs.similarity, inputs.params, cosine, activations, totals, fold_log_p)
    return evaluate_units(
        fold_labels,
        _signals(cosine, shared),
        activations,
        label_index,
        shared.folds,
        shared.concepts,
        shared.settings,
        shared.image_labels,
    )


def _null_task(inputs: _BlockInputs, shared: _EvaluationInputs) -> float:
    """Return the layer's permutation-null sd from the columns it samples, read from their blocks."""
    cosine = inputs.cosines()
    n_neurons = inputs.stored_blocks[-1].stop
    wanted = null_columns(cosine.n_images, n_neurons)
    parts = []
    for block in inputs.stored_blocks:
        inside = wanted[(wanted >= block.start) & (wanted < block.stop)]
        if len(inside):
            parts.append(inputs.columns(block)[:, inside - block.start])
    return null_sd_of_columns(
        inputs.similarity,
        inputs.params,
        cosine,
        _signals(cosine, shared),
        torch.cat(parts, dim=1),
        wanted,
        n_neurons,
        shared.folds,
        shared.settings.n_folds,
        torch.device(inputs.device),
    )


#: The block tasks that run the scoring kernel (on a GPU when the config gives the actors GPUs).
_KERNEL_TASKS = (_score_totals_task, _fold_totals_task, _null_task)


class RayExecutor:
    """Runs the stages on a Ray cluster: chunks of `chunk_images` images on `actors` probe actors, each layer in
    `neuron_blocks` blocks of neurons (default: one per actor)."""

    def __init__(
        self,
        config: DissectConfig,
        *,
        chunk_images: int | None = None,
        n_blocks: int | None = None,
    ) -> None:
        self.config = config
        self.chunk_images = chunk_images or DEFAULT_CHUNK_BATCHES * config.batch_size
        self.gpus = gpus_per_actor(config)
        self.n_actors = config.actors
        self.n_blocks = n_blocks
        self.description = "ray"
        self.chunk_nodes: dict[int, str] = {}  # chunk -> the node that ran it, for the record and the tests
        self.chunk_runs: list[int] = []  # every chunk result the driver merged, in arrival order
        self._store: ShardStore | None = None
        self._n_chunks: dict[str, int] = {}  # layer -> chunks its block files span
        self._images: Tensor | None = None  # the readable images' embeddings, mapped from the store's row file
        self._unit_images: Tensor | None = None  # the same normalised, when the driver's cosines are factored
        self._report: Progress = _ignore
        self._check_stop: Callable[[], None] = _nothing
        self._actors: list[Any] = []
        self._layers: dict[str, tuple[_BlockInputs, list[Span]]] = {}  # layer -> its block tasks' inputs, blocks
        self.images_per_second: float | None = None  # over the cluster, once the probe pass ran there

    @contextmanager
    def session(self, cache_dir: Path | None, report: Progress, check_stop: Callable[[], None]) -> Iterator[None]:
        """Connect to the cluster (starting a local one unless RAY_ADDRESS or `ray_address` names one), hold the
        run's shard folder under `cache_dir` (which every node must see), and release both at the end."""
        started = not ray.is_initialized()
        if started:
            ray.init(address=self.config.ray_address, include_dashboard=False, log_to_driver=False)
        # Without a cache folder the shards go to a local temporary folder: fine for a one-machine cluster only.
        if cache_dir is None:
            shards = Path(tempfile.mkdtemp(prefix="neuron-atlas-ray-"))
        else:
            shards = Path(cache_dir) / "ray-shards" / uuid.uuid4().hex
        self._store = ShardStore(shards)
        self._report, self._check_stop = report, check_stop
        try:
            if self.n_actors is None:
                gpus = ray.cluster_resources().get("GPU", 0.0)
                self.n_actors = max(1, int(gpus // self.gpus)) if self.gpus > 0 else DEFAULT_CPU_ACTORS
            if self.n_blocks is None:
                self.n_blocks = self.n_actors
            yield
            self.description = self._describe()
        finally:
            self._stop_actors()
            shutil.rmtree(shards, ignore_errors=True)
            if started:
                ray.shutdown()

    def _describe(self) -> str:
        """Return the run record's executor fact: actors, nodes and images/s when the probe pass ran here."""
        description = f"ray: {self.n_actors} actors"
        nodes = len(set(self.chunk_nodes.values()))
        if nodes:
            description += f" on {nodes} node{'s' if nodes > 1 else ''}"
        if self.images_per_second is not None:
            description += f", {self.images_per_second:,.0f} images/s"
        return description

    def _stop_actors(self) -> None:
        for actor in self._actors:
            ray.kill(actor, no_restart=True)
        self._actors = []

    def _wait(self, refs: list[Any], stage: str) -> list[Any]:
        """Return the results of `refs` in order, reporting `stage` progress and stopping the work on cancel."""
        pending = {ref: position for position, ref in enumerate(refs)}
        results: list[Any] = [None] * len(refs)
        self._report(stage, 0, len(refs))
        try:
            while pending:
                self._check_stop()
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=_POLL_S)
                for ref in ready:
                    position = pending.pop(ref)
                    results[position] = ray.get(ref)
                    self._report(stage, len(refs) - len(pending), len(refs))
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        return results

    def fresh_pass(
        self,
        probe: ProbeSet,
        target: Target,
        encoder: ImageTextEncoder,
        config: DissectConfig,
        cached_embeddings: Tensor | None,
        layers: list[str],
        record_outputs: bool,
        report: Progress,
        check_stop: Callable[[], None],
    ) -> tuple[Tensor, dict[str, RecordedLayer], Tensor, ModelOutputs | None]:
        """Return what the local fresh pass returns, the chunks run on the probe actors."""
        assert self._store is not None and self.n_actors is not None and self.n_blocks is not None
        spans = image_chunks(len(probe), config.batch_size, self.chunk_images)
        worker = ray.remote(ProbeWorker).options(
            num_cpus=ACTOR_CPUS,
            num_gpus=self.gpus,
            max_restarts=-1,
            max_task_retries=-1,
            scheduling_strategy="SPREAD",
        )
        self._actors = [worker.remote(config) for _ in range(min(self.n_actors, len(spans)))]
        probe_ref = ray.put(probe)
        tops: dict[str, RecordedLayer] = {}
        valid = torch.zeros(len(probe), dtype=torch.bool)
        started = time.perf_counter()
        images_done = 0
        stage = f"probe pass (ray, {len(spans)} chunks)"

        def merge(summary: ChunkSummary) -> None:
            nonlocal images_done
            self.chunk_runs.append(summary.span.index)
            self.chunk_nodes[summary.span.index] = summary.node_id
            valid[summary.span.start : summary.span.stop] = summary.valid
            for name, part in summary.tops.items():
                parts = [part] if name not in tops else [tops[name], part]
                values, indices, maps = merge_top_images(parts, config.n_top_images)
                tops[name] = RecordedLayer(part.kind, part.activations, values, indices, maps)
            images_done += len(summary.span)
            report(stage, images_done, len(probe))

        embed = cached_embeddings is None
        args = (embed, layers, record_outputs, str(self._store.root), self.n_blocks)
        try:
            queue = list(spans)
            running: dict[Any, Any] = {}
            idle = list(self._actors)
            report(stage, 0, len(probe))
            while queue or running:
                check_stop()
                while queue and idle:
                    actor = idle.pop()
                    running[actor.run.remote(probe_ref, queue.pop(0), *args)] = actor
                ready, _ = ray.wait(list(running), num_returns=1, timeout=_POLL_S)
                for ref in ready:
                    idle.append(running.pop(ref))
                    merge(ray.get(ref))
        except BaseException:
            self._stop_actors()  # their running chunks die with them (an actor task cannot be force-cancelled)
            raise
        self._stop_actors()
        seconds = time.perf_counter() - started
        self.images_per_second = len(probe) / seconds if seconds > 0 else 0.0
        for name in layers:
            self._n_chunks[name] = len(spans)
        return self._gathered(spans, tops, valid, embed, layers, record_outputs, cached_embeddings)

    def _gathered(
        self,
        spans: list[Span],
        tops: dict[str, RecordedLayer],
        valid: Tensor,
        embedded: bool,
        layers: list[str],
        record_outputs: bool,
        cached_embeddings: Tensor | None,
    ) -> tuple[Tensor, dict[str, RecordedLayer], Tensor, ModelOutputs | None]:
        """Return the run's embeddings and layers mapped from row files the store assembles chunk by chunk (one
        chunk's rows in memory at a time), with the mask and the outputs merged from the chunks."""
        assert self._store is not None and self.n_blocks is not None
        store = self._store
        chunks = [ChunkPass(span, valid[span.start : span.stop], None, {}, None) for span in spans]
        _, _, mask, _ = merged_pass(chunks, [], self.config.n_top_images, record_outputs=False)
        outputs = self._stored_outputs(spans, valid) if record_outputs else None
        recorded = {}
        for name in layers:
            if name not in tops:
                continue
            n_units = tops[name].top_indices.shape[0]
            blocks = neuron_blocks(n_units, self.n_blocks)
            rows = self._readable_layer_rows(name, spans, blocks, valid)  # the rows the run reads, and no copy of them
            activations = store.write_rows(name, int(valid.sum()), n_units, rows)
            top = tops[name]
            recorded[name] = RecordedLayer(top.kind, activations, top.top_values, top.top_indices, top.top_maps)
        if cached_embeddings is not None:
            embeddings = self._store_embeddings(cached_embeddings)
        else:
            assert embedded
            width = next(rows.shape[1] for rows in self._chunk_embeddings(spans[:1], valid))
            rows = self._readable_embeddings(spans, valid)
            embeddings = self._images = store.write_rows(IMAGE_EMBEDDINGS, int(valid.sum()), width, rows)
        return embeddings, recorded, mask, outputs

    def _stored_outputs(self, spans: list[Span], valid: Tensor) -> ModelOutputs | None:
        """Return the target's outputs on the readable images (the classifier's inputs only when every chunk that
        ran recorded them; None when a chunk's output was unusable), their rows mapped from row files written one
        chunk at a time."""
        assert self._store is not None
        store = self._store
        ran = [span for span in spans if valid[span.start : span.stop].any()]
        first: dict[str, Any] = {}
        widths: dict[str, int] = {}
        with_inputs = True
        for span in ran:  # a first read for what the chunks agree on; their rows are read again one by one below
            stored = store.read_outputs(span.index)
            if stored is None:
                return None
            if not first:
                first = {key: value for key, value in stored.items() if key not in _OUTPUT_ROWS}
                widths = {name: stored[name].shape[1] for name in _OUTPUT_ROWS if stored[name] is not None}
            with_inputs = with_inputs and stored["classifier_inputs"] is not None

        def chunk_rows(name: str) -> Iterator[tuple[int, Tensor]]:
            first = 0
            for span in ran:
                stored = store.read_outputs(span.index)
                assert stored is not None
                readable = stored[name][valid[span.start : span.stop]]
                yield first, readable
                first += len(readable)

        def rows(name: str) -> Tensor:  # the readable images' rows only, as the run reads them: no copy of them
            return store.write_rows(f"outputs-{name}", int(valid.sum()), widths[name], chunk_rows(name))

        if not with_inputs:
            return ModelOutputs(logits=rows("logits"))
        return ModelOutputs(
            logits=rows("logits"),
            classifier_layer=first["classifier_layer"],
            classifier_inputs=rows("classifier_inputs"),
            classifier_weight=first["classifier_weight"],
            classifier_bias=first["classifier_bias"],
        )

    def _readable_layer_rows(
        self, layer: str, spans: list[Span], blocks: list[Span], valid: Tensor
    ) -> Iterator[tuple[int, Tensor]]:
        """Yield (first readable row, the chunk's readable images' activations [readable in chunk, K]) per chunk, its
        neuron blocks joined, in probe order; a chunk that stored no rows (no readable image) yields none."""
        assert self._store is not None
        first = 0
        for span in spans:
            parts = [self._store.read_block_chunk(layer, block.index, span.index) for block in blocks]
            if all(part is not None for part in parts):
                rows = torch.cat([part for part in parts if part is not None], dim=1)[valid[span.start : span.stop]]
                yield first, rows
                first += len(rows)

    def _chunk_embeddings(self, spans: list[Span], valid: Tensor) -> Iterator[Tensor]:
        """Yield each chunk's readable images' embeddings [readable in chunk, D]."""
        assert self._store is not None
        for span in spans:
            embeddings, _ = self._store.read_chunk(span.index)
            assert embeddings is not None
            yield embeddings[valid[span.start : span.stop]]

    def _readable_embeddings(self, spans: list[Span], valid: Tensor) -> Iterator[tuple[int, Tensor]]:
        """Yield (first readable row, embeddings) per chunk, in probe order."""
        first = 0
        for rows in self._chunk_embeddings(spans, valid):
            yield first, rows
            first += len(rows)

    def _store_embeddings(self, embeddings: Tensor) -> Tensor:
        """Store the readable images' embeddings (given whole, from the cache) as the block tasks' row file; return
        them mapped from it."""
        assert self._store is not None
        n_images, width = embeddings.shape
        step = _rows_per_part(width)
        parts = ((start, embeddings[start : start + step]) for start in range(0, n_images, step))
        self._images = self._store.write_rows(IMAGE_EMBEDDINGS, n_images, width, parts)
        return self._images

    def _layer_inputs(
        self, layer: str, activations: Tensor, image_embeddings: Tensor, text: Tensor, similarity: str,
        params: dict[str, Any],
    ) -> tuple[_BlockInputs, list[Span]]:  # fmt: skip
        """Return the layer's block tasks' shared inputs and the blocks they compute, storing what the store lacks
        (a layer or the embeddings that a cached probe pass gave)."""
        assert self._store is not None and self.n_blocks is not None
        if self._images is None or self._images.shape != image_embeddings.shape:
            self._store_embeddings(image_embeddings)
        n_images, n_neurons = activations.shape
        stored = neuron_blocks(n_neurons, self.n_blocks)
        if layer not in self._n_chunks:
            every = torch.ones(n_images, dtype=torch.bool)
            for block in stored:
                self._store.write_block(layer, block.index, 0, activations[:, block.start : block.stop], every)
            self._n_chunks[layer] = 1
        check_blocks(similarity, n_images, n_neurons)
        inputs = _BlockInputs(
            str(self._store.root),
            layer,
            self._n_chunks[layer],
            stored,
            (image_embeddings.shape[0], image_embeddings.shape[1]),
            self._unit_images is not None,
            text,
            similarity,
            dict(params),
            kernel_device(self.config),
        )
        # rank_reorder draws from one random stream across the layer's neurons: one block of all of them
        blocks = [Span(0, 0, n_neurons)] if similarity == "rank_reorder" else stored
        self._layers[layer] = (inputs, blocks)
        return inputs, blocks

    def _task(self, function: Callable[..., Any], num_returns: int = 1) -> Any:
        options = block_task_options(self.config, kernel=function in _KERNEL_TASKS)
        return ray.remote(function).options(num_returns=num_returns, **options)

    def cosines(self, image_embeddings: Tensor, text_embeddings: Tensor) -> CosineSource:
        """Return `layer_cosines`' cosines, the factored matrix's unit image embeddings (when the dense one does not
        fit) written to the store in parts and mapped from there (by the driver and the block tasks) rather than
        normalised whole in memory."""
        if dense_cosines_fit(len(image_embeddings), len(text_embeddings)):
            return layer_cosines(image_embeddings, text_embeddings)
        assert self._store is not None
        n_images, width = image_embeddings.shape
        parts = unit_rows(image_embeddings, _rows_per_part(width))
        self._unit_images = self._store.write_rows(UNIT_IMAGE_EMBEDDINGS, n_images, width, parts)
        return layer_cosines(image_embeddings, text_embeddings, self._unit_images)

    def label_layer(
        self,
        layer: str,
        activations: Tensor,
        cosine: CosineSource,
        image_embeddings: Tensor,
        text_embeddings: Tensor,
        similarity: str,
        params: dict[str, Any],
        concepts: Sequence[str],
        search_top_k: int,
    ) -> BlockLabels:
        """Return the layer's labels, scored block by block on the cluster."""
        inputs, blocks = self._layer_inputs(layer, activations, image_embeddings, text_embeddings, similarity, params)
        inputs_ref = ray.put(inputs)
        totals_refs: list[Any] = [None] * len(blocks)
        log_p_ref = None
        if needs_layer_normaliser(similarity):
            pairs = [self._task(_score_totals_task, 2).remote(inputs_ref, block) for block in blocks]
            totals_refs = [pair[0] for pair in pairs]
            partials = self._wait([pair[1] for pair in pairs], "score blocks")
            log_p_ref = ray.put(layer_log_p_concept(partials))
        concepts_ref = ray.put(list(concepts))
        labelled = self._wait(
            [
                self._task(_label_task).remote(
                    inputs_ref, block, totals_refs[number], log_p_ref, concepts_ref, search_top_k
                )
                for number, block in enumerate(blocks)
            ],
            "label blocks",
        )
        return BlockLabels(
            [neuron for part in labelled for neuron in part.neurons], torch.cat([part.top_indices for part in labelled])
        )

    def layer_evaluator(self, layer: str) -> LayerEvaluator | None:
        """Return the layer's evaluation on the cluster (`evaluate_layer` with the layer bound)."""
        return partial(self.evaluate_layer, layer)

    def evaluate_layer(
        self,
        layer: str,
        score_fn: ScoreFn,
        cosine: CosineSource,
        signals: ConceptSignals,
        activations: Tensor,
        label_index: Tensor,
        folds: Tensor,
        concepts: Sequence[str],
        settings: EvaluationSettings,
        image_labels: Sequence[str | None] | None,
    ) -> tuple[list[NeuronEvaluation], LayerEvaluation]:
        """Return the layer's evaluation: fold totals, labels and per-neuron results per block on the cluster,
        the null as one task, the p-values across the layer on the driver."""
        inputs, blocks = self._layers[layer]
        similarity = inputs.similarity
        inputs_ref = ray.put(inputs)
        shared = _EvaluationInputs(
            folds=folds,
            concepts=list(concepts),
            settings=settings,
            simulation=signals.simulation,
            a=signals.a,
            log_normalisers=signals.log_normalisers,
            image_labels=None if image_labels is None else list(image_labels),
        )
        shared_ref = ray.put(shared)
        null_ref = self._task(_null_task).remote(inputs_ref, shared_ref)
        totals_refs: list[Any] = [None] * len(blocks)
        fold_log_p_ref = None
        if needs_layer_normaliser(similarity):
            pairs = [
                self._task(_fold_totals_task, 2).remote(inputs_ref, block, folds, settings.n_folds) for block in blocks
            ]
            totals_refs = [pair[0] for pair in pairs]
            partials = self._wait([pair[1] for pair in pairs], "evaluate blocks (folds)")
            fold_log_p = [layer_log_p_concept([part[fold] for part in partials]) for fold in range(settings.n_folds)]
            fold_log_p_ref = ray.put(fold_log_p)
        units = self._wait(
            [
                self._task(_evaluate_task).remote(
                    inputs_ref,
                    shared_ref,
                    block,
                    label_index[block.start : block.stop],
                    totals_refs[number],
                    fold_log_p_ref,
                )
                for number, block in enumerate(blocks)
            ],
            "evaluate blocks",
        )
        (null_sd,) = self._wait([null_ref], "evaluate null")
        return layer_evaluations(joined_units(units), null_sd, settings, signals.simulation, activations.shape[0])


def _ignore(stage: str, done: int, total: int) -> None:
    """Ignore a progress report."""


def _nothing() -> None:
    """Do nothing (no stop was asked for)."""
