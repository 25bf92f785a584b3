"""Archive member names (relative parts only; absolute names, `..` and unprintable names refuse the archive), zip64
directories, and the names uploads get from their files."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from app.core.errors import BadUpload
from app.jobs.uploads.archives import ArchiveBounds, extract_files, extract_images, member_parts
from app.jobs.uploads.model_names import default_model_name


@pytest.mark.parametrize(
    ("name", "parts"),
    [("a.png", ("a.png",)), ("./cats//b.png", ("cats", "b.png")), ("dogs\\c.png", ("dogs", "c.png")), ("x/", ("x",))],
)
def test_relative_names_split_into_parts(name: str, parts: tuple[str, ...]) -> None:
    assert member_parts(name) == parts


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("../x.png", "climbs out"),
        ("a/../../x.png", "climbs out"),
        ("a\\..\\x.png", "climbs out"),
        ("/etc/x.png", "absolute name"),
        ("\\\\server\\x.png", "absolute name"),
        ("C:x.png", "absolute name"),
        ("bad\nname.png", "unprintable"),
        ("bad\udcffname.png", "unprintable"),
        ("", "unprintable"),
        ("/".join(["d"] * 40) + "/x.png", "nested too deep"),
        ("x" * 300 + ".png", "too long"),
    ],
)
def test_unsafe_names_are_refused(name: str, words: str) -> None:
    with pytest.raises(BadUpload, match=words):
        member_parts(name)


@pytest.mark.parametrize(
    ("filename", "name"),
    [("My Net.pt", "my-net"), ("resnet_v1.2.safetensors", "resnet_v1.2"), ("...pt", "model"), ("___.pt", "model")],
)
def test_an_upload_is_named_after_its_file(filename: str, name: str) -> None:
    assert default_model_name(filename) == name


def test_a_zip64_directory_is_counted_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = io.BytesIO()
    Image.new("RGB", (8, 8)).save(image, format="PNG")
    archive = io.BytesIO()
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 1)  # so two entries already need the zip64 end record
    with zipfile.ZipFile(archive, "w") as writer:
        writer.writestr("a.png", image.getvalue())
        writer.writestr("b/c.png", image.getvalue())
    assert b"PK\x06\x06" in archive.getvalue()
    extracted = extract_images(
        io.BytesIO(archive.getvalue()), tmp_path / "ok", ArchiveBounds(10, 1 << 20, 10**6, 10**9)
    )
    assert [image.relative for image in extracted] == ["a.png", "b/c.png"]
    with pytest.raises(BadUpload, match="more than 1 members"):
        extract_images(io.BytesIO(archive.getvalue()), tmp_path / "refused", ArchiveBounds(1, 1 << 20, 10**6, 10**9))


def test_every_file_is_extracted_for_a_saved_run_and_its_bound_names_its_variable(tmp_path: Path) -> None:
    image = io.BytesIO()
    Image.new("RGB", (8, 8)).save(image, format="JPEG")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as writer:
        writer.writestr("manifest.json", b"{}")
        writer.writestr("images/0.jpg", image.getvalue())
        writer.writestr(".hidden/x.json", b"{}")
        writer.writestr("__MACOSX/._manifest.json", b"")
    bounds = ArchiveBounds(10, 1 << 20, 10**6, 10**9, "files", "push a smaller run", "NEURON_ATLAS_PUSH_MAX_MB")

    extracted = extract_files(io.BytesIO(archive.getvalue()), tmp_path / "run", bounds)

    assert [file.relative for file in extracted] == ["images/0.jpg", "manifest.json"]
    assert (tmp_path / "run" / "manifest.json").read_bytes() == b"{}"
    tight = ArchiveBounds(10, 100, 10**6, 10**9, "files", "push a smaller run", "NEURON_ATLAS_PUSH_MAX_MB")
    with pytest.raises(BadUpload, match=r"files add up to more than 100 bytes.*push a smaller run.*PUSH_MAX_MB"):
        extract_files(io.BytesIO(archive.getvalue()), tmp_path / "refused", tight)
