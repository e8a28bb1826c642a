r"""The factor engine: exact posteriors of plate-free models with any number of latents.

It needs no tensor dimension per site for the whole model at once (the parallel engine
does, and torch stops at 64): each site's factor is recovered from a few enumerated runs
(:mod:`pvae.exact.factors`) and the factors are summed out in float64, by size
(:attr:`FactorResult.arithmetic` says which ran): the whole joint table for small models
or one einsum for up to 60 latents (:mod:`pvae.exact.contraction`), else a weighted
min-fill order (:mod:`pvae.exact.elimination`), whose largest table is known before
anything is allocated, in log space or, for large orders, in probability space with one
einsum per step. A probability-space pass that could underflow is redone in log space.
The marginals of all latents come from the same pass (a backward pass where it is
differentiated); :func:`log_prob_of` answers (conditional) queries by a restricted
elimination, and :func:`decode` gives the MAP assignment or exact posterior draws by
backtracking."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch

from pvae.exact import contraction, elimination, factors
from pvae.exact.elimination import Plan

__all__ = ["FactorResult", "decode", "eliminate", "log_prob_of", "marginals"]


class FactorResult(NamedTuple):
    """What :func:`eliminate` returns (see :class:`pvae.exact.ExactPosterior`)."""

    log_evidence: float
    log_partition: float  # log Z of the unscaled factors
    factors: factors.Factors
    plan: Plan
    cards: dict
    supports: dict
    marginals: dict
    arithmetic: str  # "joint", "einsum", "probability" or "log" (see `_marginals`)


def _tables(f: factors.Factors, requires_grad: bool = False) -> list:
    tables = []
    for factor in f.factors:
        t = factor.log_table.detach().clone()
        t.requires_grad_(requires_grad)
        tables.append((factor.scope, t))
    return tables


def eliminate(model, args, kwargs, plain, latents, dtype, max_table: int) -> FactorResult:
    """Recover the factors, plan the order (refusing one above ``max_table``), eliminate."""
    recovered = factors.recover(model, args, kwargs, plain, latents, dtype, max_table)
    cards = {s: recovered.supports[s].shape[0] for s in latents}
    index = {s: i for i, s in enumerate(latents)}
    p = elimination.plan([fac.scope for fac in recovered.factors], cards, index)
    elimination.refuse_large(p, cards, max_table)
    log_z, margs, arithmetic = _marginals(recovered, p, cards, {})
    return FactorResult(
        log_evidence=recovered.scale * log_z + recovered.free,
        log_partition=log_z,
        factors=recovered,
        plan=p,
        cards=cards,
        supports=recovered.supports,
        marginals=margs,
        arithmetic=arithmetic,
    )


def _indicators(f: factors.Factors, assignment: dict[str, Any]) -> list | None:
    """Log-indicator tables of ``site == value``; None if a value is outside the support."""
    out = []
    for name, value in assignment.items():
        support = f.supports[name]
        target = torch.as_tensor(value, dtype=support.dtype)
        try:
            target = target.expand(support.shape[1:])
        except RuntimeError:
            raise ValueError(
                f"the value for site {name!r} has shape {tuple(target.shape)}, which does "
                f"not broadcast to the site's shape {tuple(support.shape[1:])}."
            ) from None
        equal = (support == target).reshape(support.shape[0], -1).all(-1)
        if not bool(equal.any()):
            return None
        log_ind = torch.zeros(support.shape[0], dtype=torch.float64).masked_fill(~equal, -math.inf)
        out.append(((name,), log_ind))
    return out


#: Total table entries of an elimination order from which the marginals pass runs in
#: probability space (one einsum per step, no table over the union of the scopes: munin,
#: 1.6e7 entries, 0.57 s against 0.89 s in log space); below it log space is faster
#: (pigs, 8.8e5: 0.16 s against 0.24 s), as every step's einsum costs more to set up.
PROBABILITY_SPACE_FROM = 2**22
#: Up to this many latents, all factors are contracted by one opt_einsum expression
#: (:func:`pvae.exact.contraction.log_partition_einsum`), whose pairwise tensordots
#: beat log-space steps on the bnlearn networks up to this size.
EINSUM_MAX_LATENTS = 60


def _marginals(f: factors.Factors, p: Plan, cards: dict, given: dict) -> tuple:
    """(log Z restricted to ``given``, every latent's marginal given it, the arithmetic).

    The arithmetic, by size: the whole joint table for at most
    :data:`pvae.exact.contraction.JOINT_MAX` joint states ("joint"); one einsum in
    probability space up to :data:`EINSUM_MAX_LATENTS` latents ("einsum"); one einsum per
    step for large orders (:data:`PROBABILITY_SPACE_FROM`, "probability"); else, or when a
    probability-space pass could underflow, log space ("log").
    """
    extra = _indicators(f, given)
    if extra is None:
        return -math.inf, {}, "log"
    latents = f.latents
    if math.prod(cards[s] for s in latents) <= contraction.JOINT_MAX:
        tables = [(fac.scope, fac.log_table) for fac in f.factors] + extra
        log_z, margs = contraction.joint_marginals(tables, latents, cards)
        return log_z, margs, "joint"
    with torch.enable_grad():
        tables = _tables(f, requires_grad=True)
        log_z, arithmetic = None, "log"
        if len(latents) <= EINSUM_MAX_LATENTS:
            # no table beyond the order's largest, which max_table has been checked against
            log_z = contraction.log_partition_einsum(tables + extra, max_entries=p.largest)
            arithmetic = "einsum"
        elif p.total >= PROBABILITY_SPACE_FROM:
            log_z, arithmetic = (
                elimination.log_partition_exp(tables + extra, p, cards),
                "probability",
            )
        if log_z is None:
            log_z, arithmetic = elimination.log_partition(tables + extra, p, cards), "log"
        value = float(log_z.detach())
        if not math.isfinite(value):
            return value, {}, arithmetic
        own = {fac.site: i for i, fac in enumerate(f.factors) if fac.site in f.supports}
        grads = torch.autograd.grad(log_z, [tables[own[s]][1] for s in latents])
    margs = {}
    for s, g in zip(latents, grads, strict=True):
        scope = f.factors[own[s]].scope
        axis = scope.index(s)
        dims = [d for d in range(len(scope)) if d != axis]
        m = g.sum(dims) if dims else g
        margs[s] = m.detach().clamp_min(0.0)
    return value, margs, arithmetic


def marginals(result: FactorResult, given: dict) -> dict:
    """Every latent's marginal given ``given`` (a partial assignment); ValueError if p = 0."""
    log_z, margs, _ = _marginals(result.factors, result.plan, result.cards, given)
    if not math.isfinite(log_z):
        raise ValueError(
            f"the condition {given!r} has posterior probability 0, so the conditional "
            "distribution given it is undefined."
        )
    return margs


def log_prob_of(result: FactorResult, assignment: dict[str, Any]) -> float:
    r""":math:`\log p(z_A = a \mid x)` of a (partial) assignment, by a restricted sum."""
    extra = _indicators(result.factors, assignment)
    if extra is None:
        return -math.inf
    with torch.no_grad():
        log_z = elimination.log_partition(
            _tables(result.factors) + extra, result.plan, result.cards
        )
    return float(log_z) - result.log_partition


def decode(result: FactorResult, num: int, maximize: bool) -> dict[str, torch.Tensor]:
    """The MAP assignment (``maximize``) or ``num`` posterior draws, as site values."""
    kept: list = []
    with torch.no_grad():
        elimination.log_partition(
            _tables(result.factors), result.plan, result.cards, keep=kept, maximize=maximize
        )
    chosen = elimination.backtrack(kept, num, maximize)
    return {s: result.supports[s][chosen[s]] for s in result.factors.latents}
