"""Content-addressed media files (probe views, top-image crops, heatmap overlays) and how they are drawn."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from app.persistence.models import CUT_ON_REQUEST as CUT_ON_REQUEST  # a top image's file column value; named here too
from dissect_core.saved.layout import VIEW_JPEG_QUALITY

CROP_SIZE = 112
JPEG_QUALITY = VIEW_JPEG_QUALITY  # one quality for stored runs and saved folders
# Heatmap colours run from transparent (no activation) to this much colour over the view (at the peak).
HEATMAP_MAX_OPACITY = 0.75
#: Where the media store keeps aliases (a name -> the content-addressed file): a dot folder, never served as media.
ALIAS_FOLDER = ".aliases"


class MediaStore:
    """Files under the media dir named by the sha256 of their bytes: `ab/abcdef....jpg`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._made_dirs: set[str] = set()

    def put(self, data: bytes, suffix: str) -> str:
        """Store bytes unless an identical file exists; return the path relative to the media dir."""
        digest = hashlib.sha256(data).hexdigest()
        relative = f"{digest[:2]}/{digest}{suffix}"
        # Plain strings and os calls: this runs ~50,000 times per large run.
        target = os.path.join(self.root, relative)
        try:  # stored already: touched, so `gc` keeps it while a run being stored does not reference it yet
            os.utime(target)
            return relative
        except FileNotFoundError:
            pass
        except OSError:  # there, but not ours to touch (a read-only data folder): reused as it is
            return relative
        if digest[:2] not in self._made_dirs:
            os.makedirs(os.path.join(self.root, digest[:2]), exist_ok=True)
            self._made_dirs.add(digest[:2])
        # Write then rename: readers never see a partial file. The temporary name is unique per process
        # and thread, so concurrent writers of the same bytes cannot collide; the last rename wins.
        temporary = f"{target}.tmp-{os.getpid()}-{threading.get_ident()}"
        try:
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                remaining = memoryview(data)
                while remaining:
                    remaining = remaining[os.write(handle, remaining) :]
            finally:
                os.close(handle)
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        return relative

    def alias(self, name: str) -> str | None:
        """Return the stored file an alias (`a/b/c`, made by `set_alias`) names, or None when it names none yet."""
        try:
            relative = Path(self.root, ALIAS_FOLDER, name).read_text(encoding="utf-8").strip()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return relative if relative and os.path.isfile(os.path.join(self.root, relative)) else None

    def set_alias(self, name: str, relative: str) -> None:
        """Make an alias name a stored file (written then renamed, so readers see the old name or the new)."""
        target = Path(self.root, ALIAS_FOLDER, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f"{target.name}.tmp-{os.getpid()}-{threading.get_ident()}")
        try:
            temporary.write_text(relative, encoding="utf-8")
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise


def jpeg_bytes(image: Image.Image) -> bytes:
    """Return the image encoded as JPEG (RGB, fixed quality, so equal images give equal bytes)."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def crop_around(view: Image.Image, box: tuple[float, float, float, float], size: int = CROP_SIZE) -> Image.Image:
    """Return the part of the view inside `box` ((x0, y0, x1, y1) in [0, 1]), longer side scaled to `size`."""
    width, height = view.size
    x0, y0, x1, y1 = (min(max(float(value), 0.0), 1.0) for value in box)
    left, right = sorted((round(x0 * width), round(x1 * width)))
    top, bottom = sorted((round(y0 * height), round(y1 * height)))
    right = min(max(right, left + 1), width)
    bottom = min(max(bottom, top + 1), height)
    left, top = min(left, right - 1), min(top, bottom - 1)
    crop = view.crop((left, top, right, bottom))
    scale = size / max(crop.size)
    new_size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
    return crop.resize(new_size, Image.Resampling.BILINEAR)


def heatmap_levels(maps: np.ndarray) -> np.ndarray:
    """Return activation maps [K, n, h, w] as uint8 levels, each neuron scaled by its own peak.

    One scale per neuron keeps the heatmaps of its top images comparable with each other.
    """
    finite = np.nan_to_num(maps.astype(np.float32, copy=False), nan=0.0, posinf=0.0, neginf=0.0)
    peaks = finite.reshape(finite.shape[0], -1).max(axis=1) if finite.size else np.zeros(finite.shape[0])
    scale = np.where(peaks > 0, 255.0 / np.where(peaks > 0, peaks, 1.0), 0.0).astype(np.float32)
    return np.clip(finite * scale[:, None, None, None], 0, 255).astype(np.uint8)


def heatmap_png(levels: np.ndarray) -> bytes:
    """Return an activation map (uint8 levels [h, w]) as a transparent PNG overlay at the map's own size.

    A paletted PNG: the inferno colour of each level, with an opacity that grows with the level (none where
    the neuron is silent, capped so the image shows through). Browsers stretch it smoothly over the view.
    Written directly (a run has tens of thousands of these; PIL's PNG writer costs ~0.2 ms each in Python).
    """
    levels = np.ascontiguousarray(levels, dtype=np.uint8)
    height, width = levels.shape
    rows = np.zeros((height, width + 1), dtype=np.uint8)  # each scanline starts with filter type 0
    rows[:, 1:] = levels
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)  # 8-bit, palette colour
    return b"".join(
        [
            _PNG_SIGNATURE,
            _png_chunk(b"IHDR", header),
            _HEATMAP_PALETTE_CHUNKS,
            _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 1)),
            _PNG_END,
        ]
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _inferno_palette() -> bytes:
    # A few stops of matplotlib's "inferno", linearly interpolated to 256 RGB entries.
    stops = np.array(
        [
            (0.00, 0, 0, 4),
            (0.13, 31, 12, 72),
            (0.25, 85, 15, 109),
            (0.38, 136, 34, 106),
            (0.50, 186, 54, 85),
            (0.63, 227, 89, 51),
            (0.75, 249, 140, 10),
            (0.88, 249, 201, 50),
            (1.00, 252, 255, 164),
        ]
    )
    positions = np.linspace(0.0, 1.0, 256)
    channels = [np.interp(positions, stops[:, 0], stops[:, index]) for index in (1, 2, 3)]
    return np.stack(channels, axis=1).round().astype(np.uint8).tobytes()


INFERNO_PALETTE = _inferno_palette()
#: Level -> opacity: grows with the level up to the cap.
HEATMAP_ALPHA = bytes(np.round(np.arange(256) * HEATMAP_MAX_OPACITY).astype(np.uint8).tolist())
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = _png_chunk(b"IEND", b"")
_HEATMAP_PALETTE_CHUNKS = _png_chunk(b"PLTE", INFERNO_PALETTE) + _png_chunk(b"tRNS", HEATMAP_ALPHA)
