"""open_clip image–text encoders: `ARCH:PRETRAINED` (downloaded when online), `ARCH:/path/to/weights`, or
`ARCH:none` / `ARCH:none@SEED`, random weights drawn from a seed (0 for plain `none`) for tests and plumbing
checks, never for labels."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import torch

from dissect_core.data.hashing import file_sha256
from dissect_core.errors import DissectError
from dissect_core.names import random_init_seed
from dissect_core.seeding import seeded_init


def parse_open_clip_spec(spec: str) -> tuple[str, str]:
    """Split `ARCH:PRETRAINED` into its parts, raising a clear error on a malformed spec."""
    arch, sep, pretrained = spec.partition(":")
    if not sep or not arch or not pretrained:
        raise DissectError(
            f"encoder {spec!r} is not ARCH:PRETRAINED; use e.g. ViT-B-16:openai, ViT-B-16:/path/weights.pt, "
            "or conse:efficientnet_lite2+minilm offline"
        )
    return arch, pretrained


class OpenClipEncoder:
    """An open_clip model behind the ImageTextEncoder protocol; mixed precision on CUDA."""

    def __init__(self, spec: str, device: torch.device) -> None:
        import open_clip

        arch, pretrained = parse_open_clip_spec(spec)
        if arch not in open_clip.list_models():
            raise DissectError(
                f"open_clip has no architecture {arch!r}; see open_clip.list_models() (e.g. ViT-B-16, RN50)"
            )
        seed = random_init_seed(pretrained)
        weights_id = pretrained if seed is None else f"none@{seed}"
        if seed is None and Path(pretrained).expanduser().is_file():
            weights_id = "sha256:" + file_sha256(Path(pretrained).expanduser())
        try:
            with seeded_init(seed):
                model, _, preprocess = open_clip.create_model_and_transforms(
                    arch, pretrained=None if seed is not None else pretrained, device=device
                )
        except Exception as error:  # downloads fail offline with many exception types
            raise DissectError(
                f"could not load open_clip {arch} weights {pretrained!r} ({type(error).__name__}: {error}); "
                "go online once, pass a local checkpoint as ARCH:/path/to/weights.pt, or use the offline "
                "encoder conse:efficientnet_lite2+minilm"
            ) from error
        self.model = model.eval()
        self.tokenizer = open_clip.get_tokenizer(arch)
        self.image_transform = preprocess
        self.device = device
        self.identity = f"open_clip:{arch}:{weights_id}:{open_clip.__version__}"
        self.preprocess_identity = repr(preprocess)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    @torch.inference_mode()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """Return unit image embeddings [B, D] (float32)."""
        with self._autocast():
            features = self.model.encode_image(pixels.to(self.device))
        return torch.nn.functional.normalize(features.float(), dim=1)

    @torch.inference_mode()
    def encode_texts(self, texts: Sequence[str], batch_size: int = 512) -> torch.Tensor:
        """Return unit text embeddings [T, D] (float32) of the texts as given."""
        chunks = []
        for start in range(0, len(texts), batch_size):
            tokens = self.tokenizer(list(texts[start : start + batch_size])).to(self.device)
            with self._autocast():
                features = self.model.encode_text(tokens)
            chunks.append(torch.nn.functional.normalize(features.float(), dim=1).cpu())
        return torch.cat(chunks) if chunks else torch.empty(0, 0)
