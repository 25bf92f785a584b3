"""Probe image sets: folders of images (or CIFAR-100) or seeded samples of them, content-hash ids, one decode each."""

from __future__ import annotations

import csv
import hashlib
import io
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from dissect_core.cache_dir import default_cache_dir
from dissect_core.data.hashing import file_sha256
from dissect_core.errors import DissectError
from dissect_core.names import CIFAR100_PROBE, DEFAULT_PROBE_SAMPLE_SEED, probe_display_name

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm"})


@dataclass(frozen=True)
class ProbeImage:
    """One probe image: where it is, its sha256 content hash (its id) and an optional label."""

    path: str
    content_hash: str
    label: str | None = None


def probe_set_hash(image_hashes: Iterable[str]) -> str:
    """Return a probe set's id: the sha256 over its images' content hashes, in probe order."""
    digest = hashlib.sha256()
    for image_hash in image_hashes:
        digest.update(image_hash.encode())
    return digest.hexdigest()


@dataclass
class ProbeSet:
    """An ordered set of probe images; its id is the hash of its images' hashes, in order.

    A set that `max_images` drew from a larger folder records the folder's size in `sampled_from` and the seed
    of the draw in `sample_seed`; both are None for a whole folder.
    """

    name: str
    images: list[ProbeImage]
    sampled_from: int | None = None
    sample_seed: int | None = None
    content_hash: str = field(init=False)

    def __post_init__(self) -> None:
        self.content_hash = probe_set_hash(image.content_hash for image in self.images)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def display_name(self) -> str:
        """Return the set's name for people, saying when it is a sample: `cifar10-test (sample of 200 of 10,000)`."""
        return probe_display_name(self.name, len(self), self.sampled_from)


def _read_labels(labels_file: Path) -> dict[str, str]:
    if not labels_file.is_file():
        raise DissectError(f"labels file {labels_file} does not exist; pass an existing CSV of file,label rows")
    with open(labels_file, newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.reader(handle) if row]
    if rows and rows[0][0].strip().lower() in {"file", "path", "image", "filename"}:
        rows = rows[1:]
    return {row[0].strip(): row[1].strip() for row in rows if len(row) >= 2}


def stratified_sample(strata: Sequence[str], n: int, seed: int) -> list[int]:
    """Return the ascending positions of `n` items drawn from `strata` (each item's stratum key), seeded.

    Each stratum gets its proportional share of `n`, rounded by largest remainder (equal remainders favour the
    stratum whose key sorts first); a random choice seeded by `seed` picks that many of the stratum's items.
    The same strata, n and seed always give the same sample.
    """
    if not 0 <= n <= len(strata):
        raise DissectError(f"cannot draw {n} of {len(strata)} items; ask for between 0 and {len(strata)}")
    members: dict[str, list[int]] = {}
    for position, stratum in enumerate(strata):
        members.setdefault(stratum, []).append(position)
    keys = sorted(members)
    shares = {key: n * len(members[key]) // len(strata) for key in keys}
    by_remainder = sorted(keys, key=lambda key: (-(n * len(members[key]) % len(strata)), key))
    for key in by_remainder[: n - sum(shares.values())]:
        shares[key] += 1
    generator = random.Random(seed)
    return sorted(position for key in keys for position in generator.sample(members[key], shares[key]))


def load_probe_folder(
    folder: str | Path,
    labels_file: str | Path | None = None,
    max_images: int | None = None,
    sample_seed: int = DEFAULT_PROBE_SAMPLE_SEED,
) -> ProbeSet:
    """Return the images under `folder` (recursive, sorted by relative path) with their content hashes.

    Labels come from `labels_file` (CSV `file,label`, file relative to the folder or a bare name) when
    given, else from the name of an image's sub-folder. When the folder holds more than `max_images` images,
    the set is a `sample_seed`-seeded sample of `max_images` of them spread over the folder, stratified by
    label when a labels file is given, else by top-level sub-folder; it stays in sorted-path order.
    """
    root = Path(folder).expanduser()
    if not root.exists():
        raise DissectError(f"probe folder {root} does not exist; pass a folder of images or 'cifar100'")
    if not root.is_dir():
        raise DissectError(f"probe {root} is not a folder; pass a folder of images or 'cifar100'")
    paths = sorted(
        (p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    if not paths:
        raise DissectError(
            f"probe folder {root} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}); add images to it"
        )
    labels = _read_labels(Path(labels_file)) if labels_file else {}
    relatives = [path.relative_to(root).as_posix() for path in paths]
    image_labels = []
    for path, relative in zip(paths, relatives, strict=True):
        label = labels.get(relative) or labels.get(path.name)
        if label is None and not labels and path.parent != root:
            label = path.parent.name
        image_labels.append(label)
    sampled_from = None
    if max_images is not None and max_images < len(paths):
        if labels:
            strata = [label or "" for label in image_labels]
        else:  # the top-level sub-folder; images right in the folder form one stratum
            strata = [relative.partition("/")[0] if "/" in relative else "" for relative in relatives]
        keep = stratified_sample(strata, max_images, sample_seed)
        sampled_from = len(paths)
        paths = [paths[position] for position in keep]
        image_labels = [image_labels[position] for position in keep]
    images = [
        ProbeImage(path=str(path), content_hash=file_sha256(path), label=label)
        for path, label in zip(paths, image_labels, strict=True)
    ]
    return ProbeSet(
        name=root.name,
        images=images,
        sampled_from=sampled_from,
        sample_seed=sample_seed if sampled_from is not None else None,
    )


def materialise_cifar100(dest: Path, train: bool = False) -> Path:
    """Download CIFAR-100 with torchvision (needs internet) and write it as a folder of PNGs per class."""
    done_marker = dest / ".complete"
    if done_marker.exists():
        return dest
    from torchvision.datasets import CIFAR100

    try:
        dataset = CIFAR100(root=str(dest / "raw"), train=train, download=True)
    except Exception as error:  # torchvision raises URLError, RuntimeError, ... when offline
        raise DissectError(
            f"could not download CIFAR-100 ({error}); connect to the internet once, or pass a folder of images"
        ) from error
    for index, (image, target) in enumerate(dataset):
        folder = dest / "images" / dataset.classes[target]
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"{index:05d}.png")
    done_marker.touch()
    return dest


def load_probe(
    spec: str,
    labels_file: str | None = None,
    max_images: int | None = None,
    data_dir: Path | None = None,
    sample_seed: int = DEFAULT_PROBE_SAMPLE_SEED,
) -> ProbeSet:
    """Return the probe set named by `spec`: a folder path, or `cifar100` (downloaded once to data_dir).

    `max_images` draws a seeded sample spread over the set (see `load_probe_folder`), for `cifar100` too.
    """
    if spec == CIFAR100_PROBE:
        root = materialise_cifar100((data_dir or default_cache_dir()) / "cifar100")
        probe = load_probe_folder(root / "images", labels_file, max_images, sample_seed)
        probe.name = CIFAR100_PROBE
        return probe
    return load_probe_folder(spec, labels_file, max_images, sample_seed)


def decode_image(path: str) -> Image.Image:
    """Return the image at `path` as RGB, EXIF orientation applied."""
    with open(path, "rb") as handle:
        data = handle.read()
    return ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")


def _centre_crop_box(width: int, height: int, resize: int, crop: int) -> tuple[float, float, float, float]:
    """Return the source region that becomes the centre `crop` square after scaling the shorter side to `resize`."""
    scale = resize / min(width, height)
    side = crop / scale
    left = (width - side) / 2
    top = (height - side) / 2
    return (left, top, left + side, top + side)


def target_view(image: Image.Image, resize: int, crop: int) -> Image.Image:
    """Return the image as the target model sees it: shorter side resized to `resize`, centre `crop` square."""
    box = _centre_crop_box(image.width, image.height, resize, crop)
    return image.resize((crop, crop), Image.Resampling.BICUBIC, box=box)


def load_view(path: str, resize: int, crop: int) -> Image.Image:
    """Return the target-input view of the image at `path` (what crop boxes are relative to)."""
    with Image.open(path) as image:
        if image.format == "JPEG":  # let the JPEG decoder skip detail the view cannot show
            scale = resize / min(image.size)
            image.draft("RGB", (max(1, round(image.width * scale)), max(1, round(image.height * scale))))
        return target_view(ImageOps.exif_transpose(image).convert("RGB"), resize, crop)


class _DecodedImages(torch.utils.data.Dataset):
    """Decodes each image once and applies every transform to that one decode."""

    def __init__(self, paths: Sequence[str], transforms: Sequence[Callable[[Image.Image], Tensor]]) -> None:
        self.paths = list(paths)
        self.transforms = list(transforms)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, bool, list[Tensor]]:
        try:
            image = decode_image(self.paths[index])
            return index, True, [transform(image) for transform in self.transforms]
        except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
            return index, False, []


def _collate(items: list[tuple[int, bool, list[Tensor]]]) -> tuple[list[int], list[int], list[Tensor]]:
    good = [item for item in items if item[1]]
    bad = [item[0] for item in items if not item[1]]
    if not good:
        return [], bad, []
    columns = list(zip(*(item[2] for item in good), strict=True))
    return [item[0] for item in good], bad, [torch.stack(column) for column in columns]


def iter_decoded_batches(
    probe: ProbeSet,
    transforms: Sequence[Callable[[Image.Image], Tensor]],
    batch_size: int,
    num_workers: int = 0,
) -> Iterator[tuple[list[int], list[int], list[Tensor]]]:
    """Yield (good indices, unreadable indices, one stacked tensor per transform) batch by batch."""
    dataset = _DecodedImages([image.path for image in probe.images], transforms)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=_collate, shuffle=False
    )
    yield from loader
