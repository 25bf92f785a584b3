"""Store a finished dissection: media files and artifacts first, then every row in one transaction."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

import dissect_core
from app.core.config import Settings
from app.core.errors import AtlasError
from app.persistence.db import write_session
from app.persistence.media import MediaStore, crop_around, heatmap_levels, heatmap_png, jpeg_bytes
from app.persistence.models import ConceptSet, Layer, Neuron, ProbeImage, ProbeSet, Run, TargetModel, TopImage
from dissect_core.config import DissectConfig
from dissect_core.results import DissectionResult, LayerResult

ViewLoader = Callable[[str, int, int], Image.Image]
Progress = Callable[[str, int, int], None]
BeforeCommit = Callable[[Session, int], None]
# Any constant works; PostgreSQL stores take it so concurrent get-or-creates cannot duplicate a model row.
STORE_LOCK_KEY = 7_245_312
MEDIA_THREADS = 8


class StoreCancelled(RuntimeError):
    """`should_stop` returned True while media files were being written; nothing was stored."""


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
        """Derive the model identity from a run's settings, hashing a checkpoint or TorchScript file."""
        model = str(settings["model"])
        checkpoint = settings.get("checkpoint")
        weights = settings.get("weights")
        if checkpoint:
            digest = settings.get("checkpoint_sha256") or file_sha256(Path(checkpoint))
            return cls(model, model, weights, digest, str(checkpoint))
        if Path(model).is_file():
            return cls(Path(model).name, "torchscript", None, file_sha256(Path(model)), model)
        return cls(model, model, None if weights is None else str(weights))


@dataclass(frozen=True)
class _TopRef:
    layer: int
    neuron: int
    rank_position: int


@dataclass
class _Media:
    views: dict[int, str]
    crops: dict[_TopRef, str]
    heatmaps: dict[_TopRef, str]


def store_run(
    db: Engine | sessionmaker[Session],
    settings: Settings,
    result: DissectionResult,
    model_info: ModelInfo | None = None,
    *,
    config: DissectConfig | None = None,
    load_view: ViewLoader | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    before_commit: BeforeCommit | None = None,
) -> int:
    """Store a dissection; return the new run's id. Either all of it becomes visible or none of it.

    Media files (content-addressed, shared between runs) and the artifacts folder are written first;
    then one transaction inserts every row and runs `before_commit(session, run_id)`, which may raise to
    abort. On failure the artifacts folder is removed; media files left behind are harmless and reused.
    """
    engine = db if isinstance(db, Engine) else db.kw["bind"]
    settings.ensure_dirs()
    pinned = pin_settings(result, config)
    model_info = model_info or ModelInfo.from_settings(pinned)
    pinned["checkpoint_sha256"] = model_info.checkpoint_sha256
    view = _view_size(result.settings)
    media_store = MediaStore(settings.media_dir)
    media = _write_media(media_store, result, view, load_view or _default_view_loader(), progress, should_stop)
    concepts_file = media_store.put(concepts_text(result.concepts).encode(), ".txt")
    run_dir = _write_artifacts(settings.artifacts_dir, result, pinned)
    try:
        if progress:
            progress("store", 0, 1)
        with write_session(engine) as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": STORE_LOCK_KEY})
            run_id = _insert_rows(session, result, pinned, model_info, media, concepts_file, run_dir)
            if before_commit:
                before_commit(session, run_id)
        if progress:
            progress("store", 1, 1)
        return run_id
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise


def pin_settings(result: DissectionResult, config: DissectConfig | None) -> dict[str, Any]:
    """Return every setting of the run as plain JSON: config, pipeline settings, hashes, code version."""
    # Defaults first: a field neither the config nor the pipeline recorded had its default value.
    pinned: dict[str, Any] = {spec.name: spec.default for spec in fields(DissectConfig) if spec.default is not MISSING}
    if config is not None:
        pinned.update(config.to_dict())
    pinned.update(result.settings)
    if "model" not in pinned:
        raise ValueError("store_run needs the model name: pass config= or put 'model' in result.settings")
    pinned["similarity_params"] = dict(pinned.get("similarity_params") or {})
    pinned.update(
        code_version=dissect_core.__version__,
        probe_set_hash=result.settings.get("probe_hash") or probe_set_hash(result.image_ids),
        concept_set_hash=hashlib.sha256(concepts_text(result.concepts).encode()).hexdigest(),
        n_images=len(result.image_ids),
        n_concepts=len(result.concepts),
        skipped_images=list(result.skipped_images),
        timings_s=dict(result.timings),
    )
    return json_safe(pinned)


def concepts_text(concepts: Iterable[str]) -> str:
    """Return the concept set as stored: one concept per line."""
    return "".join(f"{concept}\n" for concept in concepts)


def probe_set_hash(image_ids: Iterable[str]) -> str:
    """Return the probe set's identity: sha256 over its images' content hashes, in probe order."""
    return hashlib.sha256("\n".join(image_ids).encode()).hexdigest()


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Return the sha256 of a file's bytes."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as stream:
            while block := stream.read(chunk):
                digest.update(block)
    except OSError as error:
        raise AtlasError(f"cannot read {path} to record its hash ({error.strerror}); check it exists") from None
    return digest.hexdigest()


def json_safe(value: Any) -> Any:
    """Return `value` as plain JSON types; NaN and infinities become None, unknown objects strings."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(item) for item in value]
    if isinstance(value, torch.Tensor | np.generic) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def _finite(value: float) -> float:
    number = float(value)
    return number if math.isfinite(number) else 0.0


def _image_hash(image_id: str) -> str:
    # The columns hold 64 characters: a sha256 hex id is kept as is, anything else is hashed to one.
    is_hex64 = len(image_id) == 64 and all(char in "0123456789abcdef" for char in image_id)
    return image_id if is_hex64 else hashlib.sha256(image_id.encode()).hexdigest()


def _view_size(result_settings: dict[str, Any]) -> tuple[int, int]:
    view = result_settings.get("view")
    if not isinstance(view, dict) or "resize" not in view or "crop" not in view:
        raise ValueError("result.settings['view'] must be {'resize': R, 'crop': C} to draw crops and heatmaps")
    return int(view["resize"]), int(view["crop"])


def _default_view_loader() -> ViewLoader:
    from dissect_core.data.probe import load_view

    return load_view


def _write_media(
    media_store: MediaStore,
    result: DissectionResult,
    view_size: tuple[int, int],
    load_view: ViewLoader,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
) -> _Media:
    by_image: dict[int, list[tuple[_TopRef, Any]]] = defaultdict(list)
    levels = [_layer_levels(layer) for layer in result.layers]
    for layer_position, layer in enumerate(result.layers):
        for neuron_position, tops in enumerate(layer.top_images):
            for rank_position, top in enumerate(tops):
                by_image[top.image_index].append((_TopRef(layer_position, neuron_position, rank_position), top))
    media = _Media(views={}, crops={}, heatmaps={})
    total = len(result.image_paths)

    def render(image_index: int) -> tuple[int, str, list[tuple[_TopRef, str, str | None]]]:
        path = result.image_paths[image_index]
        try:
            view = load_view(path, *view_size).convert("RGB")
        except (OSError, ValueError) as error:
            raise AtlasError(
                f"probe image {path} can no longer be read ({error}); restore it and run the dissection again"
            ) from None
        view_file = media_store.put(jpeg_bytes(view), ".jpg")
        drawn = []
        crops_by_box: dict[tuple[float, ...], str] = {}  # neurons peaking at the same place share one crop
        for ref, top in by_image.get(image_index, []):
            box = tuple(top.box)
            if box not in crops_by_box:
                crops_by_box[box] = media_store.put(jpeg_bytes(crop_around(view, top.box)), ".jpg")
            heatmap_file = None
            layer_levels = levels[ref.layer]
            if layer_levels is not None and ref.rank_position < layer_levels.shape[1]:
                heatmap = heatmap_png(layer_levels[ref.neuron, ref.rank_position])
                heatmap_file = media_store.put(heatmap, ".png")
            drawn.append((ref, crops_by_box[box], heatmap_file))
        return image_index, view_file, drawn

    # PIL's resize, blend and JPEG encoding release the GIL, so a few threads overlap well.
    pool = ThreadPoolExecutor(max_workers=min(MEDIA_THREADS, os.cpu_count() or 1))
    try:
        for done, (image_index, view_file, drawn) in enumerate(pool.map(render, range(total)), start=1):
            media.views[image_index] = view_file
            for ref, crop_file, heatmap_file in drawn:
                media.crops[ref] = crop_file
                if heatmap_file is not None:
                    media.heatmaps[ref] = heatmap_file
            if done % 64 == 0 or done == total:
                if should_stop and should_stop():
                    raise StoreCancelled("stopped on request while writing media files; nothing was stored")
                if progress:
                    progress("media", done, total)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return media


def _layer_levels(layer: LayerResult) -> np.ndarray | None:
    if layer.top_maps is None:
        return None
    return heatmap_levels(layer.top_maps.detach().float().cpu().numpy())


def _write_artifacts(root: Path, result: DissectionResult, pinned: dict[str, Any]) -> Path:
    run_dir = root / uuid.uuid4().hex
    partial = root / f".partial-{run_dir.name}"
    partial.mkdir(parents=True)
    try:
        torch.save(result.image_embeddings.detach().cpu().contiguous().clone(), partial / "image_embeddings.pt")
        if result.log_normalisers is not None:
            normalisers = result.log_normalisers.detach().cpu().contiguous().clone()
            torch.save(normalisers, partial / "log_normalisers.pt")
        (partial / "top_indices").mkdir()
        for layer in result.layers:
            indices = layer.top_indices.detach().cpu().contiguous().clone()
            torch.save(indices, partial / "top_indices" / f"{_safe_file_name(layer.name)}.pt")
        torch.save(list(result.concepts), partial / "concepts.pt")
        (partial / "concepts.txt").write_text(concepts_text(result.concepts), encoding="utf-8")
        (partial / "settings.json").write_text(json.dumps(pinned, indent=2, sort_keys=True), encoding="utf-8")
        # The folder appears under its final name complete or not at all.
        partial.rename(run_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return run_dir


def _safe_file_name(layer_name: str) -> str:
    if not layer_name or "/" in layer_name or "\\" in layer_name or layer_name in (".", ".."):
        raise AtlasError(f"layer name {layer_name!r} cannot name a file; name layers by their module path")
    return layer_name


def _get_or_create(session: Session, model: type, match: dict[str, Any], extra: dict[str, Any]) -> Any:
    query = select(model).filter_by(**match).order_by(model.id).limit(1)
    existing = session.scalars(query).first()
    if existing is not None:
        return existing
    row = model(**match, **extra)
    session.add(row)
    session.flush()
    return row


def _insert_rows(
    session: Session,
    result: DissectionResult,
    pinned: dict[str, Any],
    model_info: ModelInfo,
    media: _Media,
    concepts_file: str,
    run_dir: Path,
) -> int:
    model = _get_or_create(
        session,
        TargetModel,
        {
            "name": model_info.name,
            "architecture": model_info.architecture,
            "weights": model_info.weights,
            "checkpoint_sha256": model_info.checkpoint_sha256,
        },
        {"checkpoint_file": model_info.checkpoint_file},
    )
    probe_set = _get_or_create(
        session,
        ProbeSet,
        {"content_hash": pinned["probe_set_hash"]},
        {"name": str(pinned.get("probe") or "probe images")[:500], "n_images": len(result.image_ids)},
    )
    concept_set = _get_or_create(
        session,
        ConceptSet,
        {"content_hash": pinned["concept_set_hash"]},
        {
            "name": str(pinned.get("concept_set_name") or pinned.get("concepts") or "concepts")[:500],
            "n_concepts": len(result.concepts),
            "file": concepts_file,
        },
    )
    run = Run(
        model_id=model.id,
        probe_set_id=probe_set.id,
        concept_set_id=concept_set.id,
        encoder=str(pinned.get("encoder"))[:500],
        similarity=str(pinned.get("similarity"))[:50],
        similarity_params=pinned["similarity_params"],
        pooling=str(pinned.get("pool") or pinned.get("pooling"))[:10],
        settings=pinned,
        code_version=dissect_core.__version__,
        artifacts_dir=str(run_dir),
    )
    session.add(run)
    session.flush()
    image_hashes = [_image_hash(image_id) for image_id in result.image_ids]
    probe_rows = [
        {
            "run_id": run.id,
            "index": index,
            "content_hash": image_hashes[index],
            "source_path": str(path),
            "view_file": media.views.get(index),
        }
        for index, path in enumerate(result.image_paths)
    ]
    if probe_rows:
        # Core inserts on the tables (not the ORM classes): the ORM's per-row bookkeeping would double the time.
        session.execute(insert(ProbeImage.__table__), probe_rows)
    for layer_position, layer in enumerate(result.layers):
        _insert_layer(session, run.id, layer_position, layer, media, image_hashes)
    return run.id


def _insert_layer(
    session: Session,
    run_id: int,
    layer_position: int,
    layer: LayerResult,
    media: _Media,
    image_hashes: list[str],
) -> None:
    layer_row = Layer(run_id=run_id, name=layer.name, position=layer_position, kind=layer.kind, n_units=layer.n_units)
    session.add(layer_row)
    session.flush()
    neuron_rows = [
        {
            "layer_id": layer_row.id,
            "unit": int(neuron.unit),
            "label": neuron.label[:500],
            "score": _finite(neuron.score),
            "runners_up": [{"concept": alt.concept, "score": _finite(alt.score)} for alt in neuron.runners_up],
        }
        for neuron in layer.neurons
    ]
    if not neuron_rows:
        return
    neuron_table = Neuron.__table__
    neuron_ids = session.scalars(
        insert(neuron_table).returning(neuron_table.c.id, sort_by_parameter_order=True), neuron_rows
    ).all()
    top_rows = []
    for neuron_position, (neuron_id, tops) in enumerate(zip(neuron_ids, layer.top_images, strict=True)):
        for rank_position, top in enumerate(tops):
            ref = _TopRef(layer_position, neuron_position, rank_position)
            x0, y0, x1, y1 = (float(value) for value in top.box)
            top_rows.append(
                {
                    "neuron_id": neuron_id,
                    "rank": int(top.rank),
                    "image_index": int(top.image_index),
                    "image_hash": image_hashes[top.image_index],
                    "activation": _finite(top.activation),
                    "box_x0": x0,
                    "box_y0": y0,
                    "box_x1": x1,
                    "box_y1": y1,
                    "crop_file": media.crops[ref],
                    "view_file": media.views[top.image_index],
                    "heatmap_file": media.heatmaps.get(ref),
                }
            )
    if top_rows:
        session.execute(insert(TopImage.__table__), top_rows)
