"""What the upload form starts on: choices that work without downloading anything when their downloads are missing.

The paper's encoder (open_clip's ViT-B-16:openai) and the CIFAR-100 probe set are downloaded on first use; a server
that has neither (offline, or never online) starts the form on the ConSE encoder and the demo's photographs, as
`neuron-atlas demo` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dissect_core.config import DEFAULT_CLIP, DEFAULT_OFFLINE_ENCODER
from dissect_core.names import CIFAR100_PROBE

#: The name `neuron-atlas demo` catalogues its photographs under, and the form's offline default probe set.
DEMO_PROBE_SET = "demo-photos"


def cifar100_present(data_dir: Path) -> bool:
    """Return whether CIFAR-100 is already materialised under the data folder (so it needs no download)."""
    return (data_dir / CIFAR100_PROBE / ".complete").exists()


def open_clip_weights_cached(encoder: str) -> bool:
    """Return whether an open_clip `ARCH:TAG` encoder's weights are in the local Hugging Face cache."""
    arch, _, tag = encoder.partition(":")
    try:
        import open_clip
        from huggingface_hub import try_to_load_from_cache

        config = open_clip.get_pretrained_cfg(arch, tag)
        repo = str(config.get("hf_hub", "")).strip("/")
        if not repo:
            return False
        return any(
            isinstance(try_to_load_from_cache(repo, name), str)
            for name in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
        )
    except Exception:  # no open_clip, no hub client, an unknown name: not known to be cached
        return False


def default_probe(offered: Sequence[str], data_dir: Path) -> str:
    """Return the probe set the form starts on: CIFAR-100 when present, else the demo's photographs if offered."""
    if CIFAR100_PROBE in offered and cifar100_present(data_dir):
        return CIFAR100_PROBE
    if DEMO_PROBE_SET in offered:
        return DEMO_PROBE_SET
    return CIFAR100_PROBE if CIFAR100_PROBE in offered or not offered else offered[0]


def default_encoder(offered: Sequence[str]) -> str:
    """Return the encoder the form starts on: the paper's CLIP when its weights are cached, else offline ConSE."""
    if DEFAULT_CLIP in offered and open_clip_weights_cached(DEFAULT_CLIP):
        return DEFAULT_CLIP
    if DEFAULT_OFFLINE_ENCODER in offered:
        return DEFAULT_OFFLINE_ENCODER
    return DEFAULT_CLIP if DEFAULT_CLIP in offered or not offered else offered[0]
