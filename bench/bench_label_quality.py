"""Label-quality benchmark: EfficientNet-Lite0's final classifier on 1,300 real ImageNet validation images.

Neuron k of the classifier is ImageNet class k, so its true label is known. With the ConSE encoder built on
EfficientNet-Lite2 + MiniLM (never on Lite0 itself):
1. concepts = the 1,000 ImageNet class names: top-1 / top-5 accuracy over the classes present in the probe set,
   and the mean rank of the true class;
2. concepts = the 20k common English words: mean cosine, in MiniLM (and mpnet where installed), between the
   label and the true class name.
for each similarity function at the paper's parameters and at a top_k for about two images per class, beside a
random-label baseline. The image embeddings and activations are computed once (cached) and every setting is
scored from them.

For context (not comparable): the paper reports 95.5% top-1 for ResNet-50's final layer with CLIP ViT-B/16 on all
50,000 ImageNet validation images.

Run: .venv/bin/python -m bench.bench_label_quality [--imagenet-dir ../shared/data/imagenet-val-1300]
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import torch

from dissect_core.config import DissectConfig
from dissect_core.data.concepts import load_concepts
from dissect_core.encoders import load_encoder
from dissect_core.pipeline import run_dissection
from dissect_core.similarity.functions import adaptive_top_k, get_similarity

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-val-1300"
ENCODER = "conse:efficientnet_lite2+minilm"


def settings_table(n_images: int) -> list[tuple[str, dict]]:
    """Return (similarity, params) rows: the paper's parameters, small top_k values, and the adaptive default."""
    rows: list[tuple[str, dict]] = []
    for top_k in (100, 50, 20, 10, 5, 3, 2, 1):
        rows.append(("soft_wpmi", {"top_k": top_k}))
    for top_k in (28, 10, 5, 2):
        rows.append(("wpmi", {"top_k": top_k}))
    rows.append(("cos_similarity", {}))
    rows.append(("cos_similarity_cubed", {}))
    rows.append(("rank_reorder", {"top_fraction": 0.05}))
    rows.append(("rank_reorder", {"top_fraction": round(5 / n_images, 5)}))
    return rows


def accuracy_metrics(scores: torch.Tensor, present: torch.Tensor) -> tuple[float, float, float]:
    """Return top-1, top-5 (as %) and the mean rank (1 = best) of concept k for neuron k, over present classes."""
    rows = scores[present]
    true_scores = rows.gather(1, present.unsqueeze(1))
    ranks = (rows > true_scores).sum(1) + 1
    return (
        (ranks == 1).float().mean().item() * 100,
        (ranks <= 5).float().mean().item() * 100,
        ranks.float().mean().item(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--imagenet-dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "neuron-atlas" / "bench")
    args = parser.parse_args()
    if not (args.imagenet_dir / "labels.csv").is_file():
        raise SystemExit(f"{args.imagenet_dir}/labels.csv not found; see ../shared/README.md")

    with open(args.imagenet_dir / "labels.csv", newline="") as handle:
        labels = {row["file"]: int(row["class_index"]) for row in csv.DictReader(handle)}
    present = torch.tensor(sorted(set(labels.values())))
    start = time.perf_counter()
    config = DissectConfig(
        model="efficientnet_lite0", layers=("classifier",), probe=str(args.imagenet_dir / "images"),
        concepts="imagenet", encoder=ENCODER, similarity="soft_wpmi",
    )  # fmt: skip
    result = run_dissection(config, cache_dir=args.cache_dir)
    activations = result.layers[0].activations
    n_images = len(result.image_ids)
    encoder = load_encoder(ENCODER)
    class_names = load_concepts("imagenet").concepts
    assert len(class_names) == 1000, "the ImageNet concept set must keep all 1,000 names in class order"
    words = load_concepts("20k").concepts
    image_embeddings = result.image_embeddings
    cos_classes = image_embeddings @ encoder.encode_texts(class_names).T
    cos_words = image_embeddings @ encoder.encode_texts(words).T
    prepared = time.perf_counter() - start

    from dissect_core.encoders.text import load_text_encoder

    judges = {"minilm": load_text_encoder("minilm", torch.device("cpu"))}
    try:
        judges["mpnet"] = load_text_encoder("mpnet", torch.device("cpu"))
    except Exception as error:  # mpnet ships as optional registry packages
        print(f"(mpnet judge unavailable: {error})")
    true_names = [class_names[k] for k in present.tolist()]
    true_embeddings = {name: judge.encode(true_names) for name, judge in judges.items()}

    def word_similarity(scores: torch.Tensor) -> dict[str, float]:
        label_names = [words[i] for i in scores[present].argmax(1).tolist()]
        return {
            name: (judge.encode(label_names) * true_embeddings[name]).sum(1).mean().item()
            for name, judge in judges.items()
        }

    print(f"EfficientNet-Lite0 classifier, {n_images} ImageNet val images of {len(present)} classes, encoder {ENCODER}")
    print(f"(embeddings and activations prepared in {prepared:.1f} s; adaptive default soft_wpmi top_k = "
          f"{adaptive_top_k(100, n_images)})")  # fmt: skip
    judge_names = list(judges)
    header = f"{'similarity':<22}{'params':<26}{'top-1 %':>8}{'top-5 %':>8}{'mean rank':>10}"
    header += "".join(f"{'cos(' + name + ')':>14}" for name in judge_names) + f"{'seconds':>9}"
    print(header)
    print("-" * len(header))
    for name, params in settings_table(n_images):
        tick = time.perf_counter()
        function = get_similarity(name)
        top1, top5, rank = accuracy_metrics(function(cos_classes, activations, **params), present)
        similarities = word_similarity(function(cos_words, activations, **params))
        elapsed = time.perf_counter() - tick
        shown = ", ".join(f"{key}={value}" for key, value in params.items()) or "paper defaults"
        line = f"{name:<22}{shown:<26}{top1:>8.1f}{top5:>8.1f}{rank:>10.1f}"
        line += "".join(f"{similarities[judge]:>14.3f}" for judge in judge_names) + f"{elapsed:>9.1f}"
        print(line)
    generator = torch.Generator().manual_seed(0)
    random_scores = torch.rand(1000, 1000, generator=generator)
    top1, top5, rank = accuracy_metrics(random_scores, present)
    random_words = torch.rand(1000, len(words), generator=generator)
    similarities = word_similarity(random_words)
    line = f"{'random labels':<22}{'':<26}{top1:>8.1f}{top5:>8.1f}{rank:>10.1f}"
    print(line + "".join(f"{similarities[judge]:>14.3f}" for judge in judge_names))


if __name__ == "__main__":
    main()
