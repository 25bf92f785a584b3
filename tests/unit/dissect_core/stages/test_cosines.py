"""The driver's cosines from unit image embeddings normalised in parts (the Ray executor maps them from a file):
the same matrix, bit for bit, as the embeddings normalised whole."""

import pytest
import torch

from dissect_core.similarity.cosine import FactoredCosine
from dissect_core.stages import scoring
from dissect_core.stages.scoring import layer_cosines, unit_rows


def test_rows_normalised_in_parts_are_the_rows_normalised_whole() -> None:
    embeddings = torch.randn(1000, 48, generator=torch.Generator().manual_seed(1)) * 3
    parts = torch.cat([rows for _, rows in unit_rows(embeddings, 37)])
    assert [start for start, _ in unit_rows(embeddings, 400)] == [0, 400, 800]
    assert torch.equal(parts, FactoredCosine(embeddings, torch.randn(5, 48)).image_embeddings)


def test_factored_cosines_over_given_unit_rows_equal_those_normalised_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    generator = torch.Generator().manual_seed(2)
    images, texts = torch.randn(300, 16, generator=generator), torch.randn(40, 16, generator=generator)
    unit = torch.cat([rows for _, rows in unit_rows(images, 64)])
    assert torch.equal(layer_cosines(images, texts, unit).columns(0, 40), layer_cosines(images, texts).columns(0, 40))
    monkeypatch.setattr(scoring, "DEFAULT_MEMORY_BUDGET_BYTES", 0)  # too small for the dense matrix: factored
    given, whole = layer_cosines(images, texts, unit), layer_cosines(images, texts)
    assert isinstance(given, FactoredCosine) and given.image_embeddings is unit  # kept as given, not copied
    index = torch.tensor([5, 0, 299])
    assert torch.equal(given.rows(index), whole.rows(index))
    assert torch.equal(given.columns(3, 17), whole.columns(3, 17))
