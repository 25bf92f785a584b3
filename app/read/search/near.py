"""The run's labels nearest a typed text by the run's own text encoder: "dog" finds units labelled "canine".

The candidates are the run's labels (concepts of its vocabulary that some unit took), not the whole vocabulary: a
near concept that labels no unit finds nothing, and embedding a 20,000-word vocabulary on a query would take
minutes on a CPU. The labels are embedded once per run and encoder (ConceptSearcher.embed_set).
"""

from __future__ import annotations

import torch
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.persistence.models import Layer, Neuron
from app.read.concepts.search import ConceptSearcher, RunScoring
from app.read.layers.label_query import LabelQuery
from app.read.schemas.search import NearConcept

#: At most this many near concepts.
MAX_NEAR_CONCEPTS = 5
#: Labels less alike than this cosine are not near. Measured on the demo's labels with its encoder's MiniLM text
#: side (bench/bench_unit_search.py prints them): dog -> canine 0.93 stays; cat 0.66, mammal 0.58, bird 0.57,
#: purple -> orange 0.67, wheel -> bicycle 0.62 and goldfinch -> goldfish 0.59 are related, not the same, and go.
#: Text encoders place words on their own scales: this bar is MiniLM's (CLIP's text cosines run higher).
MIN_NEAR_COSINE = 0.7


def run_labels(session: Session, run_id: int) -> tuple[str, ...]:
    """Return the run's distinct labels, sorted."""
    rows = session.scalars(
        select(Neuron.label).join(Layer, Neuron.layer_id == Layer.id).where(Layer.run_id == run_id).distinct()
    )
    return tuple(sorted(label for label in rows if label))


def near_concepts(
    searcher: ConceptSearcher, scoring: RunScoring, labels: tuple[str, ...], query: LabelQuery
) -> list[NearConcept]:
    """Return the labels nearest the query's text by the run's encoder, nearest first: at most MAX_NEAR_CONCEPTS,
    each at least MIN_NEAR_COSINE alike, none the query matches already (the label search finds those)."""
    if query.is_empty or not labels:
        return []
    matrix = torch.nn.functional.normalize(searcher.embed_set(scoring.encoder, labels), dim=1)
    text = torch.nn.functional.normalize(searcher.embed(scoring.encoder, [query.needle])[0], dim=0)
    cosines = matrix @ text
    # Labels the text matches already are left out, so each near concept adds units the label search missed.
    cosines[torch.tensor([query.matches(label.casefold(), -1) for label in labels])] = -2.0
    best = torch.argsort(cosines, descending=True, stable=True)[:MAX_NEAR_CONCEPTS].tolist()
    return [
        NearConcept(concept=labels[row], cosine=float(cosines[row]))
        for row in best
        if float(cosines[row]) >= MIN_NEAR_COSINE
    ]
