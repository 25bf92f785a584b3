"""What a run found, per layer: the units its labels explain best (by out-of-fold r) and its most common labels.

Read with three small queries per layer rather than from the layer indexes: the run page is where a visit starts,
and loading every layer's index first (every neuron with its top images) would cost the first visit seconds.
"""

from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from app.core.urls import neuron_url
from app.persistence.models import Neuron, TopImage
from app.read.caches import ReadCache
from app.read.classes.names import run_class_names, unit_class_name
from app.read.layers.index import cut_media_url
from app.read.schemas.findings import LabelCount, LayerFindings
from app.read.schemas.search import UnitHit

#: Units shown per layer, their crops, and labels counted per layer.
BEST_UNITS = 4
BEST_CROPS = 3
COMMON_LABELS = 5

#: A label counts as found unless graded `no label` (labels stored before grades count).
_HOLDS = or_(Neuron.verdict.is_(None), Neuron.verdict != "no label")


def layer_findings(
    session: Session,
    *,
    run_id: int,
    layer_id: int,
    layer: str,
    position: int,
    n_units: int,
    evaluated: bool,
    class_names: tuple[str, ...] | None,
) -> LayerFindings:
    """Return one stored layer's best units (by r, or by score for a layer stored before evaluations) and its most
    common labels."""
    order = (
        (Neuron.explained_r.is_(None), Neuron.explained_r.desc(), Neuron.unit)
        if evaluated
        else (Neuron.score.desc(), Neuron.unit)
    )
    best = session.execute(
        select(Neuron.id, Neuron.unit, Neuron.label, Neuron.score, Neuron.verdict, Neuron.reliable, Neuron.explained_r)
        .where(Neuron.layer_id == layer_id, _HOLDS, *([Neuron.explained_r.is_not(None)] if evaluated else []))
        .order_by(*order)
        .limit(BEST_UNITS)
    ).all()
    crops: dict[int, list[str]] = {}
    for neuron_id, unit, rank, crop in session.execute(
        select(TopImage.neuron_id, Neuron.unit, TopImage.rank, TopImage.crop_file)
        .join(Neuron, Neuron.id == TopImage.neuron_id)
        .where(TopImage.neuron_id.in_([row.id for row in best]))
        .order_by(TopImage.neuron_id, TopImage.rank)
    ):
        url = cut_media_url(crop, run_id, layer, unit, rank, "crop")
        if url and len(crops.setdefault(neuron_id, [])) < BEST_CROPS:
            crops[neuron_id].append(url)
    counts = session.execute(
        select(Neuron.label, func.count())
        .where(Neuron.layer_id == layer_id, _HOLDS, Neuron.label != "")
        .group_by(Neuron.label)
        .order_by(func.count().desc(), Neuron.label)
        .limit(COMMON_LABELS)
    ).all()
    return LayerFindings(
        layer=layer,
        position=position,
        n_units=n_units,
        ranked_by="r" if evaluated else "score",
        best=[
            UnitHit(
                layer=layer,
                layer_position=position,
                unit=row.unit,
                label=row.label,
                label_score=row.score,
                verdict=row.verdict,
                reliable=row.reliable,
                explained_r=row.explained_r,
                class_name=unit_class_name(class_names, n_units, row.unit),
                crop_urls=crops.get(row.id, []),
                url=neuron_url(run_id, layer, row.unit),
            )
            for row in best
        ],
        common_labels=[LabelCount(label=label, count=count) for label, count in counts],
        has_classes=unit_class_name(class_names, n_units, 0) is not None,
    )


def run_findings(session: Session, cache: ReadCache, run_id: int) -> list[LayerFindings]:
    """Return what the run found in each of its layers, in forward order."""
    run = cache.run(session, run_id)
    class_names = run_class_names(run)
    return [
        layer_findings(
            session,
            run_id=run_id,
            layer_id=cache.layer(session, run_id, layer.name).id,
            layer=layer.name,
            position=layer.position,
            n_units=layer.n_units,
            evaluated=layer.evaluation is not None,
            class_names=class_names,
        )
        for layer in run.layers
    ]
