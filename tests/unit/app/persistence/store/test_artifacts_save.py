"""The artifacts writer stores each tensor holding only its own bytes, in the dtype asked, without copying a
matrix mapped from a file (a Ray run's activations) whole into memory."""

from pathlib import Path

import pytest
import torch

from app.persistence.store.artifacts import _save


@pytest.mark.parametrize(
    ("tensor", "dtype"),
    [
        (torch.randn(50, 7), torch.float16),  # a layer's activations, stored as float16
        (torch.randn(50, 7)[:, 2:5], None),  # a view: only its own values are stored
        (torch.randn(10, 3, 4, 5), torch.float16),  # top maps
        (torch.arange(10)[3:], None),
        (torch.tensor(3.0), None),
        (torch.randn(0, 4), torch.float16),
    ],
)
def test_a_saved_tensor_is_its_values_in_the_dtype_asked_and_nothing_else(
    tmp_path: Path, tensor: torch.Tensor, dtype: torch.dtype | None
) -> None:
    _save(tensor, tmp_path / "x.pt", dtype)
    stored = torch.load(tmp_path / "x.pt", weights_only=True)
    expected = tensor.to(dtype) if dtype is not None else tensor
    assert stored.dtype == expected.dtype and torch.equal(stored, expected)
    assert stored.untyped_storage().nbytes() == stored.nbytes
    assert [path.name for path in tmp_path.iterdir()] == ["x.pt"]  # the file-backed buffer is gone


def test_a_matrix_mapped_from_a_file_is_stored_as_its_float16_values(tmp_path: Path) -> None:
    rows = tmp_path / "rows.f32"
    torch.arange(4096 * 64, dtype=torch.float32).numpy().tofile(rows)
    mapped = torch.from_file(str(rows), shared=False, size=4096 * 64, dtype=torch.float32).view(4096, 64)
    _save(mapped, tmp_path / "activations.pt", torch.float16)
    assert torch.equal(torch.load(tmp_path / "activations.pt", weights_only=True), mapped.to(torch.float16))
