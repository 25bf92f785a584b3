"""The checks of an image uploaded to a run (app.jobs.run_images.check_image): bytes, pixels from the header alone,
a full decode, and the formats browsers show; each refusal names the bound or the fix."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from app.core.config import Settings
from app.core.errors import AtlasError, BadUpload, TooLarge
from app.jobs.run_images import check_image


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.for_data_dir(tmp_path, image_max_bytes=64 * 1024, probe_max_pixels=10_000)


def encoded(image_format: str, size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 90)).save(buffer, format=image_format)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("image_format", "suffix"), [("PNG", ".png"), ("JPEG", ".jpg"), ("WEBP", ".webp"), ("GIF", ".gif")]
)
def test_a_whole_image_in_a_shown_format_passes_with_its_size_and_hash(
    settings: Settings, image_format: str, suffix: str
) -> None:
    checked = check_image(encoded(image_format), settings)
    assert (checked.suffix, checked.width, checked.height, len(checked.sha256)) == (suffix, 40, 30, 64)


def test_bytes_over_the_bound_are_too_large_naming_the_setting(settings: Settings) -> None:
    with pytest.raises(TooLarge, match="NEURON_ATLAS_IMAGE_MAX_MB"):
        check_image(b"\x89PNG" + b"\x00" * (64 * 1024), settings)


def test_pixels_over_the_bound_are_refused_from_the_header(settings: Settings) -> None:
    data = encoded("PNG", (8, 8))
    chunk = b"IHDR" + struct.pack(">II", 200, 200) + data[24:29]  # declares 40,000 pixels, holds 64
    bomb = data[:12] + chunk + struct.pack(">I", zlib.crc32(chunk)) + data[33:]
    with pytest.raises(AtlasError, match="more than 10,000 pixels") as refused:
        check_image(bomb, settings)
    assert not isinstance(refused.value, BadUpload)  # 422, not 400


def test_a_truncated_jpeg_is_refused_by_the_full_decode(settings: Settings) -> None:
    data = encoded("JPEG", (90, 90))
    with pytest.raises(AtlasError, match="damaged"):
        check_image(data[: len(data) // 2], settings)


def test_another_format_is_refused_naming_the_ones_taken(settings: Settings) -> None:
    with pytest.raises(AtlasError, match="PNG, JPEG, WebP or GIF"):
        check_image(encoded("BMP"), settings)


@pytest.mark.parametrize("data", [b"", b"just text", b"GIF89a"])
def test_empty_or_unreadable_files_are_refused(settings: Settings, data: bytes) -> None:
    with pytest.raises(AtlasError, match="PNG, JPEG, WebP or GIF"):
        check_image(data, settings)
