"""open_clip image–text encoders: `ARCH:PRETRAINED` (downloaded when online), `ARCH:/path/to/weights`, or
`ARCH:none` / `ARCH:none@SEED`, random weights drawn from a seed (0 for plain `none`) for tests and plumbing
checks, never for labels.

Texts are encoded at the floor: open_clip pads every text to the model's full context (77 tokens) though a concept
word needs a handful, so each batch (of texts sorted by token count) runs the text tower on its longest real
tokenisation alone. Under the causal mask a position sees only those before it, so the padding cut off never
touched the end-of-text features: the embeddings are the padded ones (tests/unit/dissect_core/encoders).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

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
        self.cuts_padding = can_cut_padding(self.model, self.tokenizer)
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
        if not texts:
            return torch.empty(0, 0)
        tokens = self.tokenizer(list(texts))
        if not self.cuts_padding:
            return torch.cat([self._encode_tokens(batch) for batch in tokens.split(batch_size)])
        lengths = token_lengths(tokens)
        order = torch.argsort(lengths, stable=True)  # shortest first: each batch is cut to its own longest text
        chunks = [self._encode_tokens(tokens[batch, : int(lengths[batch].max())]) for batch in order.split(batch_size)]
        return torch.cat(chunks)[torch.argsort(order)]

    def _encode_tokens(self, tokens: Tensor) -> Tensor:
        """Return the unit embeddings [B, D] (float32, on the CPU) of one batch of token ids."""
        with self._autocast():
            if self.cuts_padding:
                features = encode_cut_tokens(self.model, tokens.to(self.device))
            else:
                features = self.model.encode_text(tokens.to(self.device))
        return torch.nn.functional.normalize(features.float(), dim=1).cpu()


def can_cut_padding(model: torch.nn.Module, tokenizer: object) -> bool:
    """Return whether the text tower may run on tokens cut after the longest real text of a batch.

    Only open_clip's `CLIP` with a causal mask, pooling at a token no later than the end-of-text one, and the CLIP
    tokenizer (zeros after the end-of-text token, which has the highest id): then no kept position ever sees the
    padding. Everything else keeps the padded `encode_text`: CustomTextCLIP (SigLIP, HF towers) and CoCa run their
    own text module (HF models mask padding their own way; SigLIP pools the last position, so the padding is what
    it reads), and a tower without the causal mask lets every position attend to the padding.
    """
    import open_clip
    from open_clip.tokenizer import SimpleTokenizer

    return (
        isinstance(model, open_clip.CLIP)
        and getattr(model, "attn_mask", None) is not None
        and model.text_pool_type in ("argmax", "eos", "first")
        and isinstance(tokenizer, SimpleTokenizer)
    )


def token_lengths(tokens: Tensor) -> Tensor:
    """Return each row's real length: one past its last non-padding (non-zero) id, the end-of-text token."""
    positions = torch.arange(1, tokens.shape[1] + 1).expand_as(tokens)
    return torch.where(tokens != 0, positions, 0).amax(dim=1)


def encode_cut_tokens(model: Any, tokens: Tensor) -> Tensor:
    """Return `model.encode_text(tokens)` for tokens cut to L ≤ the context: the positional embedding and the
    causal mask cut to L and L × L, the rest as open_clip 3's `CLIP.encode_text` does it."""
    from open_clip.transformer import text_global_pool

    length = tokens.shape[1]
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast_dtype)
    x = x + model.positional_embedding[:length].to(cast_dtype)
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = model.ln_final(x)
    x = text_global_pool(x, tokens, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None))
    if model.text_projection is not None:
        if isinstance(model.text_projection, torch.nn.Linear):
            x = model.text_projection(x)
        else:
            x = x @ model.text_projection
    return x
