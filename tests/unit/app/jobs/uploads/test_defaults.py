"""The upload form starts on choices that need no download when the downloads are missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.jobs.uploads import defaults as upload_defaults
from app.jobs.uploads.defaults import DEMO_PROBE_SET, default_encoder, default_probe
from dissect_core.config import DEFAULT_CLIP, DEFAULT_OFFLINE_ENCODER
from dissect_core.names import CIFAR100_PROBE


def test_probe_prefers_cifar100_only_once_it_is_on_disk(tmp_path: Path) -> None:
    offered = [CIFAR100_PROBE, DEMO_PROBE_SET, "lab-photos"]
    assert default_probe(offered, tmp_path) == DEMO_PROBE_SET  # CIFAR-100 would be downloaded first
    (tmp_path / CIFAR100_PROBE).mkdir()
    (tmp_path / CIFAR100_PROBE / ".complete").touch()
    assert default_probe(offered, tmp_path) == CIFAR100_PROBE
    assert default_probe(["lab-photos"], tmp_path) == "lab-photos"


def test_encoder_prefers_clip_only_when_its_weights_are_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    offered = [DEFAULT_CLIP, DEFAULT_OFFLINE_ENCODER]
    monkeypatch.setattr(upload_defaults, "open_clip_weights_cached", lambda encoder: False)
    assert default_encoder(offered) == DEFAULT_OFFLINE_ENCODER
    monkeypatch.setattr(upload_defaults, "open_clip_weights_cached", lambda encoder: encoder == DEFAULT_CLIP)
    assert default_encoder(offered) == DEFAULT_CLIP
    assert default_encoder([DEFAULT_OFFLINE_ENCODER]) == DEFAULT_OFFLINE_ENCODER
