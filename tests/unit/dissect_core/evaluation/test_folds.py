import pytest
import torch

from dissect_core.errors import DissectError
from dissect_core.evaluation.folds import fold_of_images


def test_folds_follow_content_not_order():
    ids = [f"{i:064x}" for i in range(103)]
    folds = fold_of_images(ids, 5)
    reordered = list(reversed(ids))
    again = fold_of_images(reordered, 5)
    assert {i: int(f) for i, f in zip(ids, folds, strict=True)} == {
        i: int(f) for i, f in zip(reordered, again, strict=True)
    }
    assert torch.equal(folds, fold_of_images(ids, 5))


def test_folds_are_balanced_and_use_every_fold():
    counts = torch.bincount(fold_of_images([str(i) for i in range(103)], 5), minlength=5)
    assert counts.tolist() in ([21, 21, 21, 20, 20], sorted([21, 21, 21, 20, 20], reverse=True))
    assert int(counts.max() - counts.min()) <= 1


def test_folds_are_not_the_alphabetical_order():
    folds = fold_of_images([f"{i:03d}" for i in range(50)], 5)
    assert not torch.equal(folds, torch.arange(50) % 5)


@pytest.mark.parametrize(("n_images", "n_folds", "message"), [(9, 5, "too few"), (20, 1, "at least 2")])
def test_unusable_folds_are_refused(n_images, n_folds, message):
    with pytest.raises(DissectError, match=message):
        fold_of_images([str(i) for i in range(n_images)], n_folds)


def _labelled(n_per_class: dict[str, int], n_unlabelled: int = 0) -> tuple[list[str], list[str | None]]:
    """Return image ids and labels: `n_per_class[c]` images of each class c, then `n_unlabelled` without a label."""
    labels: list[str | None] = [c for c, n in n_per_class.items() for _ in range(n)] + [None] * n_unlabelled
    return [f"{i:064x}" for i in range(len(labels))], labels


def test_with_labels_a_class_spreads_over_as_many_folds_as_it_can():
    ids, labels = _labelled({f"class {c}": 3 for c in range(30)} | {"big": 7}, n_unlabelled=11)
    folds = fold_of_images(ids, 5, labels)
    for name in {label for label in labels if label is not None}:
        members = folds[[label == name for label in labels]]
        per_fold = torch.bincount(members, minlength=5)
        if len(members) == 3:
            assert int(per_fold.max()) == 1, name  # 3 images, 3 folds: each fold trains on 2 of them
        else:
            assert int(per_fold.max()) == 2 and int((per_fold > 0).sum()) == 5
    counts = torch.bincount(folds, minlength=5)
    assert int(counts.max() - counts.min()) <= 1


def test_hashed_folds_can_put_two_of_a_class_in_one_fold():
    ids, _ = _labelled({f"class {c}": 3 for c in range(30)})
    unstratified = fold_of_images(ids, 5)
    assert any(
        int(torch.bincount(unstratified[3 * c : 3 * c + 3], minlength=5).max()) > 1 for c in range(30)
    )  # the case stratifying fixes, so the test above can fail


def test_stratified_folds_follow_content_not_order():
    ids, labels = _labelled({"a": 4, "b": 9, "c": 3}, n_unlabelled=6)
    folds = fold_of_images(ids, 5, labels)
    reordered = list(range(len(ids)))[::-1]
    again = fold_of_images([ids[i] for i in reordered], 5, [labels[i] for i in reordered])
    assert all(int(again[position]) == int(folds[i]) for position, i in enumerate(reordered))
    assert not torch.equal(folds, fold_of_images(ids, 5))  # the labels changed the deal
    assert torch.equal(fold_of_images(ids, 5, [None] * len(ids)), fold_of_images(ids, 5))


def test_labels_must_match_the_images():
    with pytest.raises(DissectError, match="one label"):
        fold_of_images([str(i) for i in range(20)], 5, ["a"] * 19)
