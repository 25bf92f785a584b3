"""Probe sets uploaded as archives of images: stored and chosen by name, and every hostile or oversized archive
refused while it is read, leaving nothing behind."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.persistence.models import CatalogProbeSet
from tests.integration.upload_helpers import (
    bounded_client,
    cli,
    nothing_stored,
    png_bytes,
    post_probe_set,
    refused,
    three_images,
    upload,
    zip_bytes,
)
from tests.support.dashboard_seed import Dashboard


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


def test_an_archive_of_images_becomes_a_probe_set(client: TestClient, dashboard: Dashboard) -> None:
    response = post_probe_set(client, "pets", zip_bytes(three_images()))
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["name"] == "pets" and created["kind"] == "uploaded" and created["n_images"] == 3
    assert created["thumbnails"] and all(url.startswith("/media/") for url in created["thumbnails"])
    assert client.get(created["thumbnails"][0]).headers["content-type"] == "image/jpeg"
    listed = client.get("/api/v1/probe-sets")
    assert [item["name"] for item in listed.json()["items"]][:1] == ["cifar100"] and "pets" in listed.text
    assert str(dashboard.settings.data_dir) not in listed.text
    keys = {key for item in listed.json()["items"] for key in item}
    assert keys == {"name", "kind", "n_images", "thumbnails", "created_at", "owner"}  # an uploaded set names its owner
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
