"""Probe folders (content-hash ids, labels, unreadable files, seeded samples) and concept sets (index-safe cleaning)."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dissect_core.data import probe as probe_data
from dissect_core.data.concepts import clean_concepts, load_concepts
from dissect_core.data.probe import (
    iter_decoded_batches,
    load_probe_folder,
    probe_set_hash,
    stratified_sample,
    target_view,
)
from dissect_core.errors import DissectError
from dissect_core.names import DEFAULT_PROBE_SAMPLE_SEED, probe_display_name

CLASSES = [f"class_{number}" for number in range(10)]


def write_images(folder: Path, names: list[str], seed: int) -> None:
    """Write a tiny distinct PNG for each name under `folder`."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.fromarray((rng.random((4, 4, 3)) * 255).astype("uint8")).save(folder / name)


@pytest.fixture
def cifar_like(tmp_path: Path) -> Path:
    """A folder of 10 class sub-folders of 30 tiny images each, like CIFAR-10's test folder."""
    root = tmp_path / "cifar-like"
    for number, name in enumerate(CLASSES):
        write_images(root / name, [f"{index:04d}.png" for index in range(30)], seed=number)
    return root


def test_probe_ids_are_content_hashes_stable_across_copies(probe_folder, tmp_path):
    first = load_probe_folder(probe_folder)
    copy = tmp_path / "copy"
    shutil.copytree(probe_folder, copy)
    second = load_probe_folder(copy)
    assert len(first) == 24
    assert [image.content_hash for image in first.images] == [image.content_hash for image in second.images]
    assert first.content_hash == second.content_hash
    assert {image.label for image in first.images} == {"dots", "stripes"}


def test_changed_image_changes_the_probe_hash(probe_folder):
    before = load_probe_folder(probe_folder).content_hash
    victim = sorted(probe_folder.rglob("*.png"))[0]
    victim.write_bytes(victim.read_bytes() + b"\0")
    assert load_probe_folder(probe_folder).content_hash != before


def test_labels_file_overrides_folder_names(probe_folder, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label\ndots/image_000.png,zero\n")
    probe = load_probe_folder(probe_folder, labels_file=labels)
    assert probe.images[0].label == "zero"


def test_unreadable_images_are_skipped_and_reported(probe_folder):
    (probe_folder / "dots" / "broken.jpg").write_bytes(b"not a jpeg")
    probe = load_probe_folder(probe_folder)
    skipped, kept = [], []
    for good, bad, tensors in iter_decoded_batches(probe, [lambda image: __import__("torch").zeros(1)], 8):
        kept += good
        skipped += bad
        assert len(tensors) == (1 if good else 0)
    assert len(kept) == 24 and len(skipped) == 1
    assert probe.images[skipped[0]].path.endswith("broken.jpg")


@pytest.mark.parametrize(
    ("make", "message"),
    [(lambda p: p / "missing", "does not exist"), (lambda p: p, "holds no images")],
)
def test_bad_probe_folders_say_what_to_do(tmp_path, make, message):
    with pytest.raises(DissectError, match=message):
        load_probe_folder(make(tmp_path))


def test_target_view_is_a_centre_square():
    from PIL import Image

    view = target_view(Image.new("RGB", (400, 200)), resize=256, crop=224)
    assert view.size == (224, 224)


def test_blank_lines_and_duplicates_never_shift_indices(concept_file):
    concepts = load_concepts(str(concept_file))
    assert concepts.concepts == ["cat", "dog", "striped", "car", "sky"]
    assert clean_concepts(["a  b", "", "a b", " c "]) == ["a b", "c"]


def test_built_in_concept_sets():
    words = load_concepts("20k")
    assert len(words) == 20_000 and words.concepts[:3] == ["the", "to", "and"]
    assert all(word.isalpha() for word in words.concepts)
    imagenet = load_concepts("imagenet")
    assert len(imagenet) == 1000 and imagenet.concepts[0] == "tench"
    assert len(load_concepts("cifar100")) == 100


def test_missing_or_empty_concept_file(tmp_path):
    with pytest.raises(DissectError, match="one concept per line"):
        load_concepts(str(tmp_path / "nope.txt"))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    with pytest.raises(DissectError, match="holds no concepts"):
        load_concepts(str(empty))


def test_max_images_draws_the_same_share_of_every_class(cifar_like):
    sample = load_probe_folder(cifar_like, max_images=50)
    assert Counter(image.label for image in sample.images) == dict.fromkeys(CLASSES, 5)
    assert len(sample) == 50 and sample.sampled_from == 300 and sample.sample_seed == DEFAULT_PROBE_SAMPLE_SEED
    paths = [image.path for image in sample.images]
    assert paths == sorted(paths)  # probe order, so image indices stay stable
    first_five = {str(cifar_like / name / f"{index:04d}.png") for name in CLASSES for index in range(5)}
    assert set(paths) != first_five  # a random choice within each class, not its first files
    assert sample.content_hash == probe_set_hash(image.content_hash for image in sample.images)
    assert sample.content_hash != load_probe_folder(cifar_like).content_hash


def test_the_sample_is_fixed_by_its_seed(cifar_like):
    first = load_probe_folder(cifar_like, max_images=50)
    again = load_probe_folder(cifar_like, max_images=50)
    other = load_probe_folder(cifar_like, max_images=50, sample_seed=1)
    assert [image.path for image in first.images] == [image.path for image in again.images]
    assert first.content_hash == again.content_hash
    assert other.sample_seed == 1 and other.content_hash != first.content_hash


def test_shares_are_rounded_by_largest_remainder():
    # Shares of 5 over 5/3/2 items are 2.5, 1.5 and 1.0: a and b tie on remainder, a sorts first.
    chosen = stratified_sample(["a"] * 5 + ["b"] * 3 + ["c"] * 2, 5, seed=0)
    assert Counter("a" if i < 5 else "b" if i < 8 else "c" for i in chosen) == {"a": 3, "b": 1, "c": 1}
    assert chosen == sorted(chosen) and len(set(chosen)) == 5
    assert stratified_sample(["x"] * 4, 4, seed=3) == [0, 1, 2, 3]
    with pytest.raises(DissectError, match="ask for between 0 and 4"):
        stratified_sample(["x"] * 4, 5, seed=0)


def test_a_labels_file_stratifies_the_sample(tmp_path):
    root = tmp_path / "flat"
    names = [f"{index:02d}.png" for index in range(30)]
    write_images(root, names, seed=0)
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "file,label\n" + "".join(f"{name},{'cat' if i < 20 else 'dog'}\n" for i, name in enumerate(names))
    )
    sample = load_probe_folder(root, labels_file=labels, max_images=9)
    assert Counter(image.label for image in sample.images) == {"cat": 6, "dog": 3}
    assert sample.sampled_from == 30


def test_max_images_at_least_the_folder_keeps_the_whole_folder(cifar_like):
    whole = load_probe_folder(cifar_like)
    for max_images in (300, 1000):
        probe = load_probe_folder(cifar_like, max_images=max_images)
        assert probe.sampled_from is None and probe.sample_seed is None
        assert probe.content_hash == whole.content_hash


def test_built_in_cifar100_goes_through_the_sampler(cifar_like, monkeypatch, tmp_path):
    monkeypatch.setattr(probe_data, "materialise_cifar100", lambda dest: cifar_like.parent)
    (cifar_like.parent / "images").symlink_to(cifar_like)
    probe = probe_data.load_probe("cifar100", max_images=20, data_dir=tmp_path)
    assert probe.name == "cifar100" and probe.sampled_from == 300
    assert Counter(image.label for image in probe.images) == dict.fromkeys(CLASSES, 2)


def test_display_names_say_when_a_set_is_a_sample(cifar_like):
    assert probe_display_name("cifar10-test", 200, 10_000) == "cifar10-test (sample of 200 of 10,000)"
    assert probe_display_name("cifar10-test", 10_000) == "cifar10-test (10,000 images)"
    assert probe_display_name("one", 1) == "one (1 image)"
    assert load_probe_folder(cifar_like, max_images=50).display_name == "cifar-like (sample of 50 of 300)"
