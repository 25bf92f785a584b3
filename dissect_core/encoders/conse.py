"""ConSE: an offline image–text encoder from an ImageNet classifier and a sentence-text encoder.

ConSE (Norouzi et al., "Zero-Shot Learning by Convex Combination of Semantic Embeddings", ICLR 2014) embeds
an image as the probability-weighted sum of the text embeddings of its top-T predicted ImageNet classes
("a photo of a {class}"), and a concept as the text embedding of the concept itself. It needs no CLIP
weights, but it only knows the 1,000 ImageNet classes: it is weak on colours, textures, materials and scenes,
and every image looks like some ImageNet object to it. Never dissect a network with a ConSE encoder built on
that same network: its labels would just echo the network's own predictions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from dissect_core.data.concepts import imagenet_class_names
from dissect_core.encoders import CONSE_PREFIX
from dissect_core.encoders.text import TEXT_ENCODER_NAMES, TextEncoder, load_text_encoder
from dissect_core.errors import DissectError
from dissect_core.models.efficientnet_lite import (
    EFFICIENTNET_LITE_NAMES,
    build_efficientnet_lite,
    efficientnet_lite_preprocessing,
    efficientnet_lite_transform,
    efficientnet_lite_weights_hash,
)

DEFAULT_TOP_T = 10
DEFAULT_TEMPLATE = "a photo of a {}"
#: A concept whose text embedding is farther than this (cosine) from every class prompt is one ConSE cannot place:
#: its image embeddings are mixtures of the class prompts, so no image can stand out on it. Measured with MiniLM
#: (2026-12-07): 30 ImageNet class words 0.57-0.87 (median 0.79); 40 random letter strings 0.21-0.57 (median 0.30,
#: one over 0.5); colours, textures and function words 0.16-0.53 (purple 0.36, striped 0.40, red 0.53).
RECOGNITION_FLOOR = 0.5


def parse_conse_spec(spec: str) -> tuple[str, str]:
    """Split `conse:CLASSIFIER+TEXT` into (classifier, text encoder), checking both names."""
    choices = (
        f"classifier one of {', '.join(EFFICIENTNET_LITE_NAMES)}; text encoder one of "
        f"{', '.join(TEXT_ENCODER_NAMES)} (for example `conse:efficientnet_lite2+minilm`)"
    )
    if not spec.startswith(CONSE_PREFIX) or "+" not in spec:
        raise DissectError(f"Bad ConSE encoder spec {spec!r}: write `conse:CLASSIFIER+TEXT` with {choices}.")
    classifier, text = spec[len(CONSE_PREFIX) :].split("+", 1)
    if classifier not in EFFICIENTNET_LITE_NAMES:
        raise DissectError(f"Unknown ConSE classifier {classifier!r} in {spec!r}: use {choices}.")
    if text not in TEXT_ENCODER_NAMES:
        raise DissectError(f"Unknown ConSE text encoder {text!r} in {spec!r}: use {choices}.")
    return classifier, text


def _preprocess_identity(classifier: str) -> str:
    cfg = efficientnet_lite_preprocessing(classifier)
    mean = ",".join(f"{v:.4f}" for v in cfg["mean"])
    std = ",".join(f"{v:.4f}" for v in cfg["std"])
    return f"resize{cfg['resize_size']}-{cfg['interpolation']}-centercrop{cfg['input_size']}-mean{mean}-std{std}"


class ConSEEncoder:
    """ImageTextEncoder whose image embedding is the p-weighted sum of its top-T class-name embeddings."""

    def __init__(
        self,
        classifier: str = "efficientnet_lite2",
        text: str | TextEncoder = "minilm",
        top_t: int = DEFAULT_TOP_T,
        template: str = DEFAULT_TEMPLATE,
        device: str | torch.device = "cpu",
    ) -> None:
        if not 1 <= top_t <= 1000:
            raise DissectError(f"ConSE top_t must be between 1 and 1000, got {top_t}.")
        if "{}" not in template:
            raise DissectError(f"ConSE template {template!r} needs a `{{}}` where the class name goes.")
        self.device = torch.device(device)
        self.classifier_name = classifier
        self._classifier: torch.nn.Module | None = None  # built on first image: text-only users skip it
        self.text = text if isinstance(text, TextEncoder) else load_text_encoder(text, self.device)
        self.top_t = top_t
        self.template = template
        self.image_transform = efficientnet_lite_transform(classifier)
        self.preprocess_identity = _preprocess_identity(classifier)
        self.identity = (
            f"conse:{classifier}@{efficientnet_lite_weights_hash(classifier)}"
            f"|T={top_t}|template={template!r}|text={self.text.identity}"
        )
        self._class_embeddings: torch.Tensor | None = None

    @classmethod
    def from_spec(cls, spec: str, device: str | torch.device = "cpu", top_t: int = DEFAULT_TOP_T) -> ConSEEncoder:
        """Build the encoder that a `conse:CLASSIFIER+TEXT` spec names."""
        classifier, text = parse_conse_spec(spec)
        return cls(classifier, text, top_t=top_t, device=device)

    @property
    def classifier(self) -> torch.nn.Module:
        """Return the ImageNet classifier, built on first use."""
        if self._classifier is None:
            self._classifier = build_efficientnet_lite(self.classifier_name).to(self.device)
        return self._classifier

    @property
    def class_embeddings(self) -> torch.Tensor:
        """Return the [1000, D] text embeddings of the templated ImageNet class names (computed once)."""
        if self._class_embeddings is None:
            prompts = [self.template.format(name) for name in imagenet_class_names()]
            self._class_embeddings = self.text.encode(prompts).to(self.device)
        return self._class_embeddings

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """Return L2-normalised float32 embeddings [B, D] of a preprocessed batch [B, 3, H, W]."""
        with torch.inference_mode():
            probs = self.classifier(pixels.to(self.device)).float().softmax(dim=-1)
            top_p, top_idx = probs.topk(self.top_t, dim=-1)
            emb = torch.einsum("bt,btd->bd", top_p, self.class_embeddings[top_idx])
        return torch.nn.functional.normalize(emb, dim=-1).float()

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Return L2-normalised float32 embeddings [T, D] of the texts, un-templated."""
        return self.text.encode(texts).to(self.device)

    def recognises(self, text_embeddings: torch.Tensor) -> torch.Tensor:
        """Return whether each concept [T] (text embeddings [T, D]) is near enough to one of the class prompts
        (RECOGNITION_FLOOR) for ConSE to place it at all: images are embedded only as mixtures of those prompts."""
        texts = torch.nn.functional.normalize(text_embeddings.to(self.device).float(), dim=-1)
        prompts = torch.nn.functional.normalize(self.class_embeddings.float(), dim=-1)
        with torch.inference_mode():
            return (texts @ prompts.T).max(dim=1).values >= RECOGNITION_FLOOR
