"""Concepts on demand: rank a stored layer's neurons by the soft-WPMI score a typed concept would get.

Works from a run's artifacts alone (image embeddings, log normalisers, per-layer top image indices), so no
image is read again. Encoders and text embeddings are cached in LRUs owned by one `ConceptSearcher` per app;
the artifacts are read through the app's `ArtifactsReader`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.cache_bounds import CacheBounds
from app.core.errors import AtlasError, NotFound
from app.core.lru import LRUCache
from app.core.redact import redact_paths
from app.core.text import check_user_text
from app.persistence.models import Neuron, Run
from app.read.artifacts.reader import ArtifactsReader
from app.read.artifacts.scoring import ConceptSearchUnavailable, ScoringArtifacts
from app.read.layers.queries import get_layer
from app.read.runs.queries import get_run
from app.read.schemas.concepts import ConceptHit, ConceptSearchResult, NeuronConceptScore
from dissect_core.analysis.concept_evidence import carrying, concept_cosines
from dissect_core.analysis.coverage import Coverage, concept_coverage, spread_of
from dissect_core.encoders.base import ImageTextEncoder, recognised_concepts
from dissect_core.errors import DissectError
from dissect_core.run_record import RunRecord
from dissect_core.similarity.functions import CONCEPT_SEARCH_DEFAULTS, score_new_concepts

#: (encoder spec, device) -> encoder; tests pass a fake.
EncoderLoader = Callable[[str, str], ImageTextEncoder]

MAX_CONCEPT_CHARS = 200


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
    """Return the typed concept under the text rule (app.core.text), trimmed and single-spaced, or raise AtlasError
    saying what to type."""
    cleaned = " ".join(check_user_text(text, "the concept").split())
    if not cleaned:
        raise AtlasError("Type a concept to score, for example 'striped'.")
    if len(cleaned) > MAX_CONCEPT_CHARS:
        raise AtlasError(f"A concept is at most {MAX_CONCEPT_CHARS} characters; shorten '{cleaned[:40]}…'.")
    return cleaned


def normalisers_without_own_term(log_normalisers: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Return float64 log normalisers [N] with one concept's own term exp(logits) [N] taken out of the sum.

    `score_new_concepts` adds a concept's own term to the stored normalisers; a concept of the run's vocabulary
    is in them already, so its term is taken out first and the score matches its label score. A term that is
    (to rounding) the whole sum is kept a hair below it, so the logarithm stays finite.
    """
    share = torch.exp(logits.double() - log_normalisers.double()).clamp(max=1 - 1e-9)
    return log_normalisers.double() + torch.log1p(-share)


class ConceptSearcher:
    """Scores typed concepts against stored layers, caching encoders and text embeddings; the runs' artifacts come
    from `reader` (shared with the app's other pages)."""

    def __init__(
        self,
        reader: ArtifactsReader,
        *,
        encoder_loader: EncoderLoader | None = None,
        device: str = "cpu",
        bounds: CacheBounds | None = None,
    ) -> None:
        bounds = bounds or CacheBounds()
        self.reader = reader
        self._load_encoder = encoder_loader or _default_encoder_loader
        self.device = device
        self._encoders: LRUCache[str, ImageTextEncoder] = LRUCache(bounds.encoders)
        self._texts: LRUCache[tuple[str, str], torch.Tensor] = LRUCache(bounds.text_embeddings)
        self._text_sets: LRUCache[tuple[str, tuple[str, ...]], torch.Tensor] = LRUCache(bounds.text_sets)

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

    def embed_set(self, spec: str, texts: tuple[str, ...]) -> torch.Tensor:
        """Return the [T, D] embeddings of a set of texts (a run's labels) with the spec's encoder, kept whole as one
        matrix: a run's labels can outnumber the single texts the text cache holds."""

        def load() -> torch.Tensor:
            with torch.inference_mode():
                return self.encoder(spec).encode_texts(list(texts)).detach().float().cpu()

        return self._text_sets.get_or_load((spec, texts), load)

    def warm(self, run: RunScoring, layer: str | None = None) -> None:
        """Load what scoring concepts on the run needs (encoder, artifacts, the layer's top images) into the caches."""
        self.encoder(run.encoder)
        self.reader.scoring(run.artifacts_dir)
        if layer is not None:
            self.reader.top_indices(run.artifacts_dir, layer)

    def is_warm(self, run: RunScoring, layer: str | None = None) -> bool:
        """Return whether the run's encoder and artifacts (and the layer's top images) are in the caches."""
        return run.encoder in self._encoders and self.reader.holds_scoring(run.artifacts_dir, layer)

    def score(self, run: RunScoring, layer: str, concepts: Sequence[str]) -> torch.Tensor:
        """Return the soft-WPMI scores [K, T] the concepts would get on the layer's K neurons."""
        artifacts = self.reader.scoring(run.artifacts_dir)
        top = self.reader.top_indices(run.artifacts_dir, layer).long()
        embeddings = self.embed(run.encoder, [run.prompt(concept) for concept in concepts])
        with torch.inference_mode():
            scores = score_new_concepts(
                artifacts.image_embeddings, embeddings, artifacts.log_normalisers, top, **run.params
            )
            for column, concept in enumerate(concepts):
                if concept in artifacts.vocabulary:
                    scores[:, column] = self._score_known(run, artifacts, top, embeddings[column])
            return scores

    def coverage(self, run: RunScoring, concept: str) -> Coverage | None:
        """Return the encoder's coverage of a typed concept over the run's probe images, or None for a run stored
        before each image's carry bar was kept."""
        bars = self.reader.carry_cosines(run.artifacts_dir)
        if bars is None:
            return None
        image_embeddings = self.reader.scoring(run.artifacts_dir).image_embeddings
        embedding = self.embed(run.encoder, [run.prompt(concept)])
        cosines = concept_cosines(image_embeddings, embedding[0])
        return concept_coverage(
            concept,
            n_carrying=int(carrying(cosines, bars).sum()),
            n_images=int(cosines.shape[0]),
            spread=float(spread_of(cosines)),
            reference_spreads=self.reader.reference_spreads(run.artifacts_dir),
            recognised=self.recognised(run.encoder, embedding),
        )

    def recognised(self, spec: str, embedding: torch.Tensor) -> bool | None:
        """Return the spec's encoder's own answer to whether it can place the concept of `embedding` [1, D], or
        None when it has none (`recognised_concepts`)."""
        answer = recognised_concepts(self.encoder(spec), embedding)
        return None if answer is None else bool(answer[0])

    @staticmethod
    def _score_known(
        run: RunScoring, artifacts: ScoringArtifacts, top: torch.Tensor, embedding: torch.Tensor
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
    # The record keeps these as resolved.concept_search (its a, lam, ... match the stored log-normalisers even
    # when the run itself used another similarity function); older runs only kept their similarity params.
    record = RunRecord.from_json(run.settings)
    params = record.resolved.concept_search or record.resolved.similarity_params
    return RunScoring(
        artifacts_dir=run.artifacts_dir,
        encoder=record.config.encoder,
        params={key: float(params[key]) for key in CONCEPT_SEARCH_DEFAULTS if key in params},
        prompt_template=record.config.prompt_template,
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
    offset: int = 0,
    limit: int = 24,
) -> ConceptSearchResult:
    """Return the layer's neurons ranked by the typed concept's score, best first: `limit` of them from the
    `offset`-th."""
    started = time.perf_counter()
    concept = clean_concept(concept)
    scoring, layer_id = _run_inputs(session, run_id, layer_name)
    scores = searcher.score(scoring, layer_name, [concept])[:, 0]
    order = torch.argsort(scores, descending=True, stable=True)[offset : offset + limit].tolist()
    labels = _labels(session, layer_id, order)
    coverage = searcher.coverage(scoring, concept)
    hits = [
        ConceptHit(
            rank=rank,
            unit=unit,
            score=float(scores[unit]),
            label=labels.get(unit, ("", 0.0))[0],
            label_score=labels.get(unit, ("", 0.0))[1],
        )
        for rank, unit in enumerate(order, start=offset + 1)
    ]
    return ConceptSearchResult(
        run_id=run_id,
        layer=layer_name,
        concept=concept,
        n_units=int(scores.shape[0]),
        items=hits,
        total=int(scores.shape[0]),
        offset=offset,
        limit=limit,
        seconds=time.perf_counter() - started,
        warning=coverage.note[:1].upper() + coverage.note[1:] + "." if coverage and coverage.encoder_blind else None,
        n_carrying=None if coverage is None else coverage.n_carrying,
        encoder_blind=coverage is not None and coverage.encoder_blind,
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
