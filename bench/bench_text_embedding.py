"""Concept embedding at the floor: open_clip's text tower over the full 77-token context against each batch cut to
its longest real tokenisation (`OpenClipEncoder.encode_texts`), on words of the 20k concept set.

    .venv/bin/python -m bench.bench_text_embedding [--words 512] [--template-words 64] [--encoder ViT-B-16:none]

The encoder has random weights (the same compute as the real one, nothing downloaded). Words are drawn at random
(seed 0) from the 20k set, plain and (the first `--template-words` of them) with the prompt template
"a photo of a {}"; each way is timed once after a warm-up batch, and max |Δ| is the largest difference between
the two ways' unit embeddings. The padded side dominates: 163 s for 512 words on 2 busy CPU cores.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Sequence

import torch

from dissect_core.data.concepts import load_concepts
from dissect_core.encoders.open_clip_encoder import OpenClipEncoder, token_lengths

BENCH_ENCODER = "ViT-B-16:none"
TEMPLATE = "a photo of a {}"


def timed(encoder: OpenClipEncoder, texts: Sequence[str], *, cut: bool) -> tuple[float, torch.Tensor]:
    """Return the seconds `encode_texts` takes over the texts, padded or cut, and the embeddings."""
    encoder.cuts_padding = cut
    encoder.encode_texts(list(texts[:8]))  # warm-up: first-call allocations and kernel choices
    if encoder.device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    embeddings = encoder.encode_texts(texts)
    if encoder.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started, embeddings


def row(label: str, encoder: OpenClipEncoder, texts: Sequence[str]) -> str:
    """Return one line of the table: both ways' seconds, the speedup, throughput and max |Δ|."""
    padded_s, padded = timed(encoder, texts, cut=False)
    cut_s, cut = timed(encoder, texts, cut=True)
    mean_tokens = token_lengths(encoder.tokenizer(list(texts))).float().mean().item()
    delta = (padded - cut).abs().max().item()
    return (
        f"| {label} | {len(texts)} | {mean_tokens:.1f} | {padded_s:.2f} | {cut_s:.2f} | {padded_s / cut_s:.1f}x "
        f"| {len(texts) / padded_s:,.0f} → {len(texts) / cut_s:,.0f} | {delta:.1e} |"
    )


def main(argv: list[str] | None = None) -> None:
    """Print the padded-against-cut table for plain and templated concept words."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=512, help="words drawn from the 20k set (default 512)")
    parser.add_argument("--template-words", type=int, default=64, help="of them, templated too (default 64)")
    parser.add_argument("--encoder", default=BENCH_ENCODER, help=f"open_clip ARCH:none spec ({BENCH_ENCODER})")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    words = random.Random(0).sample(list(load_concepts("20k").concepts), args.words)
    encoder = OpenClipEncoder(args.encoder, torch.device(args.device))
    print(f"{args.encoder} on {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| texts | n | mean tokens | s padded (77) | s cut | speedup | concepts/s | max abs Δ |")
    print("|---|---|---|---|---|---|---|---|")
    print(row("20k words", encoder, words))
    if args.template_words:
        print(row(f"'{TEMPLATE}'", encoder, [TEMPLATE.format(word) for word in words[: args.template_words]]))


if __name__ == "__main__":
    main()
