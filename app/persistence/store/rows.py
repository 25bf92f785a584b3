"""A run's rows: model, probe and concept sets (shared, get-or-create), the run, its probe images, layers,
neurons and top images, inserted with Core statements inside the caller's transaction (never committed here)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

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
from dissect_core.data.concepts import concept_set_hash
from dissect_core.data.probe import probe_set_hash
from dissect_core.names import is_torchscript_name
from dissect_core.neuron_rows import finite_or_none, finite_or_zero, neuron_fields
from dissect_core.results import DissectionResult, LayerResult
from dissect_core.results import TopImage as FoundTopImage
from dissect_core.run_record import RunRecord

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
    def from_record(cls, record: RunRecord) -> ModelInfo:
        """Return the identity of the run's model: a checkpoint's or TorchScript file's by the hash its record
        kept (the file is not read again).

        The name is the config's `model_name` when given (an uploaded checkpoint's), else the model's own.
        """
        config = record.config
        name = config.model_name
        weights_file = config.checkpoint or (config.model if is_torchscript_name(config.model) else None)
        digest = record.facts.checkpoint_sha256
        if weights_file and digest is None:
            raise AtlasError(
                f"the run's record does not say the hash of its weights file {weights_file}; build its facts with "
                "dissect_core.run_record.weights_provenance(config)"
            )
        if config.checkpoint:
            return cls(name or config.model, config.model, config.weights, digest, config.checkpoint)
        if weights_file:
            return cls(name or Path(config.model).name, "torchscript", None, digest, config.model)
        return cls(name or config.model, config.model, config.weights)


def insert_rows(
    session: Session,
    result: DissectionResult,
    pinned: dict[str, Any],
    media: RunMedia,
    concepts_file: str,
    artifacts_dir: str,
    target_model_id: int | None = None,
) -> int:
    """Insert the run (its record as stored, `pinned`; its artifacts folder as stored, e.g. relative to the data
    folder) and everything under it into the session's transaction; return the run's id. The run joins the model
    row `target_model_id` when given (an upload's, added when it was queued), else the one its record names."""
    record = RunRecord.from_json(pinned)
    run = Run(
        model_id=_model_row(session, record, target_model_id).id,
        probe_set_id=_probe_set_row(session, record, result).id,
        concept_set_id=_concept_set_row(session, record, result, concepts_file).id,
        settings=pinned,
        artifacts_dir=artifacts_dir,
    )
    session.add(run)
    session.flush()
    image_hashes = [_image_hash(image_id) for image_id in result.image_ids]
    _insert_probe_images(session, run.id, result, media, image_hashes)
    for layer_position, layer in enumerate(result.layers):
        _insert_layer(session, run.id, layer_position, layer, media, image_hashes)
    return run.id


def _model_row(session: Session, record: RunRecord, target_model_id: int | None) -> TargetModel:
    reserved = session.get(TargetModel, target_model_id) if target_model_id is not None else None
    if reserved is not None:
        return reserved
    model_info = ModelInfo.from_record(record)
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


def _probe_set_row(session: Session, record: RunRecord, result: DissectionResult) -> ProbeSet:
    # A record that does not name its probe set's hash (one built by hand) gets the stored images' own.
    content_hash = record.identities.probe_hash or probe_set_hash(result.image_ids)
    extra = {"name": (record.config.probe or "probe images")[:500], "n_images": len(result.image_ids)}
    return _get_or_create(session, ProbeSet, {"content_hash": content_hash}, extra)


def _concept_set_row(session: Session, record: RunRecord, result: DissectionResult, concepts_file: str) -> ConceptSet:
    content_hash = record.identities.concept_hash or concept_set_hash(result.concepts)
    name = (record.identities.concept_set_name or record.config.concepts or "concepts")[:500]
    extra = {"name": name, "n_concepts": len(result.concepts), "file": concepts_file}
    return _get_or_create(session, ConceptSet, {"content_hash": content_hash}, extra)


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
    # The columns are a neuron row's own (dissect_core.neuron_rows), so every export reads them back by name.
    neuron_rows = [
        {"layer_id": layer_row.id, **neuron_fields(neuron), "label": neuron.label[:500]} for neuron in layer.neurons
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
        "activation": finite_or_zero(top.activation),
        "box_x0": x0,
        "box_y0": y0,
        "box_x1": x1,
        "box_y1": y1,
        "crop_file": media.crop_file(ref),
        "view_file": media.views[top.image_index],
        "heatmap_file": media.heatmap_file(ref),
    }


def _json_safe(values: dict[str, Any]) -> dict[str, Any]:
    """Return a dict with its non-finite floats as None (JSON has no NaN or infinity)."""
    return {key: finite_or_none(value) if isinstance(value, float) else value for key, value in values.items()}


def _image_hash(image_id: str) -> str:
    # The columns hold 64 characters: a sha256 hex id is kept as is, anything else is hashed to one.
    is_hex64 = len(image_id) == 64 and all(char in "0123456789abcdef" for char in image_id)
    return image_id if is_hex64 else hashlib.sha256(image_id.encode()).hexdigest()


def _table(model: type[Base]) -> Table:
    """Return a model's Core table (inserts on it skip the ORM's per-row bookkeeping)."""
    return cast(Table, model.__table__)
