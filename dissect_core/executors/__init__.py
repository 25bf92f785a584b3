"""Where a dissection's stages run: `local` (this process, one chunk and one block) or `ray` (image chunks on an
actor pool, neuron blocks as tasks, on a Ray cluster). Both call the same stages (dissect_core.stages) and give
the same labels; `executor_for` picks the config's."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dissect_core.config import DissectConfig
from dissect_core.errors import DissectError

if TYPE_CHECKING:
    from torch import Tensor

    from dissect_core.activations import RecordedLayer
    from dissect_core.analysis.outputs import ModelOutputs
    from dissect_core.data.probe import ProbeSet
    from dissect_core.encoders import ImageTextEncoder
    from dissect_core.models.targets import Target
    from dissect_core.progress import Progress
    from dissect_core.results import LayerEvaluation, NeuronEvaluation
    from dissect_core.similarity.cosine import CosineSource
    from dissect_core.stages.scoring import BlockLabels

#: Evaluates one layer: `dissect_core.evaluation.evaluate.evaluate_layer`'s signature and result.
LayerEvaluator = Callable[..., "tuple[list[NeuronEvaluation], LayerEvaluation]"]
#: What `--executor ray` needs, and how to get it.
RAY_INSTALL_HINT = "install it with: pip install 'neuron-atlas[ray]'"


class Executor(Protocol):
    """Runs a dissection's shardable stages: the fresh probe pass, each layer's labels and their evaluation."""

    #: What the run record's facts call it (`local`, `ray: 2 actors on 2 nodes`), final once the run ended.
    description: str

    def session(
        self, cache_dir: Path | None, report: Progress, check_stop: Callable[[], None]
    ) -> AbstractContextManager[None]:
        """Return a context in which the stages may run (for Ray: a connected session, shut down if started)."""
        ...

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
        """Return a fresh probe pass's embeddings, layers, readable mask and outputs (`probe_pass` calls it for what
        its caches miss; see `dissect_core.probe_pass.fresh_local_pass`)."""
        ...

    def cosines(self, image_embeddings: Tensor, text_embeddings: Tensor) -> CosineSource:
        """Return the image x concept cosines the driver reads (`dissect_core.stages.scoring.layer_cosines`'s)."""
        ...

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
        """Return the layer's labels (every neuron) and its neurons' top images for concept search."""
        ...

    def layer_evaluator(self, layer: str) -> LayerEvaluator | None:
        """Return what evaluates `layer` (`evaluate_layer`'s signature), or None to evaluate it in this process."""
        ...


def executor_for(config: DissectConfig) -> Executor:
    """Return the executor `config.executor` names; raise with the install command when Ray is missing."""
    if config.executor == "local":
        from dissect_core.executors.local import LocalExecutor

        return LocalExecutor()
    if config.executor == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise DissectError(
                f"--executor ray needs the ray package, which is not installed; {RAY_INSTALL_HINT}"
            ) from None
        from dissect_core.executors.ray_executor import RayExecutor

        return RayExecutor(config)
    raise DissectError(f"unknown executor {config.executor!r}; use local or ray")
