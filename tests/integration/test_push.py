"""Issue #25, pushing a run over HTTP, against the real server (`neuron-atlas serve`): a folder saved by
`DissectionResult.save` pushed with `neuron-atlas push` becomes the editor's run, whose pages show the saved labels;
an anonymous push is 401, a viewer's 403; hostile archives (a pickle inside, a path member, an absolute member, a
link, a layer count that lies, a member declaring 10 GB, an image bomb, a body over the bound while it streams) are
refused with 400, 413 or 422 and store nothing: no run, no media file, no artifacts folder, no staging folder."""

from __future__ import annotations

import csv
import gzip
import io
import json
import pickle
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.cli.main import main
from app.core.config import Settings
from app.persistence.db import create_db_engine
from app.persistence.models import Run
from tests.support.dashboard_seed import add_account, build_dashboard
from tests.support.fakes import fake_result, make_images
from tests.support.served import ServedChild, post_chunked, served

PUSH_MAX_MB = 2
#: Lower than the default, so an image bomb stays small to build.
MAX_PIXELS = 1_000_000


@dataclass
class Lab:
    """The real server on a seeded data folder, its settings, a saved run and tokens by role."""

    server: ServedChild
    settings: Settings
    saved: Path
    tokens: dict[str, str]

    def bearer(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    folder = tmp_path_factory.mktemp("push")
    seeded = build_dashboard(folder / "data")
    tokens = {role: add_account(seeded.engine, f"{role}-user", role) for role in ("editor", "viewer")}
    seeded.engine.dispose()
    result = fake_result(make_images(folder / "probe", 6), evaluated=True)
    saved = Path(result.save(folder / "saved"))
    env = {
        "NEURON_ATLAS_DATA_DIR": str(seeded.settings.data_dir),
        "NEURON_ATLAS_PUSH_MAX_MB": str(PUSH_MAX_MB),
        "NEURON_ATLAS_PROBE_MAX_PIXELS": str(MAX_PIXELS),
    }
    with served(env, folder / "server.log") as server:
        server.wait_until_up(90)
        yield Lab(server, seeded.settings, saved, tokens)


@dataclass(frozen=True)
class Stored:
    """What the data folder holds: runs, media files, artifacts folders and staging folders of pushes."""

    runs: int
    media_files: int
    artifacts_folders: int
    staging: int


def stored(settings: Settings) -> Stored:
    engine = create_db_engine(settings.database_url)
    try:
        with Session(engine) as session:
            runs = session.scalar(select(func.count(Run.id))) or 0
    finally:
        engine.dispose()
    pushes = list(settings.pushes_dir.iterdir()) if settings.pushes_dir.exists() else []
    return Stored(
        runs=runs,
        media_files=sum(1 for path in settings.media_dir.rglob("*") if path.is_file()),
        artifacts_folders=len(list(settings.artifacts_dir.iterdir())),
        staging=len(pushes),
    )


def saved_files(saved: Path) -> dict[str, bytes]:
    files = sorted(path for path in saved.rglob("*") if path.is_file())
    return {path.relative_to(saved).as_posix(): path.read_bytes() for path in files}


def tar_gz(files: dict[str, bytes], extra: Callable[[tarfile.TarFile], None] | None = None) -> bytes:
    """Return a .tar.gz of the files (names as given), then whatever `extra` adds."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if extra is not None:
            extra(tar)
    return buffer.getvalue()


def push(lab: Lab, archive: bytes, headers: dict[str, str]) -> httpx.Response:
    files = {"archive": ("run.tar.gz", archive, "application/gzip")}
    return httpx.post(f"{lab.server.url}/api/v1/runs", files=files, headers=headers, timeout=120)


def test_a_pushed_run_is_the_editors_and_its_pages_show_the_saved_labels(
    lab: Lab, capsys: pytest.CaptureFixture[str]
) -> None:
    before = stored(lab.settings)
    exit_code = main(["push", str(lab.saved), "--server", lab.server.url, "--token", lab.tokens["editor"]])
    url = capsys.readouterr().out.strip().splitlines()[-1]

    assert exit_code == 0
    assert url.startswith(f"{lab.server.url}/runs/")
    run_id = int(url.rsplit("/", 1)[1])
    assert stored(lab.settings).runs == before.runs + 1
    assert stored(lab.settings).staging == 0
    run = httpx.get(f"{lab.server.url}/api/v1/runs/{run_id}", timeout=60).json()
    assert run["owner"] == "editor-user"
    with open(lab.saved / "results.csv", newline="") as handle:
        saved_labels = {(row["layer"], int(row["unit"])): row["label"] for row in csv.DictReader(handle)}
    served_labels = {}
    for layer in run["layers"]:
        listing = httpx.get(f"{url.replace('/runs/', '/api/v1/runs/')}/layers/{layer['name']}/neurons", timeout=60)
        assert listing.status_code == 200
        served_labels |= {(layer["name"], neuron["unit"]): neuron["label"] for neuron in listing.json()["items"]}
    assert served_labels == saved_labels
    for page in (url, f"{url}/layers/layer1", f"{url}/layers/fc/neurons/3", f"{url}/layers/layer1/neurons/0"):
        answer = httpx.get(page, timeout=60)
        assert answer.status_code == 200, page
    assert saved_labels[("layer1", 0)] in httpx.get(f"{url}/layers/layer1/neurons/0", timeout=60).text


@pytest.mark.parametrize(("who", "status"), [("anonymous", 401), ("viewer", 403)])
def test_only_editors_and_admins_push(lab: Lab, who: str, status: int) -> None:
    before = stored(lab.settings)
    headers = {} if who == "anonymous" else lab.bearer(who)

    answer = push(lab, tar_gz(saved_files(lab.saved)), headers)

    assert answer.status_code == status, answer.text
    assert stored(lab.settings) == before


def with_pickle(files: dict[str, bytes]) -> bytes:
    return tar_gz({**files, "tensors.pkl": pickle.dumps({"weights": [1.0, 2.0]})})


def with_pickle_as_safetensors(files: dict[str, bytes]) -> bytes:
    return tar_gz({**files, "tensors.safetensors": pickle.dumps({"weights": [1.0, 2.0]})})


def with_climbing_member(files: dict[str, bytes]) -> bytes:
    return tar_gz({**files, "../x": b"outside"})


def with_absolute_member(files: dict[str, bytes]) -> bytes:
    return tar_gz({**files, "/tmp/x": b"outside"})


def with_link(files: dict[str, bytes]) -> bytes:
    def link(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo("images/6.jpg")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)

    return tar_gz(files, link)


def with_lying_layer_count(files: dict[str, bytes]) -> bytes:
    manifest = json.loads(files["manifest.json"])
    manifest["layers"][0]["n_units"] += 1
    return tar_gz({**files, "manifest.json": json.dumps(manifest).encode()})


def with_10_gb_member(files: dict[str, bytes]) -> bytes:
    """A gzip whose tar member declares 10 GB (only its first bytes follow): the bound trips on the declaration."""
    info = tarfile.TarInfo("tensors.safetensors")
    info.size = 10 * 2**30
    return gzip.compress(info.tobuf(tarfile.GNU_FORMAT) + bytes(1 << 16))


def with_image_bomb(files: dict[str, bytes]) -> bytes:
    """images/0.jpg replaced by a PNG of 4,000 x 4,000 pixels (16 MP, over the bound) that packs into a few KB."""
    bomb = io.BytesIO()
    Image.new("1", (4000, 4000)).save(bomb, format="PNG")
    assert len(bomb.getvalue()) < 100_000
    return tar_gz({**files, "images/0.jpg": bomb.getvalue()})


HOSTILE = {
    "a pickle inside": (with_pickle, 422, "pickle"),
    "a pickle named like safetensors": (with_pickle_as_safetensors, 422, "pickle"),
    "a path member": (with_climbing_member, 400, ".."),
    "an absolute member": (with_absolute_member, 400, "absolute"),
    "a link": (with_link, 400, "link"),
    "a layer count that lies": (with_lying_layer_count, 422, "layer1"),
    "a 10 GB declared size": (with_10_gb_member, 400, "NEURON_ATLAS_PUSH_MAX_MB"),
    "an image bomb": (with_image_bomb, 400, "pixels"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_archive_is_refused_and_stores_nothing(lab: Lab, case: str) -> None:
    build, status, named = HOSTILE[case]
    before = stored(lab.settings)

    answer = push(lab, build(saved_files(lab.saved)), lab.bearer("editor"))

    assert answer.status_code == status, answer.text
    assert named in answer.json()["detail"]
    assert stored(lab.settings) == before
    assert before.staging == 0


def test_a_body_over_the_bound_is_refused_while_it_streams(lab: Lab) -> None:
    before = stored(lab.settings)
    boundary = "pushboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="archive"; filename="run.tar.gz"\r\n'
        "Content-Type: application/gzip\r\n\r\n"
    ).encode()
    headers = {**lab.bearer("editor"), "Content-Type": f"multipart/form-data; boundary={boundary}"}
    total = 40 * PUSH_MAX_MB * 2**20

    answer = post_chunked(lab.server.port, "/api/v1/runs", headers, head, total)

    assert answer.status == 413, answer.body
    assert b"NEURON_ATLAS_PUSH_MAX_MB" in answer.body
    assert answer.sent_bytes < total
    assert stored(lab.settings) == before
