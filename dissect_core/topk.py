"""Top-k with one order everywhere: the higher value first and, on equal values, the lower image index first.

`torch.topk` breaks ties however its kernel happens to, so a dead (all-zero) unit's top images differed between
one pass over the whole column, the recorder's running merge over batches and a merge of shards. Here every
(value, image index) pair becomes one int64 key that sorts in that order, so no two candidates tie and the top-k
of any partition of the images, merged, is exactly the top-k of all of them.

The order is exact for float16, bfloat16 and float32 values (each is widened to float32 without rounding):
the key holds the value's 32 bits and the image index's 32 bits. -0.0 and 0.0 are equal values. NaN ranks
below every number, -inf included, and NaNs among themselves go by image index.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from dissect_core.errors import DissectError

#: Image indices fill the low 32 bits of a key; the value's order-preserving bits fill the high 32.
_INDEX_SPAN = 1 << 32
#: The magnitude bits of float32 infinity; larger magnitudes are NaNs.
_INF_BITS = 0x7F800000
_EXACT_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
#: Keys built at once: bounds the temporaries (all at once, a 2,048-unit layer on 50,000 images needs ~2 GB).
_BLOCK_ELEMENTS = 1 << 22


def _order_keys(values: Tensor, image_index: Tensor) -> Tensor:
    """Return int64 keys [rows, N] whose descending order is value descending, then image index ascending."""
    bits = values.float().view(torch.int32)
    magnitude = bits & 0x7FFFFFFF
    # A float's order is its sign times its magnitude bits' order; -0.0 and 0.0 both become 0.
    order = torch.where(bits < 0, -magnitude, magnitude)
    # Every NaN below -inf: int32's minimum is below any negated 31-bit magnitude.
    order.masked_fill_(magnitude > _INF_BITS, torch.iinfo(torch.int32).min)
    return order.long().mul_(_INDEX_SPAN).add_(_INDEX_SPAN - 1 - image_index)


def _checked_image_index(values: Tensor, k: int, indices: Tensor | None) -> Tensor:
    """Return the [K, N] image index of every value (the column positions when `indices` is None), or raise."""
    if values.dim() != 2:
        raise DissectError(f"top-k takes values [units, images], got shape {tuple(values.shape)}; add or flatten a dim")
    if values.dtype not in _EXACT_DTYPES:
        raise DissectError(
            f"top-k orders float16, bfloat16 or float32 values exactly, got {values.dtype}; cast with .float()"
        )
    if not 0 <= k <= values.shape[1]:
        raise DissectError(f"k={k} must lie between 0 and the {values.shape[1]} images given; lower k")
    if indices is None:
        return torch.arange(values.shape[1], device=values.device).expand_as(values)
    if indices.shape not in (values.shape[1:], values.shape):
        raise DissectError(
            f"image indices of shape {tuple(indices.shape)} do not fit values {tuple(values.shape)}; pass [N] "
            "indices shared by every row or [K, N], one per value"
        )
    if indices.dtype != torch.long:
        raise DissectError(f"image indices must be int64, got {indices.dtype}; cast with .long()")
    return indices.to(values.device).expand_as(values)


def _topk_positions(values: Tensor, k: int, image_index: Tensor) -> Tensor:
    """Return [K, k] positions of each row's k best values in key order, a block of rows at a time."""
    rows = max(1, _BLOCK_ELEMENTS // max(1, values.shape[1]))
    blocks = [
        torch.topk(_order_keys(values[start : start + rows], image_index[start : start + rows]), k, dim=1).indices
        for start in range(0, values.shape[0], rows)
    ]
    return torch.cat(blocks) if blocks else torch.empty(0, k, dtype=torch.long, device=values.device)


def stable_topk_positions(values: Tensor, k: int, indices: Tensor | None = None) -> Tensor:
    """Return [K, k] column positions of each row's k largest values, higher value first, lower image index on ties.

    `values` is [K, N]; `indices` names each column's image, [N] for every row or [K, N] (default: the column
    positions), and must lie in [0, 2**32). Positions, unlike image indices, let a caller gather its own data.
    """
    return _topk_positions(values, k, _checked_image_index(values, k, indices))


def stable_topk(values: Tensor, k: int, indices: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Return each row's k largest (values, image indices) [K, k], higher value first, lower image index on ties.

    `values` is [K, N]; `indices` names each column's image, [N] for every row or [K, N] (default: the column
    positions). NaN ranks below every number.
    """
    image_index = _checked_image_index(values, k, indices)
    positions = _topk_positions(values, k, image_index)
    return values.gather(1, positions), image_index.gather(1, positions)


def merge_topk(parts: Sequence[tuple[Tensor, Tensor]], k: int) -> tuple[Tensor, Tensor]:
    """Return the k best (values, image indices) [K, k] of partial top-k lists, in `stable_topk`'s order.

    Each part is the (values [K, k_i], image indices [K, k_i]) of `stable_topk` over one chunk or shard of the
    images; when the parts hold fewer than k images in all, every one of them is kept.
    """
    if not parts:
        raise DissectError("merge_topk needs at least one partial top-k list; pass the (values, indices) of each part")
    values = torch.cat([part_values for part_values, _ in parts], dim=1)
    indices = torch.cat([part_indices for _, part_indices in parts], dim=1)
    return stable_topk(values, min(k, values.shape[1]), indices)
