"""Stable top-k: higher value first, lower image index on ties, the same answer from any batching or sharding."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dissect_core.activations import ActivationRecorder
from dissect_core.errors import DissectError
from dissect_core.similarity.functions import top_image_indices
from dissect_core.topk import merge_topk, stable_topk, stable_topk_positions

NAN = float("nan")
INF = float("inf")


def reference_top(column: list[float], k: int) -> list[int]:
    """The order by hand: NaN last, then higher value first, then lower image index."""
    return sorted(
        range(len(column)), key=lambda i: (math.isnan(column[i]), 0.0 if math.isnan(column[i]) else -column[i], i)
    )[:k]


def test_ties_go_to_the_lower_image_index():
    values, indices = stable_topk(torch.tensor([[1.0, 3.0, 3.0, 2.0], [0.0, 0.0, 0.0, 0.0]]), 3)
    assert values.tolist() == [[3.0, 3.0, 2.0], [0.0, 0.0, 0.0]]
    assert indices.tolist() == [[1, 2, 3], [0, 1, 2]]


def test_a_dead_unit_keeps_its_first_images():
    assert stable_topk_positions(torch.zeros(1, 2000), 5).tolist() == [[0, 1, 2, 3, 4]]


def test_negative_zero_ties_with_zero_and_nan_ranks_last():
    assert stable_topk_positions(torch.tensor([[-0.0, 0.0, -0.0]]), 3).tolist() == [[0, 1, 2]]
    values, indices = stable_topk(torch.tensor([[NAN, -INF, 1.0, NAN, INF, -1.0]]), 6)
    assert indices.tolist() == [[4, 2, 5, 1, 0, 3]]
    assert values[0, :4].tolist() == [INF, 1.0, -1.0, -INF] and values[0, 4:].isnan().all()


@pytest.mark.parametrize(
    ("row", "dtype", "expected"),
    [
        ([1.0, 1.0009765625, 1.0], torch.float16, [1, 0, 2]),  # the next float16 after 1.0
        ([-65504.0, 65504.0, 65504.0, 2**-24], torch.float16, [1, 2, 3, 0]),  # float16's extremes, a subnormal
        ([3e38, -3e38, 3e38, 1.0], torch.bfloat16, [0, 2, 3, 1]),
        ([1e-45, 0.0, -1e-45, 3.4e38, 3.4e38], torch.float32, [3, 4, 0, 1, 2]),  # float32's smallest subnormal
    ],
)
def test_the_order_is_exact_at_every_scale(row, dtype, expected):
    source = torch.tensor([row], dtype=dtype)
    values, indices = stable_topk(source, len(row))
    assert indices.tolist() == [expected]
    assert values.dtype == dtype and torch.equal(values[0], source[0, expected])


def test_image_indices_name_the_columns():
    values = torch.tensor([[5.0, 5.0, 7.0], [1.0, 1.0, 1.0]])
    _, shared = stable_topk(values, 2, torch.tensor([9, 4, 6]))
    assert shared.tolist() == [[6, 4], [4, 6]]
    _, per_row = stable_topk(values, 2, torch.tensor([[9, 4, 6], [3, 8, 2]]))
    assert per_row.tolist() == [[6, 4], [2, 3]]


def test_merge_by_hand():
    first = (torch.tensor([[4.0, 1.0]]), torch.tensor([[0, 7]]))
    second = (torch.tensor([[4.0, 2.0]]), torch.tensor([[3, 1]]))
    values, indices = merge_topk([second, first], 3)
    assert values.tolist() == [[4.0, 4.0, 2.0]] and indices.tolist() == [[0, 3, 1]]
    assert merge_topk([first], 5)[1].tolist() == [[0, 7]]  # fewer than k in all: every one is kept


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: stable_topk(torch.zeros(2, 3, dtype=torch.float64), 1), "cast with .float()"),
        (lambda: stable_topk(torch.zeros(2, 3), 4), "lower k"),
        (lambda: stable_topk(torch.zeros(3), 1), "values \\[units, images\\]"),
        (lambda: stable_topk(torch.zeros(2, 3), 1, torch.arange(4)), "pass \\[N\\] indices"),
        (lambda: stable_topk(torch.zeros(2, 3), 1, torch.arange(3, dtype=torch.int32)), "cast with .long()"),
        (lambda: merge_topk([], 1), "at least one"),
    ],
)
def test_bad_calls_say_what_to_do(call, message):
    with pytest.raises(DissectError, match=message):
        call()


class _Maps(nn.Module):
    """Returns fixed conv outputs [N, units, h, w] for the image indices it is given."""

    def __init__(self, outputs: torch.Tensor) -> None:
        super().__init__()
        self.outputs = outputs
        self.layer = nn.Identity()

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        return self.layer(self.outputs[index])


def record(outputs: torch.Tensor, order: list[int], batch_sizes: list[int], n_top: int):
    """Return the recorder's layer after passing the images in `order`, cut into batches of `batch_sizes`."""
    recorder = ActivationRecorder(_Maps(outputs), ["layer"], n_images=len(order), n_top=n_top, pool="avg")
    start = 0
    with recorder:
        for size in batch_sizes:
            batch = order[start : start + size]
            recorder.run_batch(torch.tensor(batch), batch)
            start += size
    return recorder.results()["layer"]


def assert_same(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual, expected, rtol=0, atol=0, equal_nan=True)


def check_every_route(outputs: torch.Tensor, n_top: int, batchings: list[tuple[list[int], list[int]]], shard_of):
    """Every batching through the recorder, and a two-way shard + merge, equal one stable top-k and the oracle."""
    pooled = outputs.mean(dim=(2, 3))  # [N, units]
    n_images, n_units = pooled.shape
    k = min(n_top, n_images)
    values, indices = stable_topk(pooled.T, k)
    assert indices.tolist() == [reference_top(pooled[:, unit].tolist(), k) for unit in range(n_units)]
    assert torch.equal(top_image_indices(pooled, k), indices)
    maps = outputs[indices, torch.arange(n_units).unsqueeze(1)]
    for order, batch_sizes in batchings:
        layer = record(outputs, order, batch_sizes, n_top)
        assert torch.equal(layer.top_indices, indices), batch_sizes
        assert_same(layer.top_values, values)
        assert_same(layer.top_maps, maps)
    shards = [[i for i in range(n_images) if shard_of(i) == shard] for shard in (0, 1)]
    parts = [stable_topk(pooled[shard].T, min(k, len(shard)), torch.tensor(shard)) for shard in shards if shard]
    merged_values, merged_indices = merge_topk(parts, k)
    assert torch.equal(merged_indices, indices)
    assert_same(merged_values, values)


def test_dead_and_tied_units_on_2000_images_agree_on_every_route():
    # The reported bug: a dead unit's top-5 came out [3, 4, 1, 0, 2] whole, [1992, ...] batched, [1000, ...] sharded.
    n_images, n_top = 2000, 5
    generator = torch.Generator().manual_seed(0)
    outputs = torch.zeros(n_images, 4, 2, 2)  # unit 0 dead
    outputs[:, 1] = torch.randint(0, 2, (n_images, 1, 1), generator=generator).float()  # ties everywhere
    outputs[:, 2] = torch.randn(n_images, 2, 2, generator=generator)
    outputs[:, 3] = torch.relu(torch.randn(n_images, 2, 2, generator=generator) - 2.5)  # mostly zero
    permuted = torch.randperm(n_images, generator=generator).tolist()
    in_order = list(range(n_images))
    batchings = [
        (in_order, [n_images]),
        (in_order, [64] * 31 + [16]),
        (in_order, [1, 999, 7, 993]),
        (permuted, [500] * 4),
    ]
    check_every_route(outputs, n_top, batchings, shard_of=lambda i: int(i >= 1000))
    assert stable_topk(outputs.mean(dim=(2, 3)).T, n_top)[1][0].tolist() == [0, 1, 2, 3, 4]


@st.composite
def recorded_problem(draw):
    """Conv outputs with many ties (NaN, ±inf and ±0.0 among them), an image order, batchings and a sharding."""
    n_images = draw(st.integers(1, 40))
    n_top = draw(st.integers(1, 8))
    pool = [0.0, -0.0, 1.0, 2.0, -1.5, 1e30, -INF, INF, NAN] if draw(st.booleans()) else [0.0, 1.0]
    outputs = torch.zeros(n_images, 4, 2, 2)  # unit 0 stays dead
    for image in range(n_images):
        for unit in range(1, 4):
            value = draw(st.sampled_from(pool))
            if math.copysign(1.0, value) < 0 and value == 0:
                outputs[image, unit] = -0.0  # a mean of -0.0s stays -0.0
            else:
                outputs[image, unit].view(-1)[draw(st.integers(0, 3))] = value  # same mean, another map
    order = draw(st.permutations(range(n_images)))

    def cuts() -> list[int]:
        sizes, left = [], n_images
        while left:
            sizes.append(draw(st.integers(1, left)))
            left -= sizes[-1]
        return sizes

    in_order = list(range(n_images))
    batchings = [(in_order, [n_images]), (in_order, [1] * n_images), (in_order, cuts()), (list(order), cuts())]
    shard = draw(st.lists(st.integers(0, 1), min_size=n_images, max_size=n_images))
    return outputs, n_top, batchings, shard


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(problem=recorded_problem())
def test_any_batching_or_sharding_gives_the_one_stable_top_k(problem):
    outputs, n_top, batchings, shard = problem
    check_every_route(outputs, n_top, batchings, shard_of=shard.__getitem__)
