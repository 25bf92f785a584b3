"""The step after a run is stored: write its neuron-page tables (histograms, quantile bands, most correlated units
per layer) into its artifacts folder, so the first visit to a neuron page is as fast as the second."""

from __future__ import annotations

from sqlalchemy import Engine

from app.core.config import Settings
from app.persistence.db import session_factory
from app.read.artifacts.reader import ArtifactsReader
from app.read.neurons.distributions import NeuronDistributions
from dissect_core.progress import Progress

STAGE = "neuron tables"


def write_neuron_tables(settings: Settings, engine: Engine, run_id: int, progress: Progress | None = None) -> list[str]:
    """Write every layer's neuron-page tables of a stored run; return the layers written (those with activations)."""
    if progress:
        progress(STAGE, 0, 1)
    distributions = NeuronDistributions(ArtifactsReader(settings.data_dir))
    with session_factory(engine)() as session:
        written = distributions.write_tables(session, run_id)
    if progress:
        progress(STAGE, 1, 1)
    return written
