"""A run's rows: model, probe and concept sets (shared, get-or-create), the run, its probe images, layers,
neurons and top images, inserted with Core statements inside the caller's transaction (never committed here)."""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

import dissect_core
from app.core.errors import AtlasError
from app.persistence.models import (
    Base,
    ConceptSet,
    Layer,
    Neuron,
    ProbeImage,
    ProbeSet,
    Run,
    TargetModel,
    TopImage,
)
from app.persistence.store.run_media import RunMedia, TopRef
from dissect_core.data.hashing import file_sha256
from dissect_core.results import EVALUATION_FIELDS, DissectionResult, LayerResult, NeuronEvaluation
from dissect_core.results import TopImage as FoundTopImage

RowT = TypeVar("RowT", bound=Base)


@dataclass(frozen=True)
class ModelInfo:
    """Identity of the dissected network as stored in the `models` table."""

    name: str
    architecture: str
    weights: str | None = None
    checkpoint_sha256: str | None = None
    checkpoint_file: str | None = None

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> ModelInfo:
        """Derive the model identity from a run's settings, hashing a checkpoint or TorchScript file.

        The name is the settings' `model_name` when given (an uploaded checkpoint's), else the model's own.
        """
        model = str(settings["model"])
        name = settings.get("model_name")
        checkpoint = settings.get("checkpoint")
        weights = settings.get("weights")
        if checkpoint:
            digest = settings.get("checkpoint_sha256") or _recorded_sha256(Path(checkpoint))
            return cls(name or model, model, weights, digest, str(checkpoint))
        if Path(model).is_file():
            return cls(name or Path(model).name, "torchscript", None, _recorded_sha256(Path(model)), model)
        return cls(name or model, model, None if weights is None else str(weights))


def _recorded_sha256(path: Path) -> str:
    try:
        return file_sha256(path)
    except OSError as error:
        raise AtlasError(f"cannot read {path} to record its hash ({error.strerror}); check it exists") from None


def insert_rows(
    session: Session,
    result: DissectionResult,
    pinned: dict[str, Any],
    model_info: ModelInfo,
    media: RunMedia,
    concepts_file: str,
    artifacts_dir: str,
) -> int:
    """Insert the run (its artifacts folder as stored, e.g. relative to the data folder) and everything under it
    into the session's transaction; return the run's id."""
    run = Run(
        model_id=_model_row(session, model_info).id,
        probe_set_id=_probe_set_row(session, pinned, len(result.image_ids)).id,
        concept_set_id=_concept_set_row(session, pinned, len(result.concepts), concepts_file).id,
        encoder=str(pinned.get("encoder"))[:500],
        similarity=str(pinned.get("similarity"))[:50],
        similarity_params=pinned["similarity_params"],
        pooling=str(pinned.get("pool") or pinned.get("pooling"))[:10],
        settings=pinned,
        code_version=dissect_core.__version__,
        artifacts_dir=artifacts_dir,
    )
    session.add(run)
    session.flush()
    image_hashes = [_image_hash(image_id) for image_id in result.image_ids]
    _insert_probe_images(session, run.id, result, media, image_hashes)
    for layer_position, layer in enumerate(result.layers):
        _insert_layer(session, run.id, layer_position, layer, media, image_hashes)
    return run.id


def _model_row(session: Session, model_info: ModelInfo) -> TargetModel:
    identity = {
        "name": model_info.name,
        "architecture": model_info.architecture,
        "weights": model_info.weights,
        "checkpoint_sha256": model_info.checkpoint_sha256,
    }
    found = session.scalars(select(TargetModel).filter_by(**identity).order_by(TargetModel.id).limit(1)).first()
    if found is not None:
        return found
    # An uploaded model's name is its own: a run of any other network never joins it.
    if session.scalar(select(TargetModel.id).where(TargetModel.uploaded_name == model_info.name)) is not None:
        raise AtlasError(
            f"the model name {model_info.name!r} belongs to an uploaded checkpoint; store this run under another "
            "model_name"
        )
    row = TargetModel(**identity, checkpoint_file=model_info.checkpoint_file)
    session.add(row)
    session.flush()
    return row


def _probe_set_row(session: Session, pinned: dict[str, Any], n_images: int) -> ProbeSet:
    name = str(pinned.get("probe") or "probe images")[:500]
    return _get_or_create(
        session, ProbeSet, {"content_hash": pinned["probe_set_hash"]}, {"name": name, "n_images": n_images}
    )


def _concept_set_row(session: Session, pinned: dict[str, Any], n_concepts: int, concepts_file: str) -> ConceptSet:
    name = str(pinned.get("concept_set_name") or pinned.get("concepts") or "concepts")[:500]
    extra = {"name": name, "n_concepts": n_concepts, "file": concepts_file}
    return _get_or_create(session, ConceptSet, {"content_hash": pinned["concept_set_hash"]}, extra)


def _get_or_create(session: Session, model: type[RowT], match: dict[str, Any], extra: dict[str, Any]) -> RowT:
    query = select(model).filter_by(**match).order_by(model.id).limit(1)  # type: ignore[attr-defined]
    existing = session.scalars(query).first()
    if existing is not None:
        return existing
    row = model(**match, **extra)
    session.add(row)
    session.flush()
    return row


def _insert_probe_images(
    session: Session, run_id: int, result: DissectionResult, media: RunMedia, image_hashes: list[str]
) -> None:
    probe_rows = [
        {
            "run_id": run_id,
            "index": index,
            "content_hash": image_hashes[index],
            "source_path": str(path),
            "view_file": media.views.get(index),
        }
        for index, path in enumerate(result.image_paths)
    ]
    if probe_rows:
        # Core inserts on the tables (not the ORM classes): the ORM's per-row bookkeeping would double the time.
        session.execute(insert(_table(ProbeImage)), probe_rows)


def _insert_layer(
    session: Session,
    run_id: int,
    layer_position: int,
    layer: LayerResult,
    media: RunMedia,
    image_hashes: list[str],
) -> None:
    layer_row = Layer(
        run_id=run_id,
        name=layer.name,
        position=layer_position,
        kind=layer.kind,
        n_units=layer.n_units,
        evaluation=_json_safe(asdict(layer.evaluation)) if layer.evaluation is not None else None,
    )
    session.add(layer_row)
    session.flush()
    neuron_rows = [
        {
            "layer_id": layer_row.id,
            "unit": int(neuron.unit),
            "label": neuron.label[:500],
            "score": _finite(neuron.score),
            "runners_up": [{"concept": alt.concept, "score": _finite(alt.score)} for alt in neuron.runners_up],
            **evaluation_columns(neuron.evaluation),
        }
        for neuron in layer.neurons
    ]
    if not neuron_rows:
        return
    neuron_table = _table(Neuron)
    neuron_ids = session.scalars(
        insert(neuron_table).returning(neuron_table.c.id, sort_by_parameter_order=True), neuron_rows
    ).all()
    top_rows = [
        _top_image_row(neuron_id, top, TopRef(layer_position, neuron_position, rank_position), media, image_hashes)
        for neuron_position, (neuron_id, tops) in enumerate(zip(neuron_ids, layer.top_images, strict=True))
        for rank_position, top in enumerate(tops)
    ]
    if top_rows:
        session.execute(insert(_table(TopImage)), top_rows)


def _top_image_row(
    neuron_id: int, top: FoundTopImage, ref: TopRef, media: RunMedia, image_hashes: list[str]
) -> dict[str, Any]:
    x0, y0, x1, y1 = (float(value) for value in top.box)
    return {
        "neuron_id": neuron_id,
        "rank": int(top.rank),
        "image_index": int(top.image_index),
        "image_hash": image_hashes[top.image_index],
        "activation": _finite(top.activation),
        "box_x0": x0,
        "box_y0": y0,
        "box_x1": x1,
        "box_y1": y1,
        "crop_file": media.crop_file(ref),
        "view_file": media.views[top.image_index],
        "heatmap_file": media.heatmap_file(ref),
    }


def evaluation_columns(evaluation: NeuronEvaluation | None) -> dict[str, Any]:
    """Return a neuron's evaluation as `neurons` columns: NULLs when it was not evaluated, and for an undefined r."""
    if evaluation is None:
        return dict.fromkeys(EVALUATION_FIELDS)  # the columns are named as the fields; every row names them all
    return {
        "explained_r": _finite_or_none(evaluation.explained_r),
        "p_value": _finite_or_none(evaluation.p_value),
        "reliable": bool(evaluation.reliable),
        "stability": _finite_or_none(evaluation.stability),
        "explanation": [{"concept": term.concept, "weight": _finite(term.weight)} for term in evaluation.explanation],
        "explanation_r": _finite_or_none(evaluation.explanation_r),
        "ground_truth_r": _finite_or_none(evaluation.ground_truth_r),
    }


def _finite(value: float) -> float:
    number = float(value)
    return number if math.isfinite(number) else 0.0


def _finite_or_none(value: float | None) -> float | None:
    # A correlation of a constant is undefined (NaN): stored as NULL, never as a made-up 0.
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _json_safe(values: dict[str, Any]) -> dict[str, Any]:
    """Return a dict with its non-finite floats as None (JSON has no NaN or infinity)."""
    return {key: _finite_or_none(value) if isinstance(value, float) else value for key, value in values.items()}


def _image_hash(image_id: str) -> str:
    # The columns hold 64 characters: a sha256 hex id is kept as is, anything else is hashed to one.
    is_hex64 = len(image_id) == 64 and all(char in "0123456789abcdef" for char in image_id)
    return image_id if is_hex64 else hashlib.sha256(image_id.encode()).hexdigest()


def _table(model: type[Base]) -> Table:
    """Return a model's Core table (inserts on it skip the ORM's per-row bookkeeping)."""
    return cast(Table, model.__table__)
