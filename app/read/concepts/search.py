"""Concepts on demand: rank a stored layer's neurons by the soft-WPMI score a typed concept would get.

Works from a run's artifacts alone (image embeddings, log normalisers, per-layer top image indices), so no
image is read again. Encoders and artifacts are cached in LRUs owned by one `ConceptSearcher` per app.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.errors import AtlasError, NotFound
from app.core.lru import LRUCache
from app.core.paths import resolved_path
from app.core.redact import redact_paths
from app.persistence.models import Neuron, Run
from app.persistence.store.artifacts import CARRY_COSINES_FILE
from app.read.artifacts.activations import LayerActivationRows
from app.read.artifacts.tensors import damaged_artifact, load_artifact_tensor
from app.read.layers.queries import get_layer
from app.read.runs.queries import get_run
from app.read.schemas.concepts import ConceptHit, ConceptSearchResult, NeuronConceptScore
from dissect_core.encoders.base import ImageTextEncoder
from dissect_core.errors import DissectError
from dissect_core.similarity.functions import CONCEPT_SEARCH_DEFAULTS, score_new_concepts

#: (encoder spec, device) -> encoder; tests pass a fake.
EncoderLoader = Callable[[str, str], ImageTextEncoder]

MAX_CONCEPT_CHARS = 200


class ConceptSearchUnavailable(AtlasError):
    """The run lacks what concept search needs; the message says what and how to get it."""


@dataclass(frozen=True)
class RunArtifacts:
    """What a run stored for scoring concepts typed later."""

    image_embeddings: torch.Tensor  # [N, D]
    log_normalisers: torch.Tensor  # [N]
    #: The run's own concepts (concepts.txt): their terms are already inside `log_normalisers`.
    vocabulary: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RunScoring:
    """How a run scores concepts: its artifacts folder, encoder, soft-WPMI parameters and prompt."""

    artifacts_dir: str
    encoder: str
    params: dict[str, float]
    prompt_template: str | None = None

    def prompt(self, concept: str) -> str:
        """Return the text the run's encoder saw for a concept: the run's prompt template applied, if any."""
        return self.prompt_template.format(concept) if self.prompt_template else concept


def _default_encoder_loader(spec: str, device: str) -> ImageTextEncoder:
    # Imported here: loading encoder libraries is slow and only concept search needs them.
    from dissect_core.encoders import load_encoder

    return load_encoder(spec, device)


def clean_concept(text: str) -> str:
    """Return the typed concept trimmed and single-spaced, or raise AtlasError saying what to type."""
    cleaned = " ".join(text.split())
    if not cleaned:
        raise AtlasError("Type a concept to score, for example 'striped'.")
    if len(cleaned) > MAX_CONCEPT_CHARS:
        raise AtlasError(f"A concept is at most {MAX_CONCEPT_CHARS} characters; shorten '{cleaned[:40]}…'.")
    return cleaned


NO_TYPED_CONCEPTS = "typed concepts cannot be scored"


def _load_tensor(path: Path, what: str, ndim: int) -> torch.Tensor:
    """Return the stored `ndim`-D tensor at `path`; raise ConceptSearchUnavailable when it is missing or damaged."""
    return load_artifact_tensor(path, what, ndim, NO_TYPED_CONCEPTS, ConceptSearchUnavailable)


def _damaged_artifact(path: Path, what: str, problem: str) -> AtlasError:
    """Return the error telling that a stored artifact is damaged, and how to store it again."""
    return damaged_artifact(path, what, problem, NO_TYPED_CONCEPTS, ConceptSearchUnavailable)


def _read_vocabulary(folder: Path) -> frozenset[str]:
    """Return the run's concepts from its concepts.txt, or none for a run stored without it."""
    path = folder / "concepts.txt"
    if not path.is_file():
        return frozenset()
    return frozenset(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def normalisers_without_own_term(log_normalisers: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Return float64 log normalisers [N] with one concept's own term exp(logits) [N] taken out of the sum.

    `score_new_concepts` adds a concept's own term to the stored normalisers; a concept of the run's vocabulary
    is in them already, so its term is taken out first and the score matches its label score. A term that is
    (to rounding) the whole sum is kept a hair below it, so the logarithm stays finite.
    """
    share = torch.exp(logits.double() - log_normalisers.double()).clamp(max=1 - 1e-9)
    return log_normalisers.double() + torch.log1p(-share)


class ConceptSearcher:
    """Scores typed concepts against stored layers, caching encoders, artifacts and text embeddings."""

    def __init__(
        self,
        *,
        encoder_loader: EncoderLoader | None = None,
        device: str = "cpu",
        max_encoders: int = 2,
        max_runs: int = 4,
        max_layers: int = 32,
        max_texts: int = 2048,
        data_dir: Path | None = None,
        activation_rows: LayerActivationRows | None = None,
    ) -> None:
        self._load_encoder = encoder_loader or _default_encoder_loader
        self.device = device
        self.data_dir = data_dir
        self._encoders: LRUCache[str, ImageTextEncoder] = LRUCache(max_encoders)
        self._artifacts: LRUCache[str, RunArtifacts] = LRUCache(max_runs)
        self._top_indices: LRUCache[tuple[str, str], torch.Tensor] = LRUCache(max_layers)
        self._texts: LRUCache[tuple[str, str], torch.Tensor] = LRUCache(max_texts)
        # Concept evidence: each layer's activations (shared with the other pages that read them) and carry bars.
        self.activation_rows = activation_rows or LayerActivationRows()
        self._carry: LRUCache[str, torch.Tensor | None] = LRUCache(max_runs)

    def artifacts(self, artifacts_dir: str) -> RunArtifacts:
        """Return a run's embeddings, normalisers and settings (cached)."""
        return self._artifacts.get_or_load(artifacts_dir, lambda: self._read_artifacts(self.folder(artifacts_dir)))

    def folder(self, artifacts_dir: str) -> Path:
        """Return a run's artifacts folder: a stored relative path lies under the data folder."""
        return resolved_path(artifacts_dir, self.data_dir) if self.data_dir is not None else Path(artifacts_dir)

    def _read_artifacts(self, folder: Path) -> RunArtifacts:
        hint = "This run"
        embeddings = _load_tensor(folder / "image_embeddings.pt", hint, ndim=2)
        normalisers_file = folder / "log_normalisers.pt"
        if not normalisers_file.is_file():
            raise ConceptSearchUnavailable(
                f"{hint} has no stored log_normalisers.pt: only soft-WPMI and WPMI runs store them. "
                "Dissect with --similarity soft_wpmi to search typed concepts."
            )
        normalisers = _load_tensor(normalisers_file, hint, ndim=1)
        if normalisers.shape[0] != embeddings.shape[0]:
            problem = f"{normalisers.shape[0]} values for {embeddings.shape[0]} stored images"
            raise _damaged_artifact(normalisers_file, hint, problem)
        return RunArtifacts(
            image_embeddings=embeddings.float(), log_normalisers=normalisers, vocabulary=_read_vocabulary(folder)
        )

    def top_indices(self, artifacts_dir: str, layer: str) -> torch.Tensor:
        """Return the layer's [K, top_k] top image indices (cached)."""
        path = self.folder(artifacts_dir) / "top_indices" / f"{layer}.pt"
        what = f"Layer '{layer}' of this run"

        def load() -> torch.Tensor:
            top = _load_tensor(path, what, ndim=2)
            n_images = self.artifacts(artifacts_dir).image_embeddings.shape[0]
            if top.is_floating_point() or (top.numel() and not 0 <= int(top.min()) <= int(top.max()) < n_images):
                raise _damaged_artifact(path, what, f"its entries are not indices of the {n_images} stored images")
            return top

        return self._top_indices.get_or_load((artifacts_dir, layer), load)

    def unit_activations(self, artifacts_dir: str, layer: str, unit: int) -> torch.Tensor:
        """Return one unit's stored activations [images] as float32 (its layer cached); raise
        ActivationsUnavailable."""
        n_images = self.artifacts(artifacts_dir).image_embeddings.shape[0]
        return self.activation_rows.get(self.folder(artifacts_dir), layer, n_images)[unit].float()

    def carry_cosines(self, artifacts_dir: str) -> torch.Tensor | None:
        """Return each image's carry bar [images] (cached), or None for a run stored before they were kept."""

        def load() -> torch.Tensor | None:
            path = self.folder(artifacts_dir) / CARRY_COSINES_FILE
            if not path.is_file():
                return None
            bars = _load_tensor(path, "This run", ndim=1)
            n_images = self.artifacts(artifacts_dir).image_embeddings.shape[0]
            if bars.shape[0] != n_images:
                raise _damaged_artifact(path, "This run", f"{bars.shape[0]} values for {n_images} stored images")
            return bars.float()

        return self._carry.get_or_load(artifacts_dir, load)

    def encoder(self, spec: str) -> ImageTextEncoder:
        """Return the loaded encoder for a spec (cached); a failure to load it is told without server paths."""

        def load() -> ImageTextEncoder:
            try:
                return self._load_encoder(spec, self.device)
            except DissectError as error:
                raise ConceptSearchUnavailable(redact_paths(str(error))) from None

        return self._encoders.get_or_load(spec, load)

    def embed(self, spec: str, texts: Sequence[str]) -> torch.Tensor:
        """Return the [T, D] embeddings of texts with the spec's encoder, reusing ones seen before."""
        missing = [text for text in dict.fromkeys(texts) if (spec, text) not in self._texts]
        if missing:
            with torch.inference_mode():
                embedded = self.encoder(spec).encode_texts(missing).detach().float().cpu()
            for text, row in zip(missing, embedded, strict=True):
                self._texts.put((spec, text), row)
        rows = [self._texts.get((spec, text)) for text in texts]
        # A tiny cache could evict a row between put and get: embed those again rather than fail.
        if any(row is None for row in rows):
            with torch.inference_mode():
                return self.encoder(spec).encode_texts(list(texts)).detach().float().cpu()
        return torch.stack([row for row in rows if row is not None])

    def warm(self, run: RunScoring, layer: str | None = None) -> None:
        """Load what scoring concepts on the run needs (encoder, artifacts, the layer's top images) into the caches."""
        self.encoder(run.encoder)
        self.artifacts(run.artifacts_dir)
        if layer is not None:
            self.top_indices(run.artifacts_dir, layer)

    def is_warm(self, run: RunScoring, layer: str | None = None) -> bool:
        """Return whether the run's encoder and artifacts (and the layer's top images) are in the caches."""
        layer_held = layer is None or (run.artifacts_dir, layer) in self._top_indices
        return run.encoder in self._encoders and run.artifacts_dir in self._artifacts and layer_held

    def score(self, run: RunScoring, layer: str, concepts: Sequence[str]) -> torch.Tensor:
        """Return the soft-WPMI scores [K, T] the concepts would get on the layer's K neurons."""
        artifacts = self.artifacts(run.artifacts_dir)
        top = self.top_indices(run.artifacts_dir, layer).long()
        embeddings = self.embed(run.encoder, [run.prompt(concept) for concept in concepts])
        with torch.inference_mode():
            scores = score_new_concepts(
                artifacts.image_embeddings, embeddings, artifacts.log_normalisers, top, **run.params
            )
            for column, concept in enumerate(concepts):
                if concept in artifacts.vocabulary:
                    scores[:, column] = self._score_known(run, artifacts, top, embeddings[column])
            return scores

    @staticmethod
    def _score_known(
        run: RunScoring, artifacts: RunArtifacts, top: torch.Tensor, embedding: torch.Tensor
    ) -> torch.Tensor:
        """Return the scores [K] of a concept of the run's vocabulary, its term counted once in the normaliser."""
        a = run.params.get("a", CONCEPT_SEARCH_DEFAULTS["a"])
        images = torch.nn.functional.normalize(artifacts.image_embeddings.float(), dim=1)
        logits = a * (images @ torch.nn.functional.normalize(embedding.float(), dim=0)).double()
        normalisers = normalisers_without_own_term(artifacts.log_normalisers, logits)
        return score_new_concepts(artifacts.image_embeddings, embedding.unsqueeze(0), normalisers, top, **run.params)[
            :, 0
        ]


def run_scoring(run: Run) -> RunScoring:
    """Return how a stored run scores typed concepts: the soft-WPMI settings its normalisers were built with."""
    # The pipeline pins these under "concept_search" (its a, lam, ... match the stored log-normalisers even
    # when the run itself used another similarity function); older rows only have their similarity_params.
    params = (run.settings or {}).get("concept_search") or run.similarity_params or {}
    return RunScoring(
        artifacts_dir=run.artifacts_dir,
        encoder=run.encoder,
        params={key: float(params[key]) for key in CONCEPT_SEARCH_DEFAULTS if key in params},
        prompt_template=(run.settings or {}).get("prompt_template"),
    )


def _run_inputs(session: Session, run_id: int, layer_name: str) -> tuple[RunScoring, int]:
    run = get_run(session, run_id)
    layer = get_layer(session, run_id, layer_name)
    return run_scoring(run), layer.id


def _labels(session: Session, layer_id: int, units: list[int]) -> dict[int, tuple[str, float]]:
    rows = session.execute(
        select(Neuron.unit, Neuron.label, Neuron.score).where(Neuron.layer_id == layer_id, Neuron.unit.in_(units))
    )
    return {row.unit: (row.label, row.score) for row in rows}


def search_layer(
    session: Session,
    searcher: ConceptSearcher,
    run_id: int,
    layer_name: str,
    concept: str,
    *,
    limit: int = 24,
) -> ConceptSearchResult:
    """Return the layer's neurons ranked by the typed concept's score, best first, at most `limit`."""
    started = time.perf_counter()
    concept = clean_concept(concept)
    scoring, layer_id = _run_inputs(session, run_id, layer_name)
    scores = searcher.score(scoring, layer_name, [concept])[:, 0]
    order = torch.argsort(scores, descending=True, stable=True)[:limit].tolist()
    labels = _labels(session, layer_id, order)
    hits = [
        ConceptHit(
            rank=rank,
            unit=unit,
            score=float(scores[unit]),
            label=labels.get(unit, ("", 0.0))[0],
            label_score=labels.get(unit, ("", 0.0))[1],
        )
        for rank, unit in enumerate(order, start=1)
    ]
    return ConceptSearchResult(
        run_id=run_id,
        layer=layer_name,
        concept=concept,
        n_units=int(scores.shape[0]),
        hits=hits,
        seconds=time.perf_counter() - started,
    )


def score_neuron(
    session: Session, searcher: ConceptSearcher, run_id: int, layer_name: str, unit: int, concept: str
) -> NeuronConceptScore:
    """Return the typed concept's score on one neuron and the neuron's rank for it within the layer."""
    concept = clean_concept(concept)
    scoring, layer_id = _run_inputs(session, run_id, layer_name)
    scores = searcher.score(scoring, layer_name, [concept])[:, 0]
    if not 0 <= unit < scores.shape[0]:
        raise NotFound(f"Layer '{layer_name}' of run {run_id} has units 0–{scores.shape[0] - 1}; not {unit}.")
    score = float(scores[unit])
    label = _labels(session, layer_id, [unit]).get(unit, ("", 0.0))
    return NeuronConceptScore(
        run_id=run_id,
        layer=layer_name,
        unit=unit,
        concept=concept,
        score=score,
        rank=int((scores > scores[unit]).sum()) + 1,
        n_units=int(scores.shape[0]),
        label_score=label[1],
    )
