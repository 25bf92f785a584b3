"""The paper's weight finding (CLIP-Dissect Section 4.1, Fig. 5) on a stored run, as its JSON and run page show it."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.read.artifacts.reader import ArtifactsReader
from app.read.runs.queries import get_run
from app.read.schemas.runs import AgreementPoint, WeightConceptAgreementView


def weight_agreement(session: Session, reader: ArtifactsReader, run_id: int) -> list[WeightConceptAgreementView]:
    """Return the run's weight finding per weight-joined pair with class names ([] for a run stored without it)."""
    return [
        WeightConceptAgreementView(
            from_layer=pair.from_layer,
            to_layer=pair.to_layer,
            pearson_r=pair.pearson_r,
            p_value=pair.p_value,
            top_unit_r=pair.top_unit_r,
            all_pairs_mean=pair.all_pairs_mean,
            curve=[AgreementPoint(k=k, mean_similarity=mean) for k, mean in pair.curve],
        )
        for pair in reader.agreement(get_run(session, run_id).artifacts_dir)
    ]
