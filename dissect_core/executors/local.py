"""The single-process executor: every stage in this process, over one chunk of every image and one block of every
neuron."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from torch import Tensor

from dissect_core.activations import RecordedLayer
from dissect_core.analysis.outputs import ModelOutputs
from dissect_core.config import DissectConfig
from dissect_core.data.probe import ProbeSet
from dissect_core.encoders import ImageTextEncoder
from dissect_core.executors import LayerEvaluator
from dissect_core.models.targets import Target
from dissect_core.probe_pass import fresh_local_pass
from dissect_core.progress import Progress
from dissect_core.similarity.cosine import CosineSource
from dissect_core.similarity.functions import get_similarity
from dissect_core.stages.scoring import BlockLabels, label_block, layer_cosines


class LocalExecutor:
    """Runs the stages in this process, as one chunk and one block."""

    description = "local"

    @contextmanager
    def session(self, cache_dir: Path | None, report: Progress, check_stop: Callable[[], None]) -> Iterator[None]:
        """Return a context with nothing to start or stop."""
        yield

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
        """Return the probe pass over one chunk of every image, in this process."""
        return fresh_local_pass(
            probe, target, encoder, config, cached_embeddings, layers, record_outputs, report, check_stop
        )

    def cosines(self, image_embeddings: Tensor, text_embeddings: Tensor) -> CosineSource:
        """Return `layer_cosines`: dense when it fits the memory budget, else factored (normalised in memory)."""
        return layer_cosines(image_embeddings, text_embeddings)

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
        """Return the layer's labels from its scores over every neuron at once."""
        scores = get_similarity(similarity)(cosine, activations, **params)
        return label_block(scores, concepts, 0, activations, search_top_k)

    def layer_evaluator(self, layer: str) -> LayerEvaluator | None:
        """Return None: every layer is evaluated in this process, as one block."""
        return None
