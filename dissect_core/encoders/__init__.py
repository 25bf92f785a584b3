"""Image–text encoders behind one protocol: open_clip (`ARCH:PRETRAINED`) and ConSE (`conse:…`)."""

from __future__ import annotations

import torch

from dissect_core.encoders.base import ImageTextEncoder

CONSE_PREFIX = "conse:"


def load_encoder(spec: str, device: torch.device | str = "cpu") -> ImageTextEncoder:
    """Return the encoder named by `spec`: `conse:CLASSIFIER+TEXT` or open_clip's `ARCH:PRETRAINED`."""
    device = torch.device(device)
    if spec.startswith(CONSE_PREFIX):
        from dissect_core.encoders.conse import ConSEEncoder

        return ConSEEncoder.from_spec(spec, device=device)
    from dissect_core.encoders.open_clip_encoder import OpenClipEncoder

    return OpenClipEncoder(spec, device=device)


__all__ = ["CONSE_PREFIX", "ImageTextEncoder", "load_encoder"]
