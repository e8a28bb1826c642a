r"""Queries on an exact posterior, plain and conditional, for all three engines.

:meth:`pvae.exact.ExactPosterior.prob` and :meth:`~pvae.exact.ExactPosterior.marginal`
take ``given=``, a partial assignment of latent sites to condition on:

.. math::

    p(z_A = a \mid z_B = b, x) = \frac{p(z_A = a, z_B = b \mid x)}{p(z_B = b \mid x)},

each term a restricted sum of the engine that ran (:mod:`pvae.exact.parallel`,
:mod:`pvae.exact.factored`) or a sum over rows of the joint table
(:mod:`pvae.exact.sequential`). A condition of posterior probability 0 leaves the
conditional undefined and raises ``ValueError``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from pvae.exact import factored, parallel, sequential

__all__ = ["conditional_marginal", "conditional_prob", "log_prob", "values_of"]


def values_of(post, assignment: dict[str, Any], what: str = "the value") -> dict:
    """``assignment`` with each value a tensor of the site's support dtype (checked)."""
    values = {}
    for name, value in assignment.items():
        if name not in post.sites:
            raise ValueError(
                f"`{name}` must be one of the latent sites {post.sites}, got {name!r}."
            )
        try:
            values[name] = torch.as_tensor(value, dtype=post.support(name).dtype)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(
                f"{what} for site {name!r} must be a number or a tensor of the site's "
                f"values, got {value!r}."
            ) from None
    return values


def log_prob(post, values: dict) -> float:
    r""":math:`\log p(z_A = a \mid x)` by the engine that ran (-inf for probability 0)."""
    if not values:
        return 0.0
    if post._rows is not None:
        p = sequential.prob_of(post._rows, post._table.posterior, values)
        return math.log(p) if p > 0 else -math.inf
    if post._factored is not None:
        return factored.log_prob_of(post._factored, values)
    return parallel.log_prob_of(post._elimination, values)


def _merge(values: dict, given: dict) -> dict | None:
    """The joint event of ``values`` and ``given``; None if they contradict each other."""
    merged = dict(given)
    for name, value in values.items():
        if name in merged:
            a, b = torch.broadcast_tensors(merged[name], value)
            if not bool((a == b).all()):
                return None
        merged[name] = value
    return merged


def _log_condition(post, given: dict) -> float:
    log_given = log_prob(post, given)
    if log_given == -math.inf:
        shown = {k: v.tolist() for k, v in given.items()}
        raise ValueError(
            f"`given`={shown} has posterior probability 0, so the conditional probability "
            "given it is undefined. Condition on an event the posterior allows."
        )
    return log_given


def conditional_prob(post, assignment: dict, given: dict) -> float:
    r""":math:`p(z_A = a \mid z_B = b, x)`."""
    values = values_of(post, assignment)
    condition = values_of(post, given, what="the value in `given`")
    log_given = _log_condition(post, condition)
    merged = _merge(values, condition)
    if merged is None:
        return 0.0
    return min(1.0, math.exp(log_prob(post, merged) - log_given))


def conditional_marginal(post, site: str, given: dict) -> torch.Tensor:
    r""":math:`p(z_{\text{site}} \mid z_B = b, x)` over the site's support."""
    condition = values_of(post, given, what="the value in `given`")
    _log_condition(post, condition)
    if post._factored is not None:
        return factored.marginals(post._factored, condition)[site]
    if post._rows is not None:
        rows, posterior = post._rows, post._table.posterior
        keep = torch.tensor(
            [
                all(n in v and sequential.equal(v[n], c) for n, c in condition.items())
                for v in rows.values
            ]
        )
        restricted = torch.where(keep, posterior, torch.zeros_like(posterior))
        return sequential.marginals(rows, restricted / restricted.sum())[site]
    support = post.support(site)
    if post.marginal(site).dim() != 1:
        raise ValueError(
            f"`marginal({site!r}, given=...)` of a site inside plates needs the sequential "
            "engine (method='sequential'); use `prob(..., given=...)` for one event."
        )
    probs = [conditional_prob(post, {site: v}, given) for v in support]
    return torch.tensor(probs, dtype=torch.float64)
