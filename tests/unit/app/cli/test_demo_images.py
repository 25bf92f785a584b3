"""The demo probe builder: composites stamp cut-outs into 256×256 JPEG folders, idempotently."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from app.cli import demo_images
from app.cli.demo_images import build_demo_probe
from dissect_core.errors import DissectError


def _stamp(path: Path, colour: tuple[int, int, int], mode: str = "RGBA", size: int = 120, flat: bool = False) -> None:
    """Write a cut-out: an ellipse of photo-like grain around `colour` (or one flat colour) on transparency."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(sum(colour))
    grain = np.zeros((size, size, 3)) if flat else rng.integers(-40, 40, (size, size, 3))
    rgb = np.clip(np.array(colour) + grain, 0, 255).astype("uint8")
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).ellipse((10, 20, size - 10, size - 5), fill=255)
    img = Image.fromarray(rgb).convert("RGBA")
    img.putalpha(mask)
    img.convert(mode).save(path)


@pytest.fixture()
def stamps(tmp_path: Path) -> Path:
    root = tmp_path / "stamps"
    _stamp(root / "animals" / "birds" / "hen.png", (200, 120, 40))
    _stamp(root / "animals" / "mammals" / "cats" / "lion.png", (210, 170, 60))
    _stamp(root / "food" / "fruit" / "apple.png", (200, 20, 30))
    _stamp(root / "food" / "fruit" / "apple_mirror.png", (200, 20, 30))
    _stamp(root / "food" / "fruit" / "cartoon" / "pear.png", (20, 200, 30))
    _stamp(root / "town" / "roadsigns" / "stop.png", (220, 0, 0))
    _stamp(root / "clothes" / "t_shirt.png", (128, 128, 128), mode="LA")
    _stamp(root / "household" / "pin.png", (90, 90, 90), size=30)
    _stamp(root / "seasonal" / "star.png", (250, 220, 0), flat=True)
    return root


def test_builds_category_folders_of_256_jpegs(stamps: Path, tmp_path: Path) -> None:
    dest = build_demo_probe(tmp_path / "probe", stamps_dir=stamps, include_skimage=False)
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*.jpg"))
    assert files == ["animals-birds/hen.jpg", "animals-mammals/lion.jpg", "food-fruit/apple.jpg"]
    with Image.open(dest / files[0]) as img:
        assert img.size == (256, 256) and img.mode == "RGB"
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["written"] == files


def test_second_build_is_skipped(stamps: Path, tmp_path: Path) -> None:
    dest = build_demo_probe(tmp_path / "probe", stamps_dir=stamps, include_skimage=False)
    before = {p: p.stat().st_mtime_ns for p in dest.rglob("*")}
    build_demo_probe(dest, stamps_dir=stamps, include_skimage=False)
    assert {p: p.stat().st_mtime_ns for p in dest.rglob("*")} == before


def test_rebuilds_when_sources_change(stamps: Path, tmp_path: Path) -> None:
    dest = build_demo_probe(tmp_path / "probe", stamps_dir=stamps, include_skimage=False)
    _stamp(stamps / "vehicles" / "auto" / "car.png", (10, 60, 200))
    build_demo_probe(dest, stamps_dir=stamps, include_skimage=False)
    assert (dest / "vehicles-auto" / "car.jpg").is_file()


def test_output_is_deterministic(stamps: Path, tmp_path: Path) -> None:
    a = build_demo_probe(tmp_path / "a", stamps_dir=stamps, include_skimage=False)
    b = build_demo_probe(tmp_path / "b", stamps_dir=stamps, include_skimage=False)
    assert (a / "food-fruit/apple.jpg").read_bytes() == (b / "food-fruit/apple.jpg").read_bytes()


def test_missing_source_names_install_command(tmp_path: Path) -> None:
    with pytest.raises(DissectError, match="apt-get install -y --no-install-recommends tuxpaint-stamps-default"):
        build_demo_probe(tmp_path / "probe", stamps_dir=tmp_path / "nothing")


def test_refuses_to_overwrite_a_foreign_folder(stamps: Path, tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(DissectError, match="not a demo probe folder"):
        build_demo_probe(tmp_path / "mine", stamps_dir=stamps, include_skimage=False)
    assert (tmp_path / "mine" / "notes.txt").is_file()


def test_skimage_photos_are_added(stamps: Path, tmp_path: Path) -> None:
    pytest.importorskip("skimage.data", reason="scikit-image is not installed")
    dest = build_demo_probe(tmp_path / "probe", stamps_dir=stamps)
    assert (dest / "photos-animals" / "chelsea.jpg").is_file()
    assert len(list((dest / "textures").glob("*.jpg"))) == 3


def test_real_stamps_give_hundreds_of_photos() -> None:
    if not demo_images.STAMPS_DIR.is_dir():
        pytest.skip(f"tuxpaint-stamps-default is not installed ({demo_images.STAMPS_DIR})")
    sources = demo_images._stamp_sources(demo_images.STAMPS_DIR)
    assert len(sources) > 300
    assert len({demo_images._category(p.relative_to(demo_images.STAMPS_DIR)) for p in sources}) > 20
