"""The published CLIP-Dissect scoring loops (Trustworthy-ML-Lab/CLIP-dissect, similarity.py), moved to the CPU.

One port, the oracle of the unit tests and the baseline of bench/bench_similarity.py. The loops keep the
published arithmetic and order: pass float64 inputs for a float64 oracle (the weights follow the input dtype).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def soft_wpmi_loop(
    clip_feats: Tensor,
    target_feats: Tensor,
    top_k: int = 100,
    a: float = 10,
    lam: float = 1,
    min_prob: float = 1e-7,
    p_start: float = 0.998,
    p_end: float = 0.97,
) -> Tensor:
    """Return the published soft-WPMI [neurons, concepts] from image×concept cosines and activations."""
    clip_feats = torch.nn.functional.softmax(a * clip_feats, dim=1)
    inds = torch.topk(target_feats, dim=0, k=top_k)[1]
    prob_d_given_e = []
    p_in_examples = p_start - (torch.arange(start=0, end=top_k) / top_k * (p_start - p_end)).unsqueeze(1)
    p_in_examples = p_in_examples.to(clip_feats.dtype)
    for orig_id in range(target_feats.shape[1]):
        curr_clip_feats = clip_feats.gather(0, inds[:, orig_id : orig_id + 1].expand(-1, clip_feats.shape[1]))
        curr_p_d_given_e = 1 + p_in_examples * (curr_clip_feats - 1)
        curr_p_d_given_e = torch.sum(torch.log(curr_p_d_given_e + min_prob), dim=0, keepdim=True)
        prob_d_given_e.append(curr_p_d_given_e)
    log_given = torch.cat(prob_d_given_e, dim=0)
    prob_d = torch.logsumexp(log_given, dim=0, keepdim=True) - math.log(log_given.shape[0])
    return log_given - lam * prob_d


def wpmi_loop(
    clip_feats: Tensor, target_feats: Tensor, top_k: int = 28, a: float = 2, lam: float = 0.6, min_prob: float = 1e-7
) -> Tensor:
    """Return the published WPMI [neurons, concepts] from image×concept cosines and activations."""
    clip_feats = torch.nn.functional.softmax(a * clip_feats, dim=1)
    inds = torch.topk(target_feats, dim=0, k=top_k)[1]
    prob_d_given_e = []
    for orig_id in range(target_feats.shape[1]):
        curr_clip_feats = clip_feats.gather(0, inds[:, orig_id : orig_id + 1].expand(-1, clip_feats.shape[1]))
        curr_p_d_given_e = torch.sum(torch.log(curr_clip_feats + min_prob), dim=0, keepdim=True)
        prob_d_given_e.append(curr_p_d_given_e)
    log_given = torch.cat(prob_d_given_e, dim=0)
    prob_d = torch.logsumexp(log_given, dim=0, keepdim=True) - math.log(log_given.shape[0])
    return log_given - lam * prob_d


def soft_wpmi_loop_float64_preallocated(cos: Tensor, activations: Tensor, top_k: int = 100) -> Tensor:
    """Return soft_wpmi_loop's result in float64 at the paper's defaults, written into one preallocated output.

    Run as published in float64, the loop's per-neuron rows kept between 16 MB temporaries fragment the heap
    until the process peaks at about 20 GiB; the same arithmetic into a preallocated tensor stays small.
    """
    probabilities = torch.nn.functional.softmax(10 * cos.double(), dim=1)
    indices = torch.topk(activations, dim=0, k=top_k)[1]
    weights = (0.998 - torch.arange(top_k, dtype=torch.float64) / top_k * (0.998 - 0.97)).unsqueeze(1)
    log_given = torch.empty(activations.shape[1], cos.shape[1], dtype=torch.float64)
    for unit in range(activations.shape[1]):
        log_given[unit] = torch.log(1 + weights * (probabilities[indices[:, unit]] - 1) + 1e-7).sum(0)
    return log_given - (torch.logsumexp(log_given, dim=0, keepdim=True) - math.log(activations.shape[1]))
