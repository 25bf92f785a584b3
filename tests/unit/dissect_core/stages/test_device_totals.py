"""Soft-WPMI's and WPMI's totals in torch (what a GPU block task runs) against the compiled CPU kernel."""

import numpy as np
import pytest
import torch

from dissect_core.similarity.cosine import DenseCosine, FactoredCosine
from dissect_core.similarity.functions import _soft_wpmi_kernel, _wpmi_kernel, get_similarity
from dissect_core.stages.device_totals import log_p_given_neuron_on
from dissect_core.stages.scoring import block_totals, similarity_on

CPU = torch.device("cpu")


def random_inputs(n_images: int = 90, n_neurons: int = 12, n_concepts: int = 40) -> tuple[DenseCosine, torch.Tensor]:
    generator = torch.Generator().manual_seed(5)
    cosine = DenseCosine(torch.rand(n_images, n_concepts, generator=generator) * 0.6 - 0.1)
    return cosine, torch.randn(n_images, n_neurons, generator=generator)


@pytest.mark.parametrize(
    "kernel",
    [_soft_wpmi_kernel(20, 10.0, 1.0, 0.998, 0.97, 1e-7, 1 << 30), _wpmi_kernel(7, 2.0, 0.6, 1e-7, 1 << 30)],
    ids=["soft_wpmi", "wpmi"],
)
def test_torch_totals_agree_with_the_compiled_kernel_in_one_group_or_many(kernel: object) -> None:
    cosine, activations = random_inputs()
    compiled = kernel.log_p_given_neuron(cosine, activations)  # type: ignore[attr-defined]
    one_group = log_p_given_neuron_on(kernel, cosine, activations, CPU)  # type: ignore[arg-type]
    tiny_budget = log_p_given_neuron_on(kernel, cosine, activations, CPU, memory_budget_bytes=1)  # type: ignore[arg-type]
    # float32 softmax rows built another way: ~1e-7 apart per slot, far inside the float32 scores' own rounding
    np.testing.assert_allclose(one_group, compiled, rtol=1e-7, atol=1e-5)
    assert np.array_equal(one_group.argmax(axis=1), compiled.argmax(axis=1))
    np.testing.assert_array_equal(tiny_budget, one_group)  # a neuron's totals do not depend on its group


def test_a_factored_matrix_gives_the_torch_kernel_the_dense_ones_totals() -> None:
    _, activations = random_inputs()
    generator = torch.Generator().manual_seed(6)
    images, texts = torch.randn(90, 8, generator=generator), torch.randn(40, 8, generator=generator)
    factored = FactoredCosine(images, texts)
    kernel = _soft_wpmi_kernel(20, 10.0, 1.0, 0.998, 0.97, 1e-7, 1 << 30)
    from_factors = log_p_given_neuron_on(kernel, factored, activations, CPU)
    from_dense = log_p_given_neuron_on(kernel, DenseCosine(factored.dense()), activations, CPU)
    np.testing.assert_allclose(from_factors, from_dense, rtol=1e-7, atol=1e-5)


def test_on_the_cpu_the_block_kernel_and_the_similarity_are_the_compiled_ones_bit_for_bit() -> None:
    cosine, activations = random_inputs()
    params = {"top_k": 20}
    kernel = _soft_wpmi_kernel(20, 10.0, 1.0, 0.998, 0.97, 1e-7, 1 << 30)
    totals = block_totals("soft_wpmi", params, cosine, activations, CPU).totals
    np.testing.assert_array_equal(totals, kernel.log_p_given_neuron(cosine, activations))
    expected = get_similarity("soft_wpmi")(cosine, activations, **params)
    assert torch.equal(similarity_on("soft_wpmi", params, CPU)(cosine, activations), expected)
    assert torch.equal(similarity_on("soft_wpmi", params, None)(cosine, activations), expected)
