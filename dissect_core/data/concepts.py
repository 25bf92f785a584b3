"""Concept sets by name (`20k`, `20k-clean`, `clip-dissect-20k`, `imagenet`, `cifar100`) or file, cleaned so indices
never shift."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path
from typing import IO

from dissect_core.data.hashing import file_sha256
from dissect_core.errors import DissectError

#: wordfreq's 20,000 most frequent English words, shipped with wordfreq; `20k` is its short name.
WORDFREQ_20K = "wordfreq-20k"
#: The CLIP-Dissect paper's 20k list. Its repository has no licence, so it is downloaded, never shipped.
CLIP_DISSECT_20K = "clip-dissect-20k"
#: `20k` without generic and function words, abbreviations and inflections (see dissect_core.data.vocabulary).
CLEAN_20K = "20k-clean"
BUILT_IN_CONCEPT_SETS = ("20k", WORDFREQ_20K, CLEAN_20K, CLIP_DISSECT_20K, "imagenet", "cifar100")
CLIP_DISSECT_20K_URL = (
    "https://raw.githubusercontent.com/Trustworthy-ML-Lab/CLIP-dissect/"
    "21e7697feaea3bf7d7bc2d2cc8e4047d5f5fd502/data/20k.txt"
)
CLIP_DISSECT_20K_SHA256 = "4ed6e5336d7760d281f7e72df31827da880c861363e820d8c65666b0f10d9ac0"
#: Opens a URL for reading bytes (urllib's urlopen; a test passes its own).
Opener = Callable[[str], IO[bytes]]

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


def concepts_text(concepts: Iterable[str]) -> str:
    """Return a concept list as it is stored: one concept per line, each line ended by a newline."""
    return "".join(f"{concept}\n" for concept in concepts)


def concept_set_hash(concepts: Iterable[str]) -> str:
    """Return a concept set's id: the sha256 hex digest of its stored text (`concepts_text`), the one rule for it."""
    return hashlib.sha256(concepts_text(concepts).encode()).hexdigest()


@dataclass
class ConceptSet:
    """An ordered, cleaned list of concepts; its id is `concept_set_hash` of them."""

    name: str
    concepts: list[str]
    content_hash: str = field(init=False)

    def __post_init__(self) -> None:
        self.content_hash = concept_set_hash(self.concepts)

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


def _open_url(url: str) -> IO[bytes]:
    """Return the response to a GET of `url`."""
    return urllib.request.urlopen(url, timeout=60)


def fetch_clip_dissect_20k(
    folder: Path, url: str = CLIP_DISSECT_20K_URL, sha256: str = CLIP_DISSECT_20K_SHA256, opener: Opener = _open_url
) -> Path:
    """Return the path of the paper's 20k list under `folder`, downloading it there once and checking its sha256."""
    path = Path(folder) / "concepts" / f"{CLIP_DISSECT_20K}-{sha256[:16]}.txt"
    if path.is_file() and file_sha256(path) == sha256:
        return path
    fix = f"download {url}, check its sha256 is {sha256}, and pass it as --concepts path/to/20k.txt"
    try:
        with opener(url) as response:
            data = response.read()
    except (OSError, HTTPException) as error:  # offline: URLError, timeouts, dropped connections
        raise DissectError(
            f"could not download the CLIP-Dissect paper's concept list ({type(error).__name__}: {error}); go online "
            f"once, or {fix}"
        ) from error
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise DissectError(f"the concept list downloaded from {url} has sha256 {digest}, not the pinned one; {fix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


def read_concept_file(path: Path, name: str) -> ConceptSet:
    """Return the cleaned concepts of a UTF-8 text file holding one concept per line."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DissectError(f"concept file {path} is not UTF-8 text ({error}); save it as UTF-8") from error
    concepts = clean_concepts(text.splitlines())
    if not concepts:
        raise DissectError(f"concept file {path} holds no concepts; write one concept per line")
    return ConceptSet(name, concepts)


def load_concepts(spec: str, cache_dir: Path | None = None) -> ConceptSet:
    """Return the concept set named `spec` (see BUILT_IN_CONCEPT_SETS) or read from a text file.

    `clip-dissect-20k` is downloaded once into `cache_dir` (else the default cache folder).
    """
    if spec in ("20k", WORDFREQ_20K):
        return ConceptSet(spec, clean_concepts(common_english_words()))
    if spec == CLEAN_20K:
        from dissect_core.data.vocabulary import clean_vocabulary

        return ConceptSet(spec, clean_vocabulary(common_english_words()))
    if spec == CLIP_DISSECT_20K:
        from dissect_core.cache_dir import default_cache_dir

        return read_concept_file(fetch_clip_dissect_20k(cache_dir or default_cache_dir()), CLIP_DISSECT_20K)
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
    return read_concept_file(path, path.stem)
