"""Storing a dissection: round trip, content-addressed media reuse, one-transaction atomicity, bad jobs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

import app.persistence.store.rows
from app.core.config import Settings
from app.jobs.dissections import config_to_params, submit_dissection
from app.jobs.queue import jobs as queue
from app.jobs.queue.worker import run_worker
from app.persistence.db import write_session
from app.persistence.media import CUT_ON_REQUEST
from app.persistence.models import ConceptSet, Job, Layer, Neuron, ProbeImage, ProbeSet, Run, TargetModel, TopImage
from app.persistence.store import StoreCancelled, store_run
from app.persistence.store.artifacts import save_layer
from app.persistence.store.layout import ArtifactsLayout
from app.read.artifacts.activations import ActivationsUnavailable, load_layer_activations
from dissect_core.config import DissectConfig
from dissect_core.data import probe as probe_data
from dissect_core.errors import DissectError
from dissect_core.run_record import RunRecord
from tests.support.fakes import CONCEPTS, fake_executor, fake_result, job_config, make_images

TABLES = (TargetModel, ProbeSet, ConceptSet, Run, ProbeImage, Layer, Neuron, TopImage, Job)


def counts(engine: Engine) -> dict[str, int]:
    """Return the number of rows in every table."""
    with Session(engine) as session:
        return {table.__tablename__: session.scalar(select(func.count()).select_from(table)) for table in TABLES}


def media_files(settings: Settings) -> set[Path]:
    """Return every file under the media dir."""
    return {path for path in settings.media_dir.rglob("*") if path.is_file()}


@pytest.fixture
def images(tmp_path: Path) -> list[str]:
    """Eight small probe images."""
    return make_images(tmp_path / "probe", 8)


def test_round_trip(settings: Settings, engine: Engine, images: list[str]) -> None:
    result = fake_result(images)
    run_id = store_run(engine, settings, result)

    with Session(engine) as session:
        run = session.get(Run, run_id)
        assert run is not None
        record = RunRecord.from_json(run.settings)
        assert record == result.record and record.resolved.view == (40, 32)
        assert (record.config.encoder, record.config.similarity, record.config.pool) == (
            "tiny_clip:none",
            "soft_wpmi",
            "avg",
        )
        assert record.resolved.similarity_params == {"top_k": 3} and record.identities.code_version is not None
        assert run.model.name == "resnet18" and run.model.weights == "DEFAULT"
        assert run.concept_set.n_concepts == len(CONCEPTS)
        concept_file = settings.media_dir / run.concept_set.file
        assert concept_file.read_text().split() == CONCEPTS
        assert run.probe_set.n_images == len(images)
        assert [layer.name for layer in run.layers] == ["layer1", "fc"]

        probe_rows = session.scalars(select(ProbeImage).where(ProbeImage.run_id == run_id)).all()
        assert [row.index for row in probe_rows] == list(range(len(images)))
        assert [row.content_hash for row in probe_rows] == result.image_ids
        for row in probe_rows:
            with Image.open(settings.media_dir / row.view_file) as view:
                assert view.format == "JPEG" and view.size == (32, 32)

        for layer_row, layer in zip(run.layers, result.layers, strict=True):
            neurons = session.scalars(select(Neuron).where(Neuron.layer_id == layer_row.id).order_by(Neuron.unit))
            for neuron_row, neuron, tops in zip(neurons, layer.neurons, layer.top_images, strict=True):
                assert (neuron_row.unit, neuron_row.label) == (neuron.unit, neuron.label)
                assert neuron_row.score == pytest.approx(neuron.score)
                assert [alt["concept"] for alt in neuron_row.runners_up] == [alt.concept for alt in neuron.runners_up]
                assert len(neuron_row.top_images) == len(tops)
                for stored, top in zip(neuron_row.top_images, tops, strict=True):
                    assert (stored.rank, stored.image_index) == (top.rank, top.image_index)
                    assert (stored.box_x0, stored.box_y0, stored.box_x1, stored.box_y1) == pytest.approx(top.box)
                    assert stored.view_file == probe_rows[top.image_index].view_file
                    # Crops and heatmaps are cut on first request (tests/integration/test_top_image_media.py).
                    assert stored.crop_file == CUT_ON_REQUEST
                    assert stored.heatmap_file == (None if layer.top_maps is None else CUT_ON_REQUEST)

        artifacts = settings.data_dir / run.artifacts_dir  # stored relative to the data folder
        assert artifacts.parent == settings.artifacts_dir
        assert torch.equal(torch.load(artifacts / "image_embeddings.pt"), result.image_embeddings)
        assert torch.equal(torch.load(artifacts / "log_normalisers.pt"), result.log_normalisers)
        for layer in result.layers:
            assert torch.equal(torch.load(artifacts / "top_indices" / f"{layer.name}.pt"), layer.top_indices)
            kept = load_layer_activations(ArtifactsLayout(artifacts), layer.name, n_images=layer.activations.shape[0])
            if layer.top_maps is not None:  # what heatmaps are cut from, float16
                top_maps = torch.load(artifacts / "top_maps" / f"{layer.name}.pt")
                assert top_maps.dtype == torch.float16 and torch.allclose(top_maps.float(), layer.top_maps, atol=1e-2)
            assert torch.allclose(kept, layer.activations.float(), rtol=1e-3, atol=1e-3)  # float16 on disk
        assert torch.load(artifacts / "concepts.pt") == CONCEPTS
        assert json.loads((artifacts / "settings.json").read_text()) == run.settings


def test_media_and_sets_are_reused(settings: Settings, engine: Engine, images: list[str]) -> None:
    result = fake_result(images)
    first = store_run(engine, settings, result)
    files_after_first = media_files(settings)
    second = store_run(engine, settings, result)

    assert first != second
    assert media_files(settings) == files_after_first
    rows = counts(engine)
    assert (rows["runs"], rows["models"], rows["probe_sets"], rows["concept_sets"]) == (2, 1, 1, 1)
    with Session(engine) as session:
        crops = [
            sorted(session.scalars(select(TopImage.crop_file).join(Neuron).join(Layer).where(Layer.run_id == run)))
            for run in (first, second)
        ]
    assert crops[0] == crops[1]


def test_failure_mid_store_leaves_nothing(
    settings: Settings, engine: Engine, images: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    original = app.persistence.store.rows._insert_layer
    calls = []

    def insert_then_break(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk full (simulated)")
        return original(*args, **kwargs)

    monkeypatch.setattr(app.persistence.store.rows, "_insert_layer", insert_then_break)
    with pytest.raises(RuntimeError, match="simulated"):
        store_run(engine, settings, fake_result(images))

    assert set(counts(engine).values()) == {0}
    assert list(settings.artifacts_dir.iterdir()) == []


def test_before_commit_can_veto(settings: Settings, engine: Engine, images: list[str]) -> None:
    def veto(session: Session, run_id: int) -> None:
        assert session.get(Run, run_id) is not None  # the rows exist inside the transaction...
        raise queue.JobLost("job was taken over")

    with pytest.raises(queue.JobLost):
        store_run(engine, settings, fake_result(images), before_commit=veto)
    assert set(counts(engine).values()) == {0}  # ...and nowhere after it
    assert list(settings.artifacts_dir.iterdir()) == []


def test_stop_while_writing_media(settings: Settings, engine: Engine, images: list[str]) -> None:
    with pytest.raises(StoreCancelled):
        store_run(engine, settings, fake_result(images), should_stop=lambda: True)
    assert set(counts(engine).values()) == {0}
    assert list(settings.artifacts_dir.iterdir()) == []


def test_unreadable_probe_image_is_a_clear_error(settings: Settings, engine: Engine, images: list[str]) -> None:
    result = fake_result(images)
    Path(images[0]).unlink()
    with pytest.raises(DissectError, match=r"can no longer be read.*restore it"):
        store_run(engine, settings, result)
    assert set(counts(engine).values()) == {0}


def test_bad_params_fail_only_their_job(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    make_images(probe, 4)
    with Session(engine) as session:
        good = submit_dissection(session, job_config(probe, 1))
        missing_layers = queue.enqueue(session, {**config_to_params(job_config(probe, 2)), "layers": []}).id
        typo = queue.enqueue(session, {**config_to_params(job_config(probe, 3)), "modle": "x"}).id
        session.commit()
    (settings.data_dir / "behaviour.json").write_text(
        json.dumps({"fail": "top_k=50 is larger than the probe set; lower top_k", "fail_markers": [4]})
    )
    with write_session(engine) as session:
        pipeline_error = submit_dissection(session, job_config(probe, 4))

    for _ in range(4):
        run_worker(settings, once=True, executor=fake_executor, handle_signals=False)

    with Session(engine) as session:
        jobs = {job.id: job for job in session.scalars(select(Job))}
        runs = session.scalars(select(Run.id)).all()
    assert jobs[good].status == "succeeded" and jobs[good].run_id == runs[0] and len(runs) == 1
    assert jobs[missing_layers].status == "failed"
    assert "missing setting(s) layers" in jobs[missing_layers].error
    assert jobs[typo].status == "failed" and "unknown setting(s) modle" in jobs[typo].error
    assert jobs[pipeline_error].status == "failed" and "lower top_k" in jobs[pipeline_error].error


def test_submit_rejects_bad_config_and_queues_nothing(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    make_images(probe, 2)
    bad_configs = {
        "does not exist": DissectConfig(model="resnet18", layers=("layer1",), probe=str(tmp_path / "nowhere")),
        "layers must be": DissectConfig(model="resnet18", layers=(), probe=str(probe)),
        "batch_size must be": DissectConfig(model="resnet18", layers=("a",), probe=str(probe), batch_size=0),
        "unknown similarity": DissectConfig(model="resnet18", layers=("a",), probe=str(probe), similarity="nope"),
        "unknown pooling": DissectConfig(model="resnet18", layers=("a",), probe=str(probe), pool="median"),
        "concept file": DissectConfig(model="resnet18", layers=("a",), probe=str(probe), concepts="x.txt"),
    }
    with Session(engine) as session:
        for message, config in bad_configs.items():
            with pytest.raises(DissectError, match=message):
                submit_dissection(session, config)
    assert counts(engine)["jobs"] == 0


def test_a_result_without_a_probe_hash_gets_the_probe_sets_own_id(
    settings: Settings, engine: Engine, images: list[str]
) -> None:
    # The pipeline records probe_hash; a result without it must still land on the same probe-set row.
    result = fake_result(images)
    result.record = replace(result.record, identities=replace(result.record.identities, probe_hash=None))
    run_id = store_run(engine, settings, result)
    pairs = zip(images, result.image_ids, strict=True)
    probe = probe_data.ProbeSet("probe", [probe_data.ProbeImage(path=path, content_hash=id_) for path, id_ in pairs])
    with Session(engine) as session:
        run = session.get(Run, run_id)
        assert run is not None and run.probe_set.content_hash == probe.content_hash


def test_a_run_without_kept_activations_says_to_dissect_again(tmp_path: Path) -> None:
    layout = ArtifactsLayout(tmp_path)
    with pytest.raises(ActivationsUnavailable, match="dissect the model again"):
        load_layer_activations(layout, "layer4")
    save_layer(layout, "layer4", activations=torch.zeros(3))  # one dimension: damaged
    with pytest.raises(ActivationsUnavailable, match="damaged"):
        load_layer_activations(layout, "layer4")


def test_a_sampled_probe_set_is_named_as_a_sample(settings: Settings, engine: Engine, images: list[str]) -> None:
    from app.read.runs.queries import list_runs, run_detail

    result = fake_result(images)
    whole_id = store_run(engine, settings, result)
    result.record = replace(result.record, identities=replace(result.record.identities, sampled_from=10_000))
    sample_id = store_run(engine, settings, result)
    with Session(engine) as session:
        shown = {run.id: run.probe_set_display_name for run in list_runs(session)}
        detail = run_detail(session, sample_id)
    assert shown == {whole_id: "probe (8 images)", sample_id: "probe (sample of 8 of 10,000)"}
    assert detail.settings["identities"]["sampled_from"] == 10_000 and detail.settings["probe"] == "probe"
