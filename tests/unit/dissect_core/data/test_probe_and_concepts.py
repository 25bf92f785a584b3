"""Probe folders (content-hash ids, labels, unreadable files) and concept sets (index-safe cleaning)."""

from __future__ import annotations

import shutil

import pytest

from dissect_core.data.concepts import clean_concepts, load_concepts
from dissect_core.data.probe import iter_decoded_batches, load_probe_folder, target_view
from dissect_core.errors import DissectError


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
