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

__all__ = ["exact_log_prob", "exact_log_probs"]


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


#: Distributions whose clamped log-density of a value of probability 0 is at most
#: :math:`\log\epsilon` (plus the tiny log-normalizer of the clamped ``probs``).
_CLAMPED_TO_EPS = (
    torch.distributions.Bernoulli,
    torch.distributions.Categorical,
    torch.distributions.OneHotCategorical,
)


def exact_log_prob(fn: Any, value: torch.Tensor, log_p: torch.Tensor) -> torch.Tensor:
    r"""``log_p`` (``fn.log_prob(value)``) with exactly -inf where ``value`` has probability 0.

    For a Bernoulli or a Categorical, torch's clamp scores an impossible value at most
    :math:`\log \epsilon + 10^{-6}`, so when every entry of ``log_p`` is above
    :math:`\log\epsilon + 1` nothing is impossible and ``probs`` need not be read.
    """
    if isinstance(fn, _CLAMPED_TO_EPS) and log_p.is_floating_point():
        floor = math.log(torch.finfo(log_p.dtype).eps) + 1.0
        if not bool((log_p < floor).any()):
            return log_p
    zero = _zero_probability(fn, value)
    if zero is None or not bool(zero.any()):
        return log_p
    return torch.where(zero, -math.inf, log_p)


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
        log_p = exact_log_prob(site["fn"], site["value"], site["unscaled_log_prob"])
        if log_p is site["unscaled_log_prob"]:
            continue
        site["unscaled_log_prob"] = log_p
        site["log_prob"] = scale_and_mask(log_p, site["scale"], site["mask"])
        site["log_prob_sum"] = site["log_prob"].sum()
