"""Concept evidence on a neuron: the probe images the run's encoder rates highest for a concept (its label or a
typed one), each a hit or a miss for the neuron, and how many probe images carry the concept at all.

The rules are in `dissect_core.analysis.concept_evidence`; this module reads what they need from the run's artifacts
(through the app's `ArtifactsReader`, the searcher's) and the probe images' views from the database.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.errors import NotFound
from app.core.urls import image_url
from app.persistence.models import Neuron
from app.read.artifacts.activations import ActivationsUnavailable
from app.read.concepts.search import ConceptSearcher, clean_concept, run_scoring
from app.read.images.queries import view_urls
from app.read.layers.queries import get_layer
from app.read.runs.queries import get_run
from app.read.schemas.evidence import ConceptEvidence, EvidenceImage
from dissect_core.analysis.concept_evidence import (
    HIT_QUANTILE,
    carrying,
    concept_cosines,
    hit_threshold,
    hits,
    top_images_for_concept,
)
from dissect_core.analysis.coverage import Coverage, concept_coverage, spread_of
from dissect_core.evaluation.verdict import CoverageSource
from dissect_core.similarity.row_summaries import CARRY_RANK

#: How many of the concept's highest-rated probe images are listed.
EVIDENCE_IMAGES = 12


def _label(session: Session, layer_id: int, unit: int) -> tuple[str, Coverage | None]:
    """Return the neuron's label and its coverage as the dissection counted it (None for runs stored before)."""
    row = session.execute(
        select(
            Neuron.label, Neuron.n_carrying, Neuron.coverage_source, Neuron.coverage_judgeable, Neuron.encoder_blind
        ).where(Neuron.layer_id == layer_id, Neuron.unit == unit)
    ).first()
    if row is None:
        return "", None
    label, n_carrying, source, judgeable, blind = row
    if source is None or n_carrying is None:
        return label, None
    counted_by: CoverageSource = "labels" if source == "labels" else "encoder"
    return label, Coverage(n_carrying, counted_by, bool(judgeable), bool(blind), "")


def carried_count_missing(concept: str) -> str:
    """Return the note for a run stored before each image's carry bar was kept."""
    return (
        f"This run was stored before each image's top-concept cosines were kept, so how many probe images carry "
        f"'{concept}' cannot be counted; dissect the model again to count them."
    )


def concept_evidence(
    session: Session,
    searcher: ConceptSearcher,
    run_id: int,
    layer_name: str,
    unit: int,
    concept: str = "",
    *,
    n: int = EVIDENCE_IMAGES,
) -> ConceptEvidence:
    """Return the evidence for a concept on a neuron (its label when `concept` is blank)."""
    run = get_run(session, run_id)
    layer = get_layer(session, run_id, layer_name)
    if not 0 <= unit < layer.n_units:
        raise NotFound(f"Layer '{layer_name}' of run {run_id} has units 0–{layer.n_units - 1}; not {unit}.")
    label, label_coverage = _label(session, layer.id, unit)
    text = clean_concept(concept) if concept.strip() else clean_concept(label)
    scoring = run_scoring(run)
    reader = searcher.reader
    artifacts = reader.scoring(scoring.artifacts_dir)
    embedding = searcher.embed(scoring.encoder, [scoring.prompt(text)])
    cosines = concept_cosines(artifacts.image_embeddings, embedding[0])
    top = top_images_for_concept(cosines, n).tolist()
    notes: list[str] = []

    activations = None
    threshold = None
    try:
        n_images = artifacts.image_embeddings.shape[0]
        activations = reader.activation_rows(scoring.artifacts_dir, layer_name, n_images)[unit].float()
        threshold = hit_threshold(activations)
    except ActivationsUnavailable as error:
        notes.append(str(error))
    fired = hits(activations, threshold) if activations is not None and threshold is not None else None

    bars = reader.carry_cosines(scoring.artifacts_dir)
    carried = carrying(cosines, bars) if bars is not None else None
    if carried is None:
        notes.append(carried_count_missing(text))
    n_carrying = int(carried.sum()) if carried is not None else None
    coverage = None
    if n_carrying is not None:
        coverage = concept_coverage(
            text,
            n_carrying=n_carrying,
            n_images=int(cosines.shape[0]),
            spread=float(spread_of(cosines)),
            reference_spreads=reader.reference_spreads(scoring.artifacts_dir),
            recognised=searcher.recognised(scoring.encoder, embedding),
        )
    if text == label and label_coverage is not None and label_coverage.source == "labels":
        # The dissection counted the label by the probe set's own labels, which this server does not keep.
        coverage = replace(
            label_coverage, note=f"the probe set has {label_coverage.n_carrying} images labelled '{text}'"
        )
        n_carrying = label_coverage.n_carrying
    scarce = coverage is not None and not coverage.judgeable
    if coverage is not None and scarce:
        notes.append(coverage.note[:1].upper() + coverage.note[1:] + ".")

    views = view_urls(session, run_id, top)
    images = [
        EvidenceImage(
            rank=rank,
            image_index=index,
            cos=float(cosines[index]),
            activation=float(activations[index]) if activations is not None else None,
            hit=bool(fired[index]) if fired is not None else None,
            carries=bool(carried[index]) if carried is not None else None,
            view_url=views.get(index),
            image_url=image_url(run_id, index),
        )
        for rank, index in enumerate(top, start=1)
    ]
    return ConceptEvidence(
        run_id=run_id,
        layer=layer_name,
        unit=unit,
        concept=text,
        is_label=text == label,
        n_images=int(cosines.shape[0]),
        hit_quantile=HIT_QUANTILE,
        hit_threshold=threshold,
        images=images,
        n_hits=sum(bool(image.hit) for image in images) if fired is not None else None,
        carry_rank=CARRY_RANK,
        n_carrying=n_carrying,
        scarce=scarce,
        coverage_source=None if coverage is None else coverage.source,
        encoder_blind=coverage is not None and coverage.encoder_blind,
        notes=notes,
    )
