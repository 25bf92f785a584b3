"""A relabel asks for what its parent run was asked for, never what the parent resolved: a run a GPU worker made
relabels on a CPU-only worker. Regression: the parent's resolved device `cuda:0` was pinned over the requested
None, so the relabel asked for it and failed ("device cuda:0 was requested but CUDA is not available")."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from sqlalchemy.orm import Session

from app.jobs.dissections import validate_config
from app.jobs.queue.worker import run_worker
from app.jobs.runs.typed_concepts import keep_typed_concept, relabel_with_typed_concepts
from app.persistence.db import write_session
from app.persistence.models import Job, Run
from app.persistence.store import store_run
from dissect_core.config import DissectConfig
from dissect_core.pipeline import run_dissection
from dissect_core.run_record import RunRecord
from tests.conftest import TINY_CLIP
from tests.support.dashboard_seed import prepare_database

pytestmark = pytest.mark.usefixtures("tiny_clip")


@pytest.mark.parametrize("stored_as", ["record", "flat settings of an older run"])
def test_a_run_made_on_a_gpu_relabels_on_a_cpu_only_worker(
    stored_as: str, probe_folder: Path, concept_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, engine = prepare_database(tmp_path / "data")
    config = DissectConfig(
        model="resnet18", weights="none", layers=("fc",), probe=str(probe_folder), concepts=str(concept_file),
        encoder=TINY_CLIP, similarity_params={"top_k": 4}, n_folds=0,
    )  # fmt: skip
    result = run_dissection(validate_config(config), cache_dir=settings.cache_dir)
    # What a GPU worker records: the device it ran on, beside the config that asked for none.
    result.record = replace(result.record, resolved=replace(result.record.resolved, device="cuda:0"))
    parent_id = store_run(engine, settings, result)
    if stored_as != "record":  # as runs were stored before the record: resolved values under the config's keys
        flat = {**result.record.to_json(), **result.record.to_json()["resolved"], "resolved": None}
        with write_session(engine) as session:
            session.get(Run, parent_id).settings = flat  # type: ignore[union-attr]
    with write_session(engine) as session:
        keep_typed_concept(session, parent_id, "zebra")
        job_id = relabel_with_typed_concepts(session, settings, parent_id)
    with Session(engine) as session:
        job = session.get(Job, job_id)
        parent = session.get(Run, parent_id)
        assert job is not None and parent is not None
        assert job.params["device"] is None and job.target_model_id == parent.model_id
        if stored_as == "record":  # what the parent resolved never becomes a request
            assert job.params["preprocessing"] == {} and job.params["similarity_params"] == {"top_k": 4}

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a CPU-only worker, whatever this machine has
    assert run_worker(settings, once=True, handle_signals=False) == 1
    with Session(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None and (job.status, job.error) == ("succeeded", None)
        relabel = session.get(Run, job.run_id)
        assert relabel is not None and relabel.parent_run_id == parent_id and relabel.model_id == parent.model_id
        record = RunRecord.from_json(relabel.settings)
    assert record.config.device is None and record.resolved.device == "cpu"
    assert record.config.concepts.endswith(".txt") and "+typed-" in record.config.concepts
    assert record.facts.n_concepts == 6  # the five concepts and the typed one
    engine.dispose()
