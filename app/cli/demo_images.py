"""The `neuron-atlas demo` probe set: real photo cut-outs from Debian's Tux Paint stamps, made into 256×256 JPEGs.

`tuxpaint-stamps-default` (GPL-2) ships ~430 photographs of animals, food, plants, tools, instruments and
vehicles, cut out on a transparent background, in category folders (plus some drawings, signs and tintable
greyscale stamps, which are left out). Each photo is pasted at a varied scale and
position onto a varied background (flat colours, gradients, noise) so that the background is not a constant
every neuron can latch onto. scikit-image's few sample photographs (cat, astronaut, coffee, rocket, brick,
grass, ...) are added when scikit-image is installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from app.core.errors import AtlasError

STAMPS_DIR = Path("/usr/share/tuxpaint/stamps")
INSTALL_COMMAND = "apt-get update && apt-get install -y --no-install-recommends tuxpaint-stamps-default"
SIZE = 256
MANIFEST = "manifest.json"
_FORMAT_VERSION = 1
# Drawings, signs and letters rather than photographs, or stamps meant to be tinted by the child.
_SKIP_PARTS = {"cartoon", "symbols", "roadsigns", "flags"}
_SKIP_NAME_BITS = ("_mirror", "outline", "_flip")
_MIN_SIDE = 64
# A drawing's opaque pixels fall mostly into a few flat colours; a photo's spread over many.
_DRAWN_TOP_COLOURS = 8
_DRAWN_SHARE = 0.75
# scikit-image's sample photographs (file in skimage/data -> category)
_SKIMAGE_PHOTOS = {
    "chelsea.png": "photos-animals",
    "astronaut.png": "photos-people",
    "coffee.png": "photos-food",
    "rocket.jpg": "photos-vehicles",
    "motorcycle_left.png": "photos-vehicles",
    "brick.png": "textures",
    "grass.png": "textures",
    "gravel.png": "textures",
}
_BACKGROUNDS = [
    (236, 236, 232),
    (200, 200, 200),
    (128, 128, 128),
    (60, 60, 64),
    (222, 210, 186),
    (170, 196, 220),
    (176, 200, 160),
    (240, 226, 210),
    (90, 110, 130),
    (150, 120, 100),
]


def _category(rel: Path) -> str:
    parts = rel.parent.parts
    return "-".join(parts[:2]) if parts else "misc"


def _stamp_sources(stamps_dir: Path) -> list[Path]:
    found = []
    for path in sorted(stamps_dir.rglob("*.png")):
        rel = path.relative_to(stamps_dir)
        if _SKIP_PARTS & set(rel.parts) or any(bit in path.stem for bit in _SKIP_NAME_BITS):
            continue
        found.append(path)
    return found


def _skimage_sources() -> list[Path]:
    try:
        import skimage.data
    except ImportError:
        return []
    root = Path(skimage.data.__file__).parent
    return [root / name for name in _SKIMAGE_PHOTOS if (root / name).is_file()]


def _background(rng: random.Random) -> Image.Image:
    a, b = rng.sample(_BACKGROUNDS, 2)
    style = rng.choice(("flat", "vertical", "horizontal"))
    img = Image.new("RGB", (SIZE, SIZE), a)
    if style != "flat":
        draw = ImageDraw.Draw(img)
        for i in range(SIZE):
            t = i / (SIZE - 1)
            colour = tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))
            line = [(0, i), (SIZE, i)] if style == "vertical" else [(i, 0), (i, SIZE)]
            draw.line(line, fill=colour)
    # Seeded grain (PIL's effect_noise is not seedable), so rebuilding gives byte-identical files.
    noise = Image.frombytes("L", (SIZE, SIZE), rng.randbytes(SIZE * SIZE)).convert("RGB")
    return Image.blend(img, noise, rng.uniform(0.03, 0.1)).filter(ImageFilter.SMOOTH)


def _looks_drawn(stamp: Image.Image) -> bool:
    rgba = np.asarray(stamp)
    pixels = rgba[..., :3][rgba[..., 3] > 200] // 8
    if len(pixels) == 0:
        return True
    keys = (pixels[:, 0].astype(np.int32) << 10) | (pixels[:, 1].astype(np.int32) << 5) | pixels[:, 2]
    counts = np.sort(np.unique(keys, return_counts=True)[1])[::-1]
    return counts[:_DRAWN_TOP_COLOURS].sum() / len(pixels) >= _DRAWN_SHARE


def _composite(stamp_path: Path, seed: str) -> Image.Image | None:
    rng = random.Random(hashlib.sha256(seed.encode()).digest())
    stamp: Image.Image = Image.open(stamp_path)
    if stamp.mode in ("L", "LA") or max(stamp.size) < _MIN_SIDE:  # tintable greyscale stamps, tiny icons
        return None
    stamp = stamp.convert("RGBA")
    box = stamp.getbbox()
    if box is None:
        return None
    stamp = stamp.crop(box)
    if _looks_drawn(stamp):
        return None
    scale = rng.uniform(0.6, 0.9) * SIZE / max(stamp.size)
    stamp = stamp.resize(
        (max(1, round(stamp.width * scale)), max(1, round(stamp.height * scale))), Image.Resampling.LANCZOS
    )
    canvas = _background(rng)
    x = rng.randint(0, SIZE - stamp.width)
    y = rng.randint(0, SIZE - stamp.height)
    canvas.paste(stamp, (x, y), stamp)
    return canvas


def _photo(path: Path) -> Image.Image:
    img = Image.open(path).convert("RGB")
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    return img.crop((left, top, left + side, top + side)).resize((SIZE, SIZE), Image.Resampling.LANCZOS)


def _plan(stamps_dir: Path, photos: list[Path]) -> dict[str, Any]:
    items = []
    for path in _stamp_sources(stamps_dir):
        rel = path.relative_to(stamps_dir)
        items.append({"source": str(rel), "bytes": path.stat().st_size, "out": f"{_category(rel)}/{path.stem}.jpg"})
    for path in photos:
        items.append(
            {
                "source": f"skimage:{path.name}",
                "bytes": path.stat().st_size,
                "out": f"{_SKIMAGE_PHOTOS[path.name]}/{path.stem}.jpg",
            }
        )
    return {"version": _FORMAT_VERSION, "size": SIZE, "items": items}


def _is_built(dest: Path, plan: dict[str, Any]) -> bool:
    try:
        stored = json.loads((dest / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    if {k: stored.get(k) for k in plan} != plan:
        return False
    return all((dest / name).is_file() for name in stored.get("written", []))


def build_demo_probe(dest: Path, stamps_dir: Path | None = None, include_skimage: bool = True) -> Path:
    """Materialise the demo probe folder (one subfolder per category, 256×256 JPEGs); skip if already built."""
    stamps_dir = Path(os.environ.get("NEURON_ATLAS_STAMPS_DIR", STAMPS_DIR)) if stamps_dir is None else stamps_dir
    if not stamps_dir.is_dir() or not _stamp_sources(stamps_dir):
        raise AtlasError(
            f"The demo probe images come from Debian's Tux Paint stamps, not found in {stamps_dir}; "
            f"install them with `{INSTALL_COMMAND}` (as root), or pass your own image folder as the probe."
        )
    dest = Path(dest)
    photos = {p.name: p for p in (_skimage_sources() if include_skimage else [])}
    plan = _plan(stamps_dir, list(photos.values()))
    if _is_built(dest, plan):
        return dest
    if dest.exists() and any(dest.iterdir()) and not (dest / MANIFEST).is_file():
        raise AtlasError(f"{dest} exists and is not a demo probe folder; remove it or choose another path.")
    tmp = dest.with_name(dest.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    written = []
    for item in plan["items"]:
        source = item["source"]
        if source.startswith("skimage:"):
            img: Image.Image | None = _photo(photos[source.removeprefix("skimage:")])
        else:
            img = _composite(stamps_dir / source, seed=source)
        if img is None:
            continue
        out = tmp / item["out"]
        out.parent.mkdir(parents=True, exist_ok=True)
        img.save(out, "JPEG", quality=90)
        written.append(item["out"])
    (tmp / MANIFEST).write_text(json.dumps({**plan, "written": written}, indent=1))
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest
