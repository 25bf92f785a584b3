"""Shared inputs of the issue-24 benchmarks: the shared ImageNet probe set, its labels and its ConSE embeddings.

`bench_planted_neurons` and `bench_verdicts` both read the 1,300 labelled ImageNet validation images of
`../shared/data/imagenet-val-1300`, their image embeddings under the offline ConSE encoder and the 20k concept
vocabulary's text embeddings, so one cache directory serves both and reruns skip every forward pass.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from dissect_core.config import DissectConfig
from dissect_core.data.cache import TensorCache, cache_key
from dissect_core.data.concepts import load_concepts
from dissect_core.encoders import load_encoder
from dissect_core.pipeline import run_dissection

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
IMAGENET_DIR = SHARED_DATA / "imagenet-val-1300"
CIFAR10_DIR = SHARED_DATA / "cifar10-test"
DEFAULT_CACHE = Path("/tmp/neuron-atlas-bench-24")
ENCODER = "conse:efficientnet_lite2+minilm"


@dataclass(frozen=True)
class ProbeEmbeddings:
    """The probe images in the pipeline's order, their class, their embeddings and the vocabulary's."""

    image_ids: list[str]  # content hashes, as the pipeline names images (folds are dealt from them)
    image_classes: Tensor  # long [N], ImageNet class index of each image
    class_labels: list[str]  # per class index, its names as classes.txt gives them: `tench, Tinca tinca`
    image_embeddings: Tensor  # [N, D]
    concepts: list[str]
    text_embeddings: Tensor  # [C, D]

    def image_labels(self) -> list[str | None]:
        """Return each image's class names, as a labels file naming classes would give them to the pipeline."""
        return [self.class_labels[k] for k in self.image_classes.tolist()]


def require_shared(folder: Path) -> None:
    """Exit with the fix when a shared data folder is missing."""
    if not folder.is_dir():
        raise SystemExit(f"{folder} not found: this benchmark needs ../shared/data (see ../shared/README.md)")


def class_labels(imagenet_dir: Path = IMAGENET_DIR) -> list[str]:
    """Return per ImageNet class index its names (`tench, Tinca tinca`), from the probe set's classes.txt."""
    lines = (imagenet_dir / "classes.txt").read_text().splitlines()
    return [line.split(" ", 1)[1] for line in lines]


def image_classes_by_file(imagenet_dir: Path = IMAGENET_DIR) -> dict[str, int]:
    """Return each probe image's ImageNet class index by file name, from labels.csv."""
    with open(imagenet_dir / "labels.csv", newline="") as handle:
        return {row["file"]: int(row["class_index"]) for row in csv.DictReader(handle)}


def named_labels_file(folder: Path, imagenet_dir: Path = IMAGENET_DIR) -> Path:
    """Write a `file,label` CSV naming each image's class by all its names, as the pipeline's labels_file."""
    names = class_labels(imagenet_dir)
    path = folder / "labels_named.csv"
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["file", "label"])
        for file, index in image_classes_by_file(imagenet_dir).items():
            writer.writerow([file, names[index]])
    return path


def concept_embeddings(concepts: str, cache_dir: Path) -> tuple[list[str], Tensor]:
    """Return a concept set's concepts and their ENCODER text embeddings [C, D], cached in `cache_dir`."""
    concept_set = load_concepts(concepts)
    cache = TensorCache(cache_dir)
    key = cache_key("bench-text", ENCODER, concept_set.content_hash)
    cached = cache.load("bench-text", key)
    if cached is None:
        cached = {"embeddings": load_encoder(ENCODER).encode_texts(concept_set.concepts).float().cpu()}
        cache.save("bench-text", key, cached)
    return list(concept_set.concepts), cached["embeddings"]


def image_labels_of(image_paths: list[str], imagenet_dir: Path = IMAGENET_DIR) -> list[str | None]:
    """Return each probe image's class names (`tench, Tinca tinca`), as a labels file naming classes gives them."""
    names = class_labels(imagenet_dir)
    by_file = image_classes_by_file(imagenet_dir)
    return [names[by_file[Path(path).name]] for path in image_paths]


def probe_embeddings(cache_dir: Path, concepts: str = "20k", imagenet_dir: Path = IMAGENET_DIR) -> ProbeEmbeddings:
    """Return the ImageNet probe set's embeddings under ENCODER and the concept set's, cached in `cache_dir`.

    The image embeddings come from a dissection of EfficientNet-Lite0's classifier without evaluation (its
    probe pass is cached and shared with `bench_verdicts`); the text embeddings from the encoder, cached here.
    """
    require_shared(imagenet_dir)
    config = DissectConfig(
        model="efficientnet_lite0", layers=("classifier",), probe=str(imagenet_dir / "images"),
        concepts=concepts, encoder=ENCODER, n_folds=0,
    )  # fmt: skip
    result = run_dissection(config, cache_dir=cache_dir)
    by_file = image_classes_by_file(imagenet_dir)
    classes = torch.tensor([by_file[Path(path).name] for path in result.image_paths])
    concept_names, text_embeddings = concept_embeddings(concepts, cache_dir)
    return ProbeEmbeddings(
        image_ids=list(result.image_ids),
        image_classes=classes,
        class_labels=class_labels(imagenet_dir),
        image_embeddings=result.image_embeddings.float(),
        concepts=concept_names,
        text_embeddings=text_embeddings,
    )
