"""The settings of one dissection, as one frozen dataclass the CLI, the worker and the demo all fill in."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_CLIP = "ViT-B-16:openai"
DEFAULT_OFFLINE_ENCODER = "conse:efficientnet_lite2+minilm"
DEFAULT_SIMILARITY = "soft_wpmi"


@dataclass(frozen=True)
class DissectConfig:
    """Everything that determines a dissection's result.

    model: a torchvision name (`resnet18`), a built-in (`efficientnet_lite0`), `timm:NAME`, or a
        TorchScript file. weights: a torchvision weights enum member name, `DEFAULT`, or `none` for random
        initialisation. checkpoint: a state dict (.pt/.pth/.safetensors) put onto the architecture.
    probe: a folder of images, or `cifar100`. concepts: `20k`, `imagenet`, `cifar100` or a text file.
    encoder: `ARCH:PRETRAINED` for open_clip, a local open_clip checkpoint, or `conse:CLASSIFIER+TEXT`.
    similarity_params: overrides of the similarity function's defaults (for example {"top_k": 5}).
    """

    model: str
    layers: tuple[str, ...]
    probe: str
    concepts: str = "20k"
    encoder: str = DEFAULT_CLIP
    similarity: str = DEFAULT_SIMILARITY
    similarity_params: dict[str, Any] = field(default_factory=dict)
    weights: str | None = "DEFAULT"
    checkpoint: str | None = None
    pool: str = "avg"
    prompt_template: str | None = None
    n_top_images: int = 5
    batch_size: int = 32
    max_images: int | None = None
    device: str | None = None
    labels_file: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-ready dict."""
        data = asdict(self)
        data["layers"] = list(self.layers)
        return data
