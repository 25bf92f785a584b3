"""The paper's weight finding (CLIP-Dissect Section 4.1, Fig. 5) replayed on EfficientNet-Lite0, trained and randomly
initialised, over the 1,300 shared ImageNet validation images with the ConSE encoder and the 20k concepts, and the
cost of the connections stage (weights, attributions, the finding) as a share of each cold run.

    .venv/bin/python -m bench.bench_connections [--images 1300]

Layers `blocks.5, conv_head, classifier`: conv_head → classifier is joined by weights (bn2 folded in); blocks.5 →
conv_head and blocks.5 → classifier are attributions. Both networks are scored against the same ImageNet class
names (a random network's weights define none, so the trained network's are lent to it). Prints, no timed asserts.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

SHARED_IMAGENET = Path(__file__).resolve().parents[2] / "shared" / "data" / "imagenet-val-1300"
LAYERS = ("blocks.5", "conv_head", "classifier")
ENCODER = "conse:efficientnet_lite2+minilm"
#: The paper's ResNet-50 layer4 → fc numbers: r(weights, cosine), r(best score, top weight), top-10 and all-pairs
#: mean cosine (Fig. 5; its cosines are CLIP text cosines, its r uses mpnet).
PAPER = {"pearson_r": 0.120, "top_unit_r": 0.386, "top10_mean": "0.74-0.95 (each)", "all_pairs_mean": 0.644}


def run(weights: str | None, n_images: int) -> dict:
    """Return one cold dissection's weight finding, top-10 cosine, connection kinds and stage seconds."""
    from dissect_core.analysis.weight_agreement import label_class_cosines, top_weight_mean_similarity
    from dissect_core.config import DissectConfig
    from dissect_core.models.class_names import weights_class_names
    from dissect_core.pipeline import run_dissection

    names = weights_class_names("efficientnet_lite0", None)
    config = DissectConfig(
        model="efficientnet_lite0", weights=weights, layers=LAYERS, probe=str(SHARED_IMAGENET / "images"),
        concepts="20k", encoder=ENCODER, max_images=n_images,
        class_names=tuple(names or ()) or None,  # the same class names for both networks
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        result = run_dissection(config, cache_dir=Path(cache))
        wall = time.perf_counter() - start
    finding = result.weight_concept_agreement[0]
    pair = next(c for c in result.connections if c.kind == "weight" and c.to_layer == "classifier")
    # The top-10 mean cosine, computed as the finding does (the curve holds k = 4, 8, 16, ...).
    import torch

    from dissect_core.encoders import load_encoder

    encoder = load_encoder(ENCODER, torch.device("cpu"))
    concept_index = {concept: index for index, concept in enumerate(result.concepts)}
    labels = [result.concepts[concept_index[n.label]] for n in result.layer(pair.from_layer).neurons]
    similarity = label_class_cosines(encoder.encode_texts(list(names or [])).float(), encoder.encode_texts(labels))
    return {
        "finding": finding,
        "top10": top_weight_mean_similarity(pair.weights, similarity, 10),
        "connections": [(c.from_layer, c.to_layer, c.kind, c.n_images) for c in result.connections],
        "timings": result.record.facts.timings_s,
        "wall": wall,
    }


def main() -> None:
    """Run both networks cold and print the finding beside the paper's, and the connections stage's cost."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=1300)
    args = parser.parse_args()
    results = {}
    for name, weights in (("trained", None), ("random", "none")):
        results[name] = run(weights, args.images)
        finding = results[name]["finding"]
        print(f"{name}: r={finding.pearson_r:.3f} p={finding.p_value:.3f} top_unit_r={finding.top_unit_r:.3f} "
              f"top10={results[name]['top10']:.3f} all={finding.all_pairs_mean:.3f}", flush=True)  # fmt: skip
    print(f"EfficientNet-Lite0 conv_head → classifier, {args.images} images, {ENCODER}, 20k concepts")
    print(f"{'statistic':<28}{'paper (RN50)':>18}{'trained':>12}{'random':>12}")
    rows = [
        ("r(weight, cosine)", PAPER["pearson_r"], "pearson_r"),
        ("r(label score, top weight)", PAPER["top_unit_r"], "top_unit_r"),
        ("all-pairs mean cosine", PAPER["all_pairs_mean"], "all_pairs_mean"),
        ("p (200 row shuffles)", "-", "p_value"),
    ]
    for title, paper, field in rows:
        values = [getattr(results[name]["finding"], field) for name in ("trained", "random")]
        print(f"{title:<28}{paper!s:>18}{values[0]:>12.3f}{values[1]:>12.3f}")
    print(f"{'top-10 mean cosine':<28}{PAPER['top10_mean']:>18}{results['trained']['top10']:>12.3f}"
          f"{results['random']['top10']:>12.3f}")  # fmt: skip
    for k, _ in results["trained"]["finding"].curve[:6]:
        values = [dict(results[name]["finding"].curve)[k] for name in ("trained", "random")]
        print(f"{f'top-{k} mean cosine':<28}{'-':>18}{values[0]:>12.3f}{values[1]:>12.3f}")
    for name, result in results.items():
        timings = result["timings"]
        total = sum(timings.values())
        share = timings.get("connections", 0.0) / total
        print(f"{name}: cold run {total:.1f} s (wall {result['wall']:.1f} s); connections stage "
              f"{timings.get('connections', 0.0):.1f} s = {share:.1%}; pairs {result['connections']}")  # fmt: skip


if __name__ == "__main__":
    main()
