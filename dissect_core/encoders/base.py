"""The small protocol every image–text encoder implements (open_clip, ConSE, ...)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import torch
from PIL import Image


class ImageTextEncoder(Protocol):
    """Embeds images and texts into one space; cosine between them is the CLIP-Dissect P matrix."""

    #: Stable identity for caches: names the model, its weights hash and anything that changes embeddings.
    identity: str
    #: PIL RGB image -> float tensor [3, H, W], the encoder's own preprocessing.
    image_transform: Callable[[Image.Image], torch.Tensor]
    #: Identity of the preprocessing, part of the image-embedding cache key.
    preprocess_identity: str
    device: torch.device

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """Return L2-normalised float32 embeddings [B, D] of a preprocessed batch [B, 3, H, W]."""
        ...

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Return L2-normalised float32 embeddings [T, D] of the texts, un-templated."""
        ...


def recognised_concepts(encoder: ImageTextEncoder, text_embeddings: torch.Tensor) -> torch.Tensor | None:
    """Return whether the encoder can place each concept at all ([T] bool on the CPU) from the concepts' text
    embeddings [T, D], or None when it cannot say (an open_clip model places any text in the images' space; ConSE
    only through its classes: `ConSEEncoder.recognises`)."""
    recognises = getattr(encoder, "recognises", None)
    return None if recognises is None else recognises(text_embeddings).cpu()
