"""Concept sets by name (`20k`, `imagenet`, `cifar100`) or file, cleaned so indices never shift."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dissect_core.errors import DissectError

BUILT_IN_CONCEPT_SETS = ("20k", "imagenet", "cifar100")

CIFAR100_CLASSES = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
]


@dataclass
class ConceptSet:
    """An ordered, cleaned list of concepts; its id is the hash of the cleaned text."""

    name: str
    concepts: list[str]
    content_hash: str = field(init=False)

    def __post_init__(self) -> None:
        self.content_hash = hashlib.sha256("\n".join(self.concepts).encode()).hexdigest()

    def __len__(self) -> int:
        return len(self.concepts)


def clean_concepts(lines: Iterable[str]) -> list[str]:
    """Return the concepts with whitespace collapsed, blanks and exact duplicates dropped, order kept.

    The cleaned list is the one that is embedded and the one labels index into, so a blank line or a
    duplicate in a file can never shift a label onto the wrong word.
    """
    seen: set[str] = set()
    cleaned = []
    for line in lines:
        concept = " ".join(line.split())
        if concept and concept not in seen:
            seen.add(concept)
            cleaned.append(concept)
    return cleaned


def common_english_words(count: int = 20_000) -> list[str]:
    """Return the `count` most frequent alphabetic English words (wordfreq's data, shipped with it)."""
    import wordfreq

    words = [word for word in wordfreq.top_n_list("en", count * 2) if word.isascii() and word.isalpha()]
    return words[:count]


def imagenet_class_names() -> list[str]:
    """Return the 1,000 ImageNet class names as torchvision's weights metadata spells them, in class order."""
    from torchvision.models import ResNet50_Weights

    return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def load_concepts(spec: str) -> ConceptSet:
    """Return the concept set named `spec` (`20k`, `imagenet`, `cifar100`) or read from a text file."""
    if spec == "20k":
        return ConceptSet("20k", clean_concepts(common_english_words()))
    if spec == "imagenet":
        return ConceptSet("imagenet", clean_concepts(imagenet_class_names()))
    if spec == "cifar100":
        return ConceptSet("cifar100", clean_concepts(name.replace("_", " ") for name in CIFAR100_CLASSES))
    path = Path(spec).expanduser()
    if not path.is_file():
        raise DissectError(
            f"concept set {spec!r} is neither a built-in ({', '.join(BUILT_IN_CONCEPT_SETS)}) nor an existing "
            "file; pass one of those names or a text file with one concept per line"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DissectError(f"concept file {path} is not UTF-8 text ({error}); save it as UTF-8") from error
    concepts = clean_concepts(text.splitlines())
    if not concepts:
        raise DissectError(f"concept file {path} holds no concepts; write one concept per line")
    return ConceptSet(path.stem, concepts)
