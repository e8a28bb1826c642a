r"""Exact zeros: a value of probability 0 scores :math:`-\infty`, not :math:`\log\epsilon`.

Torch clamps ``probs`` away from 0 and 1 before taking logs, so ``Bernoulli(0.).log_prob(1.)``
is about -36 in float64 (-16 in float32): a wrong, finite number. Every pvae number -- exact
posteriors and evidence, ELBOs, KLs, importance weights -- reads such zeros from ``probs``
itself, so a guide that puts mass where the posterior has none has
:math:`\mathrm{KL}(q \,\|\, p) = \infty`, as the definition says.
"""

from __future__ import annotations

import math
from typing import Any

import pyro
import torch
from pyro.distributions.util import scale_and_mask

__all__ = ["exact_log_probs"]


def _zero_probability(fn: Any, value: torch.Tensor) -> torch.Tensor | None:
    """Where ``value`` has probability exactly 0 under ``fn`` (batch-shaped), or None.

    Torch clamps ``probs`` away from 0 before taking logs (``log_prob`` of an impossible
    value is about -36 in float64, not -inf), so zeros are read from ``probs`` itself.
    """
    masked = getattr(fn, "_mask", None)
    if isinstance(fn, pyro.distributions.MaskedDistribution):
        zero = _zero_probability(fn.base_dist, value)
        if zero is None or masked is True:
            return zero
        return zero & torch.as_tensor(masked, dtype=torch.bool)
    if isinstance(fn, torch.distributions.Independent):
        zero = _zero_probability(fn.base_dist, value)
        n = fn.reinterpreted_batch_ndims
        return None if zero is None else zero.flatten(zero.dim() - n).any(-1)
    if "probs" not in fn.__dict__:  # from logits: log_prob is exact (-inf stays -inf)
        return None
    probs = fn.probs
    edge = probs == 0
    if isinstance(fn, (torch.distributions.Bernoulli, torch.distributions.Binomial)):
        edge = edge | (probs == 1)
    if not bool(edge.any()):  # the common case: nothing is impossible
        return None
    if isinstance(fn, torch.distributions.OneHotCategorical):
        return (probs * value).sum(-1) == 0
    if isinstance(fn, torch.distributions.Categorical):
        index = value.long().unsqueeze(-1)
        n = max(index.dim(), probs.dim())
        index = index.reshape((1,) * (n - index.dim()) + tuple(index.shape))
        probs = probs.reshape((1,) * (n - probs.dim()) + tuple(probs.shape))
        return torch.take_along_dim(probs, index, dim=-1).squeeze(-1) == 0  # broadcasts
    if isinstance(fn, torch.distributions.Bernoulli):
        return torch.where(value == 1, probs, 1 - probs) == 0
    if isinstance(fn, torch.distributions.Binomial):
        return ((probs == 0) & (value > 0)) | ((probs == 1) & (value < fn.total_count))
    return None


def exact_log_probs(trace) -> None:
    """Set ``log_prob`` to exactly -inf where a site's value has probability 0.

    Call after ``trace.compute_log_prob()`` (and before ``pack_tensors``): it rewrites
    ``unscaled_log_prob`` and ``log_prob`` of each sample site whose distribution holds
    ``probs`` with exact zeros, which torch's clamp would turn into :math:`\\log
    \\epsilon \\approx -36` (a wrong, finite number).
    """
    for site in trace.nodes.values():
        if site["type"] != "sample" or "unscaled_log_prob" not in site:
            continue
        zero = _zero_probability(site["fn"], site["value"])
        if zero is None or not bool(zero.any()):
            continue
        log_p = torch.where(zero, -math.inf, site["unscaled_log_prob"])
        site["unscaled_log_prob"] = log_p
        site["log_prob"] = scale_and_mask(log_p, site["scale"], site["mask"])
        site["log_prob_sum"] = site["log_prob"].sum()
