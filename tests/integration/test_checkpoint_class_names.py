"""Class names for checkpoint runs (#26): a checkpoint whose head is as large as its architecture's keeps the
trained weights' names; a class names file (upload form and API, `dissect --class-names`) or `class_names=` (the
library) names the outputs instead, each entry point refused by the one count check, which names both counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from torchvision.models import ResNet18_Weights, resnet18

import dissect_core
from app.cli.main import main
from app.jobs.queue import jobs as queue
from app.jobs.uploads.class_names import CLASS_NAMES_MAX_BYTES
from app.persistence.models import Job
from dissect_core.config import DissectConfig
from dissect_core.errors import DissectError
from dissect_core.run_record import RunRecord
from tests.conftest import TINY_CLIP
from tests.integration.upload_helpers import checkpoint_bytes, nothing_stored
from tests.support.dashboard_seed import Dashboard

#: The upload fields of the tiny catalogue's architecture, whose head (fc) has 3 outputs.
FIELDS = {"architecture": "tinynet", "layers": ["conv", "fc"], "probe": "cifar100"}


def upload_with_names(
    client: TestClient, names: bytes, *, path: str = "/api/v1/uploads", filename: str = "a.pt"
) -> httpx.Response:
    """Post a tinynet checkpoint with a class names file to the upload API (or the form at `path`)."""
    files: dict[str, Any] = {
        "checkpoint": (filename, checkpoint_bytes()),
        "class_names": ("names.txt", names, "text/plain"),
    }
    return client.post(path, data=FIELDS, files=files, follow_redirects=False)


def test_an_uploads_class_names_file_reaches_the_job_one_name_per_line(
    client: TestClient, dashboard: Dashboard
) -> None:
    response = upload_with_names(client, b"cat\n\n  dog \r\nbird\n", filename="named.pt")
    assert response.status_code == 201, response.text
    job_id = response.json()["job_id"]
    with Session(dashboard.engine) as session:
        params = session.get(Job, job_id).params  # type: ignore[union-attr]
    assert DissectConfig.from_dict(params).class_names == ("cat", "dog", "bird")
    queue.cancel(dashboard.engine, job_id)


def test_an_upload_whose_names_miscount_the_head_is_refused_naming_both_counts(
    client: TestClient, dashboard: Dashboard
) -> None:
    with nothing_stored(dashboard):
        response = upload_with_names(client, b"cat\ndog\n", filename="miscounted.pt")
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == (
        "The checkpoint's head has 3 outputs but the class names file has 2 lines; give one name per output, "
        "in output order"
    )
    with nothing_stored(dashboard):
        form = upload_with_names(client, b"cat\ndog\n", path="/upload", filename="miscounted.pt")
    assert form.status_code == 422
    assert 'id="class_names-error">The checkpoint&#39;s head has 3 outputs' in form.text


def test_an_oversized_or_unreadable_class_names_file_is_refused_with_the_limit(
    client: TestClient, dashboard: Dashboard
) -> None:
    with nothing_stored(dashboard):
        too_big = upload_with_names(client, b"x\n" * (CLASS_NAMES_MAX_BYTES // 2 + 1))
        latin = upload_with_names(client, "caf\xe9\n".encode("latin-1"))
        blank = upload_with_names(client, b"\n\n")
        control = upload_with_names(client, b"cat\n\x1b[2Jdog\nbird\n")
    assert too_big.status_code == 413 and "over the limit of 1,024 KB" in too_big.json()["detail"]
    assert latin.status_code == 422 and "not UTF-8 text" in latin.json()["detail"]
    assert blank.status_code == 422 and "names no class" in blank.json()["detail"]
    assert control.status_code == 422
    assert control.json()["detail"].startswith(
        "Class name 2 of the class names file holds the control character U+001B"
    )


def test_the_upload_form_offers_the_class_names_field(client: TestClient) -> None:
    page = client.get("/upload")
    assert page.status_code == 200
    assert 'type="file" name="class_names"' in page.text and "one per line in output order" in page.text


@pytest.mark.usefixtures("tiny_clip")
def test_a_checkpoint_run_keeps_its_architectures_names_and_miscounted_names_stop_it_early(
    probe_folder: Path,
    concept_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.setenv("NEURON_ATLAS_DATA_DIR", str(tmp_path / "data"))
    checkpoint = tmp_path / "finetuned.pt"
    torch.manual_seed(0)
    torch.save(resnet18().state_dict(), checkpoint)  # the architecture's head: 1,000 outputs
    common = [
        "dissect", "--model", "resnet18", "--weights", "none", "--checkpoint", str(checkpoint), "--layers", "fc",
        "--probe", str(probe_folder), "--concepts", str(concept_file), "--clip", TINY_CLIP, "--folds", "0",
        "--resize", "64", "--crop", "64", "--quiet",
    ]  # fmt: skip
    assert main([*common, "--out", str(tmp_path / "out")]) == 0
    record = RunRecord.from_json(json.loads((tmp_path / "out" / "settings.json").read_text()))
    assert list(record.identities.class_names or ()) == ResNet18_Weights.DEFAULT.meta["categories"]

    names = tmp_path / "names.txt"
    names.write_text("".join(f"class {index}\n" for index in range(10)))
    capsys.readouterr()
    assert main([*common, "--class-names", str(names), "--out", str(tmp_path / "refused")]) == 2
    assert "head has 1000 outputs but 10 class names were given" in capsys.readouterr().err
    with pytest.raises(DissectError, match="head has 1000 outputs but 1 class names were given"):
        dissect_core.dissect(
            "resnet18", "fc", str(probe_folder), concepts=str(concept_file), encoder=TINY_CLIP, weights="none",
            class_names=["cat"], cache_dir=tmp_path / "cache", progress=False,
        )  # fmt: skip
