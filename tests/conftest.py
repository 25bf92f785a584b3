"""Fixtures shared by every test: small probe folders, a tiny random open_clip model, the shared data path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

FIXTURES = Path(__file__).parent / "fixtures"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
#: An open_clip architecture with random weights, registered from tests/fixtures: fast plumbing, no download.
TINY_CLIP = "tiny_clip:none"


@pytest.fixture(scope="session")
def tiny_clip() -> str:
    """Register the tiny random open_clip architecture (once per session); return its encoder spec."""
    import open_clip

    open_clip.add_model_config(str(FIXTURES / "tiny_clip.json"))
    return TINY_CLIP


def make_probe_folder(root: Path, n_images: int = 24, seed: int = 0, size: tuple[int, int] = (48, 40)) -> Path:
    """Write `n_images` random RGB images in two class sub-folders under `root`; return `root`."""
    rng = np.random.default_rng(seed)
    for index in range(n_images):
        folder = root / ("stripes" if index % 2 else "dots")
        folder.mkdir(parents=True, exist_ok=True)
        pixels = (rng.random((size[1], size[0], 3)) * 255).astype("uint8")
        Image.fromarray(pixels).save(folder / f"image_{index:03d}.png")
    return root


@pytest.fixture
def probe_folder(tmp_path: Path) -> Path:
    """A folder of 24 small random images in two sub-folders."""
    return make_probe_folder(tmp_path / "probe")


@pytest.fixture
def concept_file(tmp_path: Path) -> Path:
    """A concept file with a blank line, a duplicate and stray whitespace."""
    path = tmp_path / "concepts.txt"
    path.write_text("cat\n\ndog\ncat\n  striped  \ncar\nsky\n")
    return path


@pytest.fixture
def shared_imagenet() -> Path:
    """The shared ImageNet validation subset, or skip when ../shared is absent."""
    root = SHARED_DATA / "imagenet-val-1300"
    if not root.is_dir():
        pytest.skip(f"shared ImageNet images not found at {root} (see ../shared/README.md)")
    return root
