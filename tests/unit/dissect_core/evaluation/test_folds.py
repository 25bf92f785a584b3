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
