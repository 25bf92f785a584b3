"""The held-out evaluation of a layer, cached on disk by everything that determines it, so a warm rerun skips it.

A layer's evaluation (`evaluate_layer`) is a function of its activations, the image–concept cosines, the labels, the
folds, the settings and the evaluation's code. The key names each of them by identity rather than by content
(hashing a layer's activations would cost as much as reading them): the target, layer, pooling and preprocessing
with the probe set's hash name the activations, as the probe pass's own cache does; the encoder, its image
preprocessing, the concept set and the prompt template name the cosines; the similarity function with its resolved
parameters, the simulation and its softmax temperature, the images' ids and labels and the folds themselves (each
image's fold, so a change in how folds are dealt recomputes even where the ids are the same) the rest. The labels'
indices are hashed too (cheap, and a changed label always recomputes). The code is named by a hash of the
sources the evaluation runs (`EVALUATION_SOURCES`), the library version and torch's, so an edit there recomputes.

Each entry is one safetensors file (`<root>/evaluation/<key>.safetensors`): the per-neuron numbers as float64
columns, which hold the Python floats of `NeuronEvaluation` exactly, and the layer summary as JSON in the header's
metadata. No pickle is read; a torn or foreign file is a miss.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

import dissect_core
from dissect_core.data.cache import cache_key, write_atomically
from dissect_core.evaluation.evaluate import EvaluationSettings
from dissect_core.results import LayerEvaluation, NeuronEvaluation, WeightedConcept

#: The cache's folder under the cache root, and the version of its file layout (bump it when the layout changes).
KIND = "evaluation"
FORMAT = "1"
#: Folders (packages) and files, relative to the dissect_core package, whose sources the evaluation runs.
EVALUATION_SOURCES = ("evaluation", "similarity", "data/vocabulary.py", "topk.py", "names.py")
#: The float64 per-neuron columns of an entry, one per NeuronEvaluation number.
_NUMBER_FIELDS = ("explained_r", "p_value", "stability", "explanation_r")
#: The EvaluationInputs fields too long for the key's JSON, hashed on their own.
_HASHED_APART = ("image_ids", "image_labels", "folds")


@dataclass(frozen=True)
class EvaluationInputs:
    """What every layer's evaluation in a run shares: the identities of its cosines, settings and labels, and its
    folds (each image's fold, long [N])."""

    target: str
    pool: str
    preprocessing: dict[str, Any]
    probe_hash: str
    encoder: str
    encoder_preprocessing: str
    concept_hash: str
    prompt_template: str | None
    similarity: str
    similarity_params: dict[str, Any]
    softmax_a: float
    settings: EvaluationSettings
    image_ids: Sequence[str]
    image_labels: Sequence[str | None]
    folds: Tensor

    def digest(self) -> str:
        """Return the sha256 naming these inputs together with the evaluation's code."""
        return cache_key(
            KIND,
            FORMAT,
            evaluation_code_hash(),
            dissect_core.__version__,
            torch.__version__,
            {name: value for name, value in asdict(self).items() if name not in _HASHED_APART},
            _strings_hash(self.image_ids),
            _strings_hash(self.image_labels),
            _tensor_hash(self.folds),
        )


def evaluation_key(run_digest: str, layer: str, label_index: Tensor) -> str:
    """Return the cache key of one layer's evaluation: the run's `EvaluationInputs.digest()`, the layer and its
    labels' concept indices."""
    return cache_key(KIND, run_digest, layer, _tensor_hash(label_index))


@cache
def evaluation_code_hash() -> str:
    """Return the sha256 over the evaluation's source files (`EVALUATION_SOURCES`), each by its relative path."""
    package = Path(dissect_core.__file__).parent
    files: list[Path] = []
    for source in EVALUATION_SOURCES:
        path = package / source
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.relative_to(package).as_posix()}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


class EvaluationCache:
    """Layers' evaluations stored under `root/evaluation/<key>.safetensors`; no root means no cache."""

    def __init__(self, root: Path | None) -> None:
        self.root = Path(root) if root else None

    def _path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / KIND / f"{key}.safetensors"

    def load(
        self, key: str, concepts: Sequence[str], n_units: int
    ) -> tuple[list[NeuronEvaluation], LayerEvaluation] | None:
        """Return the stored evaluation of `n_units` neurons (explanations named from `concepts`), or None when it is
        absent, unreadable or of another shape."""
        if self.root is None or not self._path(key).is_file():
            return None
        try:
            return _decode(self._path(key), concepts, n_units)
        except (OSError, SafetensorError, ValueError, KeyError, IndexError, TypeError):
            return None

    def save(
        self, key: str, neurons: Sequence[NeuronEvaluation], summary: LayerEvaluation, concepts: Sequence[str]
    ) -> None:
        """Store one layer's evaluation atomically (explanations as indices into `concepts`)."""
        if self.root is None:
            return
        tensors, metadata = _encode(neurons, summary, concepts)
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, lambda temporary: save_file(tensors, str(temporary), metadata=metadata))


def _encode(
    neurons: Sequence[NeuronEvaluation], summary: LayerEvaluation, concepts: Sequence[str]
) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Return an evaluation as safetensors columns and header metadata."""
    position = {concept: index for index, concept in enumerate(concepts)}
    n_terms = max((len(neuron.explanation) for neuron in neurons), default=0)
    term_concepts = torch.full((len(neurons), n_terms), -1, dtype=torch.int64)
    term_weights = torch.zeros((len(neurons), n_terms), dtype=torch.float64)
    for unit, neuron in enumerate(neurons):
        for slot, term in enumerate(neuron.explanation):
            term_concepts[unit, slot] = position[term.concept]
            term_weights[unit, slot] = term.weight
    tensors = {name: torch.tensor([getattr(n, name) for n in neurons], dtype=torch.float64) for name in _NUMBER_FIELDS}
    tensors["significant"] = torch.tensor([n.significant for n in neurons], dtype=torch.bool)
    tensors["ground_truth_known"] = torch.tensor([n.ground_truth_r is not None for n in neurons], dtype=torch.bool)
    tensors["ground_truth_r"] = torch.tensor(
        [0.0 if n.ground_truth_r is None else n.ground_truth_r for n in neurons], dtype=torch.float64
    )
    tensors["term_concepts"] = term_concepts
    tensors["term_weights"] = term_weights
    return tensors, {"format": FORMAT, "summary": json.dumps(asdict(summary))}


def _decode(path: Path, concepts: Sequence[str], n_units: int) -> tuple[list[NeuronEvaluation], LayerEvaluation]:
    """Return the evaluation stored at `path`; raise ValueError when it is not one of `n_units` neurons."""
    with safe_open(str(path), framework="pt") as stored:
        metadata = stored.metadata() or {}
    tensors = load_file(str(path))
    if metadata.get("format") != FORMAT or any(len(tensors[name]) != n_units for name in _NUMBER_FIELDS):
        raise ValueError(f"{path} is not a format-{FORMAT} evaluation of {n_units} neurons")
    columns = {name: tensors[name].tolist() for name in _NUMBER_FIELDS}
    significant = tensors["significant"].tolist()
    known = tensors["ground_truth_known"].tolist()
    ground_truth = tensors["ground_truth_r"].tolist()
    term_concepts = tensors["term_concepts"].tolist()
    term_weights = tensors["term_weights"].tolist()
    neurons = [
        NeuronEvaluation(
            explained_r=columns["explained_r"][unit],
            p_value=columns["p_value"][unit],
            significant=significant[unit],
            stability=columns["stability"][unit],
            explanation=tuple(
                WeightedConcept(concepts[concept], weight)
                for concept, weight in zip(term_concepts[unit], term_weights[unit], strict=True)
                if concept >= 0
            ),
            explanation_r=columns["explanation_r"][unit],
            ground_truth_r=ground_truth[unit] if known[unit] else None,
        )
        for unit in range(n_units)
    ]
    return neurons, LayerEvaluation(**json.loads(metadata["summary"]))


def _strings_hash(strings: Sequence[str | None]) -> str:
    """Return the sha256 of a list of strings (None apart from every string), without a JSON copy of a long list."""
    digest = hashlib.sha256()
    for string in strings:
        encoded = b"-" if string is None else b"%d:" % len(string.encode()) + string.encode()
        digest.update(encoded)
    return digest.hexdigest()


def _tensor_hash(values: Tensor) -> str:
    """Return the sha256 of an integer tensor's values (as int64, so the dtype it came in does not matter)."""
    return hashlib.sha256(values.to(torch.int64).contiguous().numpy().tobytes()).hexdigest()
