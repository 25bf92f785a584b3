"""Web requests name, never point: probe sets, concept sets and encoders are chosen from a catalogue, uploads get
names of their own, and web users never see a server path. Each hostile request goes through the real app and
must leave nothing behind: no file under the data dir, no row, no job."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.cli.main import main
from app.core.config import Settings
from app.jobs.dissections import StoredDissection
from app.jobs.queue import jobs as queue
from app.jobs.queue.worker import run_worker
from app.jobs.uploads.defaults import default_encoder
from app.persistence.db import write_session
from app.persistence.models import CatalogConceptSet, CatalogProbeSet, Job, Run, TargetModel
from app.persistence.store import store_run
from app.web.main import create_app
from dissect_core.config import DEFAULT_OFFLINE_ENCODER
from tests.support.dashboard_seed import Dashboard, TinyNet, build_dashboard, fake_encoder_loader, tiny_catalog
from tests.support.fakes import fake_result, make_images

DB_FILES = ("atlas.db", "atlas.db-wal", "atlas.db-shm", "atlas.db-journal")


# --- helpers -------------------------------------------------------------------------------------------------


def checkpoint_bytes() -> bytes:
    buffer = io.BytesIO()
    torch.save(TinyNet().state_dict(), buffer)
    return buffer.getvalue()


def upload(client: TestClient, *, filename: str = "tiny.pt", **fields: object) -> httpx.Response:
    data: dict[str, Any] = {"architecture": "tinynet", "layers": ["conv", "fc"], "probe": "cifar100"}
    data.update(fields)
    return client.post("/api/v1/uploads", data=data, files={"checkpoint": (filename, checkpoint_bytes())})


def png_bytes(
    size: tuple[int, int] = (16, 12), color: tuple[int, int, int] = (200, 40, 40), mode: str = "RGB"
) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color if mode == "RGB" else 1).save(buffer, format="PNG")
    return buffer.getvalue()


def zip_bytes(members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for info, data in members:
            archive.writestr(info, data)
    return buffer.getvalue()


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes]], mode: str = "w") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:  # type: ignore[call-overload]
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            archive.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buffer.getvalue()


def tar_member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def tar_with_huge_header() -> bytes:
    info = tar_member("a.png")
    info.pax_headers = {"comment": "x" * (2 << 20)}  # tarfile would read this header into memory whole
    return tar_bytes([(info, png_bytes())])


def zip_link(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def three_images() -> list[tuple[zipfile.ZipInfo | str, bytes]]:
    return [
        ("cats/a.png", png_bytes(color=(10, 20, 30))),
        ("cats/b.png", png_bytes(color=(40, 50, 60))),
        ("dogs/c.png", png_bytes(color=(70, 80, 90))),
        ("readme.txt", b"not an image: skipped"),
        ("__MACOSX/cats/._a.png", b"resource fork: skipped"),
    ]


def post_probe_set(client: TestClient, name: str, archive: bytes, filename: str = "probe.zip") -> httpx.Response:
    return client.post("/api/v1/probe-sets", data={"name": name}, files={"archive": (filename, archive)})


def stored_state(dashboard: Dashboard) -> tuple[set[str], dict[str, int]]:
    """Every file under the data dir (but the database) and the rows an upload could add."""
    root = dashboard.settings.data_dir
    files = {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file() and path.name not in DB_FILES}
    with Session(dashboard.engine) as session:
        rows = {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Job, TargetModel, CatalogProbeSet, CatalogConceptSet, Run)
        }
    return files, rows


@contextmanager
def nothing_stored(dashboard: Dashboard) -> Iterator[None]:
    """Assert the block adds no file under the data dir, no row and no job."""
    before = stored_state(dashboard)
    yield
    assert stored_state(dashboard) == before


@contextmanager
def bounded_client(dashboard: Dashboard, **bounds: Any) -> Iterator[TestClient]:
    """A client on an app over the same data whose settings carry other bounds."""
    app = create_app(
        replace(dashboard.settings, **bounds), encoder_loader=fake_encoder_loader(), catalog=tiny_catalog()
    )
    with TestClient(app, headers=dashboard.admin_headers) as client:
        yield client


def refused(response: httpx.Response, status: int, *words: str) -> str:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert all(word in detail for word in words), detail
    return detail


def cli(dashboard: Dashboard, *argv: str) -> int:
    """Run `neuron-atlas ARGV` on the dashboard's data folder; return its exit status."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NEURON_ATLAS_DATA_DIR", str(dashboard.settings.data_dir))
        patch.delenv("NEURON_ATLAS_DATABASE_URL", raising=False)
        return main(list(argv))


@pytest.fixture(scope="module")
def probe_folder(dashboard: Dashboard, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A server folder of four images, registered by the operator as `street`."""
    folder = tmp_path_factory.mktemp("server-images")
    make_images(folder, 4)
    assert cli(dashboard, "probe-sets", "add", "street", str(folder)) == 0
    return folder


# --- hostile fields of the checkpoint upload -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"concepts": "/etc/passwd"}, ["Concept set '/etc/passwd' does not exist", "not by path", "20k"]),
        ({"probe": "/"}, ["Probe set '/' does not exist", "not by path", "cifar100"]),
        ({"probe": "/etc"}, ["Probe set '/etc' does not exist"]),
        (
            {"encoder": "ViT-B-16:/tmp/weights.pt"},
            ["Encoder 'ViT-B-16:/tmp/weights.pt' is not offered", "/api/v1/encoders"],
        ),
        ({"encoder": "/tmp/weights.pt"}, ["is not offered", "never as a file"]),
    ],
)
def test_upload_fields_name_never_point(
    client: TestClient, dashboard: Dashboard, fields: dict[str, str], words: list[str]
) -> None:
    with nothing_stored(dashboard):
        print(fields, "->", refused(upload(client, **fields), 422, *words))


def test_an_existing_server_folder_or_file_is_still_refused(
    client: TestClient, dashboard: Dashboard, probe_folder: Path, tmp_path: Path
) -> None:
    concepts = tmp_path / "words.txt"
    concepts.write_text("secret\nlines\n")
    with nothing_stored(dashboard):
        exists = refused(upload(client, probe=str(probe_folder)), 422, "does not exist", "street")
        missing = refused(upload(client, probe=f"{probe_folder}-nope"), 422, "does not exist")
        assert exists.replace(str(probe_folder), "X") == missing.replace(f"{probe_folder}-nope", "X")  # no oracle
        refused(upload(client, concepts=str(concepts)), 422, "does not exist")
        refused(upload(client, concepts=str(dashboard.settings.data_dir / "atlas.db")), 422, "does not exist")


def test_a_registered_folder_is_chosen_by_name(client: TestClient, dashboard: Dashboard, probe_folder: Path) -> None:
    response = upload(client, probe="street", model_name="street-net")
    assert response.status_code == 201, response.text
    with Session(dashboard.engine) as session:
        params = session.get(Job, response.json()["job_id"]).params
    assert params["probe"] == str(probe_folder.resolve()) and params["model_name"] == "street-net"
    assert params["model"] == "tinynet"
    job = client.get(response.json()["api_url"]).json()
    assert job["model"] == "street-net" and str(probe_folder) not in str(job)


def test_the_upload_form_offers_selects_of_names(client: TestClient, probe_folder: Path) -> None:
    html = client.get("/upload").text
    assert '<select id="probe" name="probe"' in html and '<option value="street"' in html
    assert '<select id="concepts" name="concepts"' in html and '<option value="20k" selected>' in html
    # Both encoders are offered; the one preselected is CLIP where its weights are cached, else offline ConSE.
    assert '<select id="encoder" name="encoder"' in html and 'value="ViT-B-16:openai"' in html
    assert f'value="{DEFAULT_OFFLINE_ENCODER}"' in html
    chosen = default_encoder(["ViT-B-16:openai", DEFAULT_OFFLINE_ENCODER])
    assert f'<option value="{chosen}" selected>' in html
    assert 'name="model_name"' in html and str(probe_folder) not in html


def test_encoders_come_from_the_settings(dashboard: Dashboard) -> None:
    with bounded_client(dashboard, encoders=("conse:efficientnet_lite2+minilm",)) as client:
        assert client.get("/api/v1/encoders").json() == ["conse:efficientnet_lite2+minilm"]
        with nothing_stored(dashboard):
            refused(upload(client), 422, "'ViT-B-16:openai' is not offered", "conse:efficientnet_lite2+minilm")
        assert upload(client, encoder="conse:efficientnet_lite2+minilm", model_name="conse-net").status_code == 201


def test_default_encoders_list_conse_and_open_clip(client: TestClient) -> None:
    listed = client.get("/api/v1/encoders").json()
    assert "conse:efficientnet_lite0+minilm" in listed and "ViT-B-16:openai" in listed and len(listed) > 50


# --- names that cannot be hijacked ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_name", "words"),
    [
        ("efficientnet_lite0", ["'efficientnet_lite0' is an architecture's name", "e.g. 'efficientnet_lite0-2'"]),
        ("resnet18", ["'resnet18' is an architecture's name"]),
        ("tinynet", ["'tinynet' is an architecture's name"]),
        ("TinyNet", ["'tinynet' is an architecture's name"]),
        ("../x", ["cannot name a model"]),
        ("mine.pt", ["ends like a TorchScript file"]),
    ],
)
def test_an_upload_cannot_take_a_built_in_or_dissected_name(
    client: TestClient, dashboard: Dashboard, model_name: str, words: list[str]
) -> None:
    with nothing_stored(dashboard):
        print(model_name, "->", refused(upload(client, model_name=model_name), 422, *words))


def test_two_uploads_never_share_a_name(client: TestClient, dashboard: Dashboard) -> None:
    first = upload(client, filename="shared.pt")
    assert first.status_code == 201, first.text
    with nothing_stored(dashboard):
        print("shared ->", refused(upload(client, filename="shared.pt"), 422, "'shared' is taken", "e.g. 'shared-2'"))
        refused(upload(client, model_name="SHARED"), 422, "'shared' is taken")
    with Session(dashboard.engine) as session:
        model = session.scalars(select(TargetModel).where(TargetModel.uploaded_name == "shared")).one()
    assert model.name == "shared" and model.architecture == "tinynet" and model.weights == "none"


def fake_pipeline(
    settings: Settings, config: Any, progress: Any = None, should_stop: Any = None, *, engine: Any, before_commit: Any
) -> StoredDissection:
    """Stand in for the pipeline: a small run over the probe folder's images, stored as the real one would be."""
    paths = sorted(str(path) for path in Path(config.probe).glob("*.png"))
    result = fake_result(paths, model=config.model)
    return StoredDissection(
        run_id=store_run(engine, settings, result, config=config, before_commit=before_commit), result=result
    )


def test_model_permalinks_resolve_by_the_unique_name_to_the_latest_succeeded_run(tmp_path: Path) -> None:
    dashboard = build_dashboard(tmp_path / "data")
    folder = tmp_path / "images"
    make_images(folder, 4)
    with write_session(dashboard.engine) as session:
        from app.jobs.catalogue.sets import register_probe_folder

        register_probe_folder(session, dashboard.settings, "imgs", folder)
    with TestClient(dashboard.app(), headers=dashboard.admin_headers) as client:
        created = upload(client, probe="imgs", model_name="mine", layers=["conv", "fc"])
        assert created.status_code == 201, created.text
        assert run_worker(dashboard.settings, once=True, executor=fake_pipeline, handle_signals=False) == 1
        job = client.get(created.json()["api_url"]).json()
        assert job["status"] == "succeeded", job
        # The upload's run is the newest run of architecture tinynet, yet tinynet's permalink keeps its own runs.
        reference = client.get("/api/v1/models/tinynet/layers/fc/neurons/1", follow_redirects=False)
        assert reference.headers["location"] == f"/api/v1/runs/{dashboard.newer.run_id}/layers/fc/neurons/1"
        mine = client.get("/api/v1/models/mine/layers/fc/neurons/1", follow_redirects=False)
        assert mine.headers["location"] == f"/api/v1/runs/{job['run_id']}/layers/fc/neurons/1"
        run = client.get(f"/api/v1/runs/{job['run_id']}").json()
        assert run["model_name"] == "mine" and run["architecture"] == "tinynet" and run["probe_set"] == "imgs"
        assert run["settings"]["probe"] == "imgs" and run["settings"]["checkpoint"] == "tiny.pt"
        for text in (client.get(f"/api/v1/runs/{job['run_id']}").text, client.get(f"/runs/{job['run_id']}").text):
            assert str(tmp_path) not in text
        # A run whose job did not succeed is never the one a permalink gives.
        with write_session(dashboard.engine) as session:
            session.add(Job(params={}, status="failed", run_id=dashboard.newer.run_id))
        fallback = client.get("/api/v1/models/tinynet/layers/fc/neurons/1", follow_redirects=False)
        assert fallback.headers["location"] == f"/api/v1/runs/{dashboard.older.run_id}/layers/fc/neurons/1"
    with Session(dashboard.engine) as session:
        assert session.scalar(select(func.count()).where(TargetModel.uploaded_name == "mine")) == 1
        assert session.scalar(select(func.count()).where(TargetModel.name == "mine")) == 1
    dashboard.engine.dispose()


# --- probe-set archives --------------------------------------------------------------------------------------


def test_an_archive_of_images_becomes_a_probe_set(client: TestClient, dashboard: Dashboard) -> None:
    response = post_probe_set(client, "pets", zip_bytes(three_images()))
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["name"] == "pets" and created["kind"] == "uploaded" and created["n_images"] == 3
    assert created["thumbnails"] and all(url.startswith("/media/") for url in created["thumbnails"])
    assert client.get(created["thumbnails"][0]).headers["content-type"] == "image/jpeg"
    listed = client.get("/api/v1/probe-sets")
    assert [item["name"] for item in listed.json()][:1] == ["cifar100"] and "pets" in listed.text
    assert str(dashboard.settings.data_dir) not in listed.text
    assert {key for item in listed.json() for key in item} == {"name", "kind", "n_images", "thumbnails", "created_at"}
    assert "pets" in client.get("/probe-sets").text
    with Session(dashboard.engine) as session:
        stored = session.scalars(select(CatalogProbeSet.folder).where(CatalogProbeSet.name == "pets")).one()
    assert stored.startswith("probe-sets/")  # relative to the data folder, which may move
    folder = dashboard.settings.data_dir / stored
    assert sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()) == [
        "cats/a.png",
        "cats/b.png",
        "dogs/c.png",
    ]
    assert upload(client, probe="pets", model_name="pets-net").status_code == 201
    with nothing_stored(dashboard):
        refused(
            post_probe_set(client, "pets-again", zip_bytes(three_images())), 422, "already are the probe set 'pets'"
        )
        refused(post_probe_set(client, "pets", zip_bytes(three_images())), 422, "'pets' is taken")
        refused(post_probe_set(client, "cifar100", zip_bytes(three_images())), 422, "'cifar100' is taken")
        refused(post_probe_set(client, "/etc/passwd", zip_bytes(three_images())), 422, "cannot name a probe set")
    assert cli(dashboard, "probe-sets", "remove", "pets") == 0
    assert not folder.exists() and not list(folder.parent.glob(".removed-*"))
    assert "pets" not in client.get("/api/v1/probe-sets").text


def test_a_gzipped_tar_is_accepted(client: TestClient) -> None:
    members = [(tar_member("x/one.png"), png_bytes(color=(1, 2, 3))), (tar_member("x"), b"")]
    members[1][0].type = tarfile.DIRTYPE
    response = post_probe_set(client, "tarred", tar_bytes(members, "w:gz"), "probe.tar.gz")
    assert response.status_code == 201, response.text
    assert response.json()["n_images"] == 1


HOSTILE_ARCHIVES: list[tuple[str, Callable[[], bytes], list[str]]] = [
    ("zip ../x.png", lambda: zip_bytes([("../x.png", png_bytes())]), ["'../x.png' climbs out", ".."]),
    ("zip a/../../x.png", lambda: zip_bytes([("a/../../x.png", png_bytes())]), ["climbs out"]),
    ("zip /abs.png", lambda: zip_bytes([(zipfile.ZipInfo("/tmp/abs.png"), png_bytes())]), ["absolute name"]),
    ("zip C:\\x.png", lambda: zip_bytes([(zipfile.ZipInfo("C:\\x.png"), png_bytes())]), ["absolute name"]),
    ("zip symlink", lambda: zip_bytes([(zip_link("evil.png"), b"/etc/passwd")]), ["'evil.png' is a link"]),
    ("tar ../x.png", lambda: tar_bytes([(tar_member("../x.png"), png_bytes())]), ["climbs out"]),
    ("tar /abs.png", lambda: tar_bytes([(tar_member("/etc/abs.png"), png_bytes())]), ["absolute name"]),
    (
        "tar symlink",
        lambda: tar_bytes([(tar_member("evil.png", tarfile.SYMTYPE, "/etc/passwd"), b"")]),
        ["'evil.png' is a link"],
    ),
    (
        "tar hard link",
        lambda: tar_bytes([(tar_member("evil.png", tarfile.LNKTYPE, "/etc/passwd"), b"")]),
        ["is a link"],
    ),
    ("tar device", lambda: tar_bytes([(tar_member("dev.png", tarfile.CHRTYPE), b"")]), ["device or special file"]),
    ("tar fifo", lambda: tar_bytes([(tar_member("pipe.png", tarfile.FIFOTYPE), b"")]), ["device or special file"]),
    ("tar with a 2 MB header", tar_with_huge_header, ["tar header larger than 1 MB"]),
    ("not an archive", lambda: b"just some bytes" * 100, ["not a .zip, .tar"]),
    ("no images", lambda: zip_bytes([("notes.txt", b"hello")]), ["holds no images"]),
    ("not really an image", lambda: zip_bytes([("fake.png", b"\x89PNG but not")]), ["not an image Pillow can read"]),
    ("twice", lambda: tar_bytes([(tar_member("a.png"), png_bytes()), (tar_member("a.png"), png_bytes())]), ["twice"]),
    (
        "image over 40 MP",
        lambda: zip_bytes([("huge.png", png_bytes((8000, 6000), mode="1"))]),
        ["'huge.png' has more than 40,000,000 pixels"],
    ),
]


@pytest.mark.parametrize(("case", "make", "words"), HOSTILE_ARCHIVES, ids=[case[0] for case in HOSTILE_ARCHIVES])
def test_hostile_archives_are_refused_and_leave_nothing(
    client: TestClient, dashboard: Dashboard, case: str, make: Callable[[], bytes], words: list[str]
) -> None:
    archive = make()
    with nothing_stored(dashboard):
        print(case, "->", refused(post_probe_set(client, "hostile", archive), 400, *words))
    assert not (Path("/tmp") / "abs.png").exists() and not (dashboard.settings.data_dir / "x.png").exists()


BOMBS: list[tuple[str, Callable[[], bytes], dict[str, int], list[str]]] = [
    (
        "zip of many files",
        lambda: zip_bytes([(f"{index}.png", png_bytes()) for index in range(12)]),
        {"probe_max_files": 10},
        ["more than 10 members"],
    ),
    (
        "tar of many files",
        lambda: tar_bytes([(tar_member(f"{index}.png"), png_bytes()) for index in range(12)]),
        {"probe_max_files": 10},
        ["more than 10 members"],
    ),
    (
        "zip bomb (64 MB of zeros)",
        lambda: zip_bytes([("zeros.png", bytes(64 << 20))]),
        {"probe_max_bytes": 1 << 20},
        ["more than 1 MB uncompressed"],
    ),
    (
        "tar.gz bomb (64 MB of zeros)",
        lambda: tar_bytes([(tar_member("zeros.png"), bytes(64 << 20))], "w:gz"),
        {"probe_max_bytes": 1 << 20},
        ["more than 1 MB uncompressed"],
    ),
    (
        "zip of images adding up",
        lambda: zip_bytes([(f"{index}.png", png_bytes((400, 400))) for index in range(40)]),
        {"probe_max_bytes": 16 << 10},
        ["add up to more than"],
    ),
    (
        "image over the pixel bound",
        lambda: zip_bytes([("big.png", png_bytes((200, 100)))]),
        {"probe_max_pixels": 10_000},
        ["more than 10,000 pixels"],
    ),
]


@pytest.mark.parametrize(("case", "make", "bounds", "words"), BOMBS, ids=[bomb[0] for bomb in BOMBS])
def test_bombs_are_stopped_while_reading(
    dashboard: Dashboard, case: str, make: Callable[[], bytes], bounds: dict[str, int], words: list[str]
) -> None:
    archive = make()
    with bounded_client(dashboard, **bounds) as client, nothing_stored(dashboard):
        print(case, "->", refused(post_probe_set(client, "bomb", archive), 400, *words))


def test_a_zip_directory_claiming_more_entries_than_allowed_is_refused_before_it_is_parsed(
    dashboard: Dashboard,
) -> None:
    archive = bytearray(zip_bytes([("a.png", png_bytes())]))
    end = archive.rfind(b"PK\x05\x06")
    archive[end + 8 : end + 12] = (50_000).to_bytes(2, "little") * 2  # entries on this disk, entries in total
    with bounded_client(dashboard, probe_max_files=100) as client, nothing_stored(dashboard):
        refused(post_probe_set(client, "claims", bytes(archive)), 400, "more than 100 members")
    archive[end + 8 : end + 12] = (3).to_bytes(2, "little") * 2  # fewer entries than the directory holds
    with bounded_client(dashboard, probe_max_files=100) as client, nothing_stored(dashboard):
        refused(post_probe_set(client, "claims", bytes(archive)), 400, "central directory")


def test_an_archive_over_the_request_limit_is_refused_before_it_is_read(dashboard: Dashboard) -> None:
    with bounded_client(dashboard, probe_max_bytes=1024) as client, nothing_stored(dashboard):
        archive = zip_bytes([("noise.png", os.urandom(100_000))])
        refused(post_probe_set(client, "big", archive), 400, "over the probe-set archive limit")


def test_only_editors_upload_probe_and_concept_sets(dashboard: Dashboard) -> None:
    with TestClient(dashboard.app()) as anonymous, nothing_stored(dashboard):
        assert post_probe_set(anonymous, "anon", zip_bytes(three_images())).status_code == 401
        assert anonymous.post("/api/v1/concept-sets", data={"name": "anon", "concepts": "a"}).status_code == 401


# --- concept sets --------------------------------------------------------------------------------------------


def test_an_uploaded_concept_list_is_cleaned_stored_by_hash_and_chosen_by_name(
    client: TestClient, dashboard: Dashboard
) -> None:
    response = client.post(
        "/api/v1/concept-sets", data={"name": "Textures", "concepts": " striped\n\ndotted\nstriped\n"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "textures" and response.json()["n_concepts"] == 2
    listed = client.get("/api/v1/concept-sets").json()
    assert {item["name"] for item in listed} >= {"20k", "imagenet", "textures"}
    assert str(dashboard.settings.data_dir) not in str(listed)
    created = upload(client, concepts="textures", model_name="textured")
    assert created.status_code == 201, created.text
    with Session(dashboard.engine) as session:
        params = session.get(Job, created.json()["job_id"]).params
    stored = dashboard.settings.data_dir / params["concepts"]  # stored relative to the data folder
    assert stored.parent == dashboard.settings.data_dir / "concept-sets" and stored.read_text() == "striped\ndotted\n"
    from_file = client.post("/api/v1/concept-sets", data={"name": "colours"}, files={"file": ("c.txt", b"red\nblue\n")})
    assert from_file.status_code == 201 and from_file.json()["n_concepts"] == 2
    with nothing_stored(dashboard):
        again = client.post("/api/v1/concept-sets", data={"name": "again", "concepts": "striped\ndotted"})
        refused(again, 422, "already is the concept set 'textures'")


@pytest.mark.parametrize(
    ("data", "files", "status", "words"),
    [
        ({"name": "/etc/passwd", "concepts": "a"}, None, 422, ["'/etc/passwd' cannot name a concept set"]),
        ({"name": "imagenet", "concepts": "a"}, None, 422, ["'imagenet' is taken"]),
        ({"name": "empty", "concepts": "\n \n"}, None, 400, ["No concepts were sent"]),
        ({"name": "latin1"}, {"file": ("l.txt", "caf\xe9\n".encode("latin-1"))}, 400, ["not UTF-8"]),
        ({"name": "long", "concepts": "x" * 300}, None, 422, ["longer than 200 characters"]),
        ({"name": "nul", "concepts": "a\x00b"}, None, 422, ["holds a control character"]),
    ],
)
def test_bad_concept_lists_are_refused(
    client: TestClient, dashboard: Dashboard, data: dict[str, str], files: Any, status: int, words: list[str]
) -> None:
    with nothing_stored(dashboard):
        print(
            data.get("name"), "->", refused(client.post("/api/v1/concept-sets", data=data, files=files), status, *words)
        )


def test_concept_lists_are_bounded_in_lines_and_bytes(dashboard: Dashboard) -> None:
    with bounded_client(dashboard, concepts_max_lines=3, concepts_max_bytes=1024) as client, nothing_stored(dashboard):
        lines = client.post("/api/v1/concept-sets", data={"name": "lines", "concepts": "a\nb\nc\nd\n"})
        refused(lines, 400, "4 lines, more than 3")
        big = client.post("/api/v1/concept-sets", data={"name": "big"}, files={"file": ("b.txt", b"word\n" * 400)})
        refused(big, 400, "larger than 1 KB")
        huge = client.post("/api/v1/concept-sets", data={"name": "huge"}, files={"file": ("h.txt", b"w\n" * 100_000)})
        refused(huge, 400, "over the concept list limit")


# --- no server paths shown -----------------------------------------------------------------------------------


def test_run_pages_and_api_show_no_server_paths(client: TestClient, dashboard: Dashboard) -> None:
    data_dir = str(dashboard.settings.data_dir)
    run_id = dashboard.newer.run_id
    for path in (
        f"/api/v1/runs/{run_id}",
        f"/runs/{run_id}",
        "/api/v1/runs",
        "/",
        f"/runs/{run_id}/layers/fc/neurons/1",
    ):
        assert data_dir not in client.get(path).text, path
    assert client.get(f"/api/v1/runs/{run_id}").json()["settings"]["probe"] == "probe"


def test_job_errors_name_the_catalogue_not_the_server(
    client: TestClient, dashboard: Dashboard, probe_folder: Path
) -> None:
    with write_session(dashboard.engine) as session:
        job_id = queue.enqueue(session, {"model": "tinynet", "layers": ["fc"], "probe": str(probe_folder)}).id
    claimed = queue.claim_next(dashboard.engine, "test-worker")
    while claimed is not None and claimed.id != job_id:
        queue.cancel(dashboard.engine, claimed.id)
        claimed = queue.claim_next(dashboard.engine, "test-worker")
    message = (
        f"probe image {probe_folder}/image_001.png can no longer be read; checkpoint "
        f"{dashboard.settings.data_dir}/checkpoints/ab/tiny.pt too"
    )
    queue.fail(dashboard.engine, job_id, "test-worker", message)
    job = client.get(f"/api/v1/jobs/{job_id}").json()
    assert job["error"] == "probe image street/image_001.png can no longer be read; checkpoint tiny.pt too"
    page = client.get(f"/jobs/{job_id}").text + client.get("/").text
    assert str(probe_folder) not in page and str(dashboard.settings.data_dir) not in page


def test_concept_search_errors_show_no_server_paths(client: TestClient, dashboard: Dashboard) -> None:
    top = dashboard.older.artifacts_dir / "top_indices" / "fc.pt"
    top.rename(top.with_suffix(".moved"))
    try:
        response = client.get(f"/api/v1/runs/{dashboard.older.run_id}/layers/fc/concepts", params={"q": "sky"})
    finally:
        top.with_suffix(".moved").rename(top)
    detail = refused(response, 422, "fc.pt")
    assert str(dashboard.settings.data_dir) not in detail


# --- the command line keeps its paths ------------------------------------------------------------------------


def test_probe_sets_command_adds_lists_and_removes(dashboard: Dashboard, tmp_path: Path, capsys: Any) -> None:
    folder = tmp_path / "cli-images"
    make_images(folder, 3)
    assert cli(dashboard, "probe-sets", "add", "cli-set", str(folder)) == 0
    assert cli(dashboard, "probe-sets", "list") == 0
    listed = capsys.readouterr().out
    assert "cli-set" in listed and str(folder) in listed and "cifar100" in listed
    assert cli(dashboard, "probe-sets", "add", "cli-set", str(folder)) == 2
    assert cli(dashboard, "probe-sets", "add", "other", str(folder)) == 2
    assert "already the probe set 'cli-set'" in capsys.readouterr().err
    assert cli(dashboard, "probe-sets", "remove", "cli-set") == 0
    assert folder.is_dir() and cli(dashboard, "probe-sets", "remove", "cli-set") == 2


# --- both databases ------------------------------------------------------------------------------------------


def test_catalogue_rows_and_model_names_on_both_databases(settings: Settings, engine: Any, tmp_path: Path) -> None:
    from app.core.errors import AtlasError
    from app.jobs.catalogue.sets import register_probe_folder, store_uploaded_concept_set, store_uploaded_probe_set
    from app.jobs.uploads.model_names import reserve_model_name
    from app.read.catalogue.sets import list_probe_sets, public_names
    from dissect_core.config import DissectConfig

    folder = tmp_path / "images"
    make_images(folder, 3)
    with write_session(engine) as session:
        register_probe_folder(session, settings, "imgs", folder)
    pets = store_uploaded_probe_set(engine, settings, "pets", io.BytesIO(zip_bytes(three_images())))
    words = store_uploaded_concept_set(engine, settings, "words", b"a\nb\n")
    with Session(engine) as session:
        assert [view.name for view in list_probe_sets(session)] == ["cifar100", "imgs", "pets"]
        assert public_names(session) == {str(folder.resolve()): "imgs", pets.folder: "pets", words.file: "words"}
    config = DissectConfig(
        model="tinynet", layers=("fc",), probe="cifar100", weights="none", checkpoint="/x/a.pt", model_name="mine"
    )
    with write_session(engine) as session:
        reserve_model_name(session, config, "0" * 64, None)
    with pytest.raises(AtlasError, match="just taken"), write_session(engine) as session:
        reserve_model_name(session, config, "1" * 64, None)


def test_the_catalogue_pages_add_sets_or_say_why_not(client: TestClient, dashboard: Dashboard) -> None:
    archive = zip_bytes([("p/one.png", png_bytes(color=(9, 9, 9)))])
    added = client.post(
        "/probe-sets", data={"name": "from-page"}, files={"archive": ("p.zip", archive)}, follow_redirects=False
    )
    assert added.status_code == 303 and added.headers["location"] == "/probe-sets"
    page = client.get("/probe-sets").text
    assert (
        "from-page" in page and 'enctype="multipart/form-data"' in page and str(dashboard.settings.data_dir) not in page
    )
    with nothing_stored(dashboard):
        bad = zip_bytes([("../up.png", png_bytes())])
        refused_page = client.post("/probe-sets", data={"name": "bad-page"}, files={"archive": ("b.zip", bad)})
    assert refused_page.status_code == 400 and "Not added." in refused_page.text and "climbs out" in refused_page.text
    listed = client.post(
        "/concept-sets", data={"name": "page-words", "concepts": "alpha\nbeta"}, follow_redirects=False
    )
    assert listed.status_code == 303 and "page-words" in client.get("/concept-sets").text
    with nothing_stored(dashboard):
        taken = client.post("/concept-sets", data={"name": "page-words", "concepts": "gamma"})
    assert taken.status_code == 422 and "is taken" in taken.text and "Not added." in taken.text


def test_bounds_and_encoders_come_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "NEURON_ATLAS_DATA_DIR": str(tmp_path),
            "NEURON_ATLAS_ENCODERS": "ViT-B-16:openai, conse:efficientnet_lite2+minilm,",
            "NEURON_ATLAS_PROBE_MAX_FILES": "100",
            "NEURON_ATLAS_PROBE_MAX_MB": "10",
            "NEURON_ATLAS_PROBE_MAX_PIXELS": "1000000",
            "NEURON_ATLAS_CONCEPTS_MAX_LINES": "5",
            "NEURON_ATLAS_CONCEPTS_MAX_KB": "3",
        }
    )
    assert settings.encoders == ("ViT-B-16:openai", "conse:efficientnet_lite2+minilm")
    assert (settings.probe_max_files, settings.probe_max_bytes, settings.probe_max_pixels) == (100, 10 << 20, 10**6)
    assert (settings.concepts_max_lines, settings.concepts_max_bytes) == (5, 3 << 10)
    defaults = Settings.from_env({"NEURON_ATLAS_DATA_DIR": str(tmp_path)})
    assert defaults.encoders is None and defaults.probe_max_bytes == 2 << 30
