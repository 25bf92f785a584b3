"""The five similarity functions: hand-computed cases, the published per-neuron loops, planted concepts, properties."""

from __future__ import annotations

import inspect
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dissect_core.errors import DissectError
from dissect_core.similarity import functions as similarity
from dissect_core.similarity.cosine import FactoredCosine
from tests.support.published_loops import soft_wpmi_loop, wpmi_loop


def random_problem(n_images=120, n_concepts=70, n_neurons=9, dim=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.nn.functional.normalize(torch.randn(n_images, dim, generator=generator), dim=1)
    texts = torch.nn.functional.normalize(torch.randn(n_concepts, dim, generator=generator), dim=1)
    acts = torch.randn(n_images, n_neurons, generator=generator)
    return images, texts, acts


def test_soft_wpmi_hand_computed_two_images_two_concepts():
    cos = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    acts = torch.tensor([[2.0, 0.0], [1.0, 3.0]])  # neuron 0 prefers image 0, neuron 1 image 1
    scores = similarity.soft_wpmi(cos, acts, top_k=1, a=1.0, lam=1.0, p_start=0.9, p_end=0.9, min_prob=0.0)
    p_high = math.e / (math.e + 1)  # softmax of (1, 0)
    log_given = torch.tensor(
        [
            [math.log(0.1 + 0.9 * p_high), math.log(0.1 + 0.9 * (1 - p_high))],
            [math.log(0.1 + 0.9 * (1 - p_high)), math.log(0.1 + 0.9 * p_high)],
        ],
        dtype=torch.float64,
    )
    log_prior = torch.logsumexp(log_given, 0) - math.log(2)
    assert torch.allclose(scores.double(), log_given - log_prior, atol=1e-6)
    assert scores.argmax(1).tolist() == [0, 1]


def test_wpmi_hand_computed():
    cos = torch.tensor([[0.5, 0.0, 0.0]])
    acts = torch.tensor([[1.0]])
    scores = similarity.wpmi(cos, acts, top_k=1, a=2.0, lam=0.0, min_prob=0.0)
    expected = torch.log_softmax(2.0 * cos.double(), dim=1)
    assert torch.allclose(scores.double(), expected, atol=1e-6)


def test_cos_similarity_hand_computed():
    cos = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    acts = torch.tensor([[3.0], [4.0]])
    # column norms: cos -> (1, 2), acts -> 5; cosine(acts, col0) = 3/5, cosine(acts, col1) = 8/10
    assert torch.allclose(similarity.cos_similarity(cos, acts), torch.tensor([[0.6, 0.8]]))


def test_cos_similarity_cubed_hand_computed():
    cos = torch.tensor([[0.0], [1.0], [2.0]])
    acts = torch.tensor([[0.0, 2.0], [1.0, 1.0], [2.0, 0.0]])
    # centred columns (-1, 0, 1) cubed stay (-1, 0, 1): the same neuron gives 1, the reversed one -1
    assert torch.allclose(similarity.cos_similarity_cubed(cos, acts), torch.tensor([[1.0], [-1.0]]), atol=1e-6)


def test_rank_reorder_prefers_the_concept_that_orders_the_top_images():
    n_images = 200
    acts = torch.linspace(0, 1, n_images).unsqueeze(1)
    ordering = torch.linspace(0.1, 0.9, n_images)
    noise = torch.rand(n_images, generator=torch.Generator().manual_seed(1)) * 0.8 + 0.1
    cos = torch.stack([ordering, noise], dim=1)
    scores = similarity.rank_reorder(cos, acts, top_fraction=0.2)
    assert scores.shape == (1, 2)
    assert scores[0, 0] > scores[0, 1]


def test_rank_reorder_takes_the_lower_image_index_among_tied_top_images():
    # 100 images, top 5: images 50 and 60 fire, then three of the 97 tied at 0, which must be images 0, 1 and 2.
    tied = torch.zeros(100, 1)
    tied[50], tied[60] = 2.0, 1.5
    untied = torch.full((100, 1), -1.0)
    untied[[0, 1, 2, 50, 60]] = tied[[0, 1, 2, 50, 60]]
    cos = torch.rand(100, 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(similarity.rank_reorder(cos, tied), similarity.rank_reorder(cos, untied))


@pytest.mark.parametrize("budget", [1 << 30, 20_000], ids=["materialised", "streamed"])
def test_soft_wpmi_matches_published_loop(budget):
    images, texts, acts = random_problem()
    cos = images @ texts.T
    expected = soft_wpmi_loop(cos.double(), acts, top_k=40)
    got = similarity.soft_wpmi(cos, acts, top_k=40, memory_budget_bytes=budget)
    assert (got.double() - expected).abs().max() < 1e-4


@pytest.mark.parametrize("budget", [1 << 30, 20_000], ids=["materialised", "streamed"])
def test_wpmi_matches_published_loop(budget):
    images, texts, acts = random_problem(seed=3)
    cos = images @ texts.T
    got = similarity.wpmi(cos, acts, memory_budget_bytes=budget)
    assert (got.double() - wpmi_loop(cos.double(), acts)).abs().max() < 1e-4


def test_many_images_and_concepts_cross_every_block_and_slab_boundary():
    """More top images than a softmax block (256 rows) and more concepts than a kernel slab (256 columns)."""
    images, texts, acts = random_problem(n_images=700, n_concepts=600, n_neurons=12, seed=5)
    cos = images @ texts.T
    got = similarity.soft_wpmi(cos, acts, top_k=60)
    assert (got.double() - soft_wpmi_loop(cos.double(), acts, top_k=60)).abs().max() < 1e-4
    got = similarity.wpmi(cos, acts, top_k=60)
    assert (got.double() - wpmi_loop(cos.double(), acts, top_k=60)).abs().max() < 1e-4


def test_factored_cosine_gives_the_same_scores_as_dense():
    images, texts, acts = random_problem(seed=5)
    factored = FactoredCosine(images, texts)
    dense = images @ texts.T
    for name in similarity.SIMILARITY_FUNCTIONS:
        function = similarity.get_similarity(name)
        params = {"top_k": 20} if name in ("soft_wpmi", "wpmi") else {}
        assert torch.allclose(function(factored, acts, **params), function(dense, acts, **params), atol=1e-4), name


@pytest.mark.parametrize("name", sorted(similarity.SIMILARITY_FUNCTIONS))
def test_planted_concepts_are_recovered(name):
    """Each neuron's activations are one concept's cosine column: every function must find that concept."""
    images, texts, _ = random_problem(n_images=400, n_concepts=50, dim=24, seed=7)
    cos = images @ texts.T
    planted = torch.tensor([3, 17, 29, 41, 8])
    acts = cos[:, planted] * 5 + 1
    params = {"top_k": 10} if name in ("soft_wpmi", "wpmi") else {}
    scores = similarity.get_similarity(name)(cos, acts, **params)
    assert scores.argmax(1).tolist() == planted.tolist()


@settings(max_examples=25, deadline=None)
@given(
    unit=st.integers(0, 5),
    factor=st.floats(0.01, 100.0),
    name=st.sampled_from(["soft_wpmi", "wpmi", "cos_similarity"]),
)
def test_labels_do_not_change_when_a_neuron_is_scaled(unit, factor, name):
    images, texts, acts = random_problem(n_images=60, n_concepts=30, n_neurons=6, seed=11)
    cos = images @ texts.T
    params = {"top_k": 8} if name != "cos_similarity" else {}
    function = similarity.get_similarity(name)
    before = function(cos, acts, **params).argmax(1)
    scaled = acts.clone()
    scaled[:, unit] *= factor
    after = function(cos, scaled, **params).argmax(1)
    assert torch.equal(before, after)


@settings(max_examples=20, deadline=None)
@given(permutation_seed=st.integers(0, 10_000))
def test_soft_wpmi_is_equivariant_to_permuting_neurons(permutation_seed):
    images, texts, acts = random_problem(n_images=50, n_concepts=20, n_neurons=7, seed=2)
    cos = images @ texts.T
    permutation = torch.randperm(7, generator=torch.Generator().manual_seed(permutation_seed))
    scores = similarity.soft_wpmi(cos, acts, top_k=6)
    permuted = similarity.soft_wpmi(cos, acts[:, permutation], top_k=6)
    assert torch.allclose(permuted, scores[permutation], atol=1e-5)


def test_top_k_larger_than_probe_set_is_a_clear_error():
    images, texts, acts = random_problem(n_images=10)
    with pytest.raises(DissectError, match="larger than the probe set"):
        similarity.soft_wpmi(images @ texts.T, acts, top_k=11)


def test_unknown_similarity_and_parameter_name_the_choices():
    with pytest.raises(DissectError, match="soft_wpmi"):
        similarity.get_similarity("nope")
    with pytest.raises(DissectError, match="its parameters are"):
        similarity.resolve_similarity_params("wpmi", {"p_start": 0.9}, 100)


def test_adaptive_top_k_equals_paper_at_paper_size_and_has_a_floor():
    assert similarity.adaptive_top_k(100, 50_000) == 100
    assert similarity.adaptive_top_k(100, 1_300) == 5
    assert similarity.adaptive_top_k(100, 3) == 3
    assert similarity.resolve_similarity_params("soft_wpmi", {}, 50_000)["top_k"] == 100
    assert similarity.resolve_similarity_params("soft_wpmi", {"top_k": 7}, 50_000)["top_k"] == 7


def test_score_new_concepts_equals_soft_wpmi_with_the_concept_added():
    images, texts, acts = random_problem(n_images=90, n_concepts=40, seed=13)
    new_text = torch.nn.functional.normalize(torch.randn(1, images.shape[1], generator=torch.Generator()), dim=1)
    top = similarity.top_image_indices(acts, 12)
    normalisers = similarity.image_log_normalisers(images @ texts.T, 10.0)
    fast = similarity.score_new_concepts(images, new_text, normalisers, top)
    full = similarity.soft_wpmi(torch.cat([images @ texts.T, images @ new_text.T], 1), acts, top_k=12)
    assert torch.allclose(fast[:, 0], full[:, -1], atol=1e-4)


def test_soft_wpmi_defaults_are_written_once():
    soft = inspect.signature(similarity.soft_wpmi).parameters
    later = inspect.signature(similarity.score_new_concepts).parameters
    search = similarity.CONCEPT_SEARCH_DEFAULTS
    assert list(search) == ["a", "lam", "p_start", "p_end", "min_prob"]
    assert all(soft[name].default == value == later[name].default for name, value in search.items())
    adaptive = similarity.ADAPTIVE_TOP_K
    assert adaptive == {"soft_wpmi": 100, "wpmi": 28} and adaptive["soft_wpmi"] == soft["top_k"].default
