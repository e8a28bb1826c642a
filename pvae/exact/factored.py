r"""The factor engine: exact posteriors of plate-free models with any number of latents.

It needs no tensor dimension per site for the whole model at once (the parallel engine
does, and torch stops at 64): each site's factor is recovered from a few enumerated runs
(:mod:`pvae.exact.factors`) and the factors are summed out in float64 along a weighted
min-fill order (:mod:`pvae.exact.elimination`), whose largest table is known before
anything is allocated. :attr:`FactorResult.arithmetic` says how: the whole joint table for
small models (:mod:`pvae.exact.contraction`), else a forward and a backward sweep of the
order in probability space (:mod:`pvae.exact.sweeps`), redone in log space where that
could lose precision. The marginals of all latents come from the same pass;
:func:`log_prob_of` answers (conditional) queries by a restricted elimination, and
:func:`decode` gives the MAP assignment or exact posterior draws by backtracking."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch

from pvae.exact import contraction, elimination, factors, sweeps
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
    arithmetic: str  # "joint", "probability" or "log" (see `_marginals`)


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


#: Whether the marginals pass runs in probability space first (:mod:`pvae.exact.sweeps`,
#: NumPy); False: always in log space (torch, autograd), as it does when the
#: probability-space pass could lose precision.
PROBABILITY_SPACE = True
#: Up to this many latents the probability-space sweeps follow opt_einsum's path over all
#: factors (:func:`pvae.exact.contraction.path`), when its largest table is no larger than
#: the elimination order's: its pairwise products beat the order's steps on the bnlearn
#: networks (water 11 ms against 43, andes 25 against 36). Past it, finding that path
#: costs more than a call saves (pigs 0.09 s, munin 0.5 s, and its path is too large).
EINSUM_PATH_MAX_LATENTS = 250
#: A probability-space marginal that sums to 1 only within more than this is redone in
#: log space (a sign of lost precision in the backward sweep).
SUM_TOLERANCE = 1e-9


def _marginals(f: factors.Factors, p: Plan, cards: dict, given: dict) -> tuple:
    """(log Z restricted to ``given``, every latent's marginal given it, the arithmetic).

    The arithmetic, by size: the whole joint table for at most
    :data:`pvae.exact.contraction.JOINT_MAX` joint states ("joint"); else both sweeps of
    the elimination order in probability space ("probability", :mod:`pvae.exact.sweeps`);
    when that could lose precision (a nonzero entry of a factor, relative to the factor's
    largest, or a step's largest entry under :data:`pvae.exact.sweeps.TINY`, or a
    marginal whose sum is off by more than :data:`SUM_TOLERANCE`), log space with a
    backward pass ("log").
    """
    extra = _indicators(f, given)
    if extra is None:
        return -math.inf, {}, "log"
    latents = f.latents
    if math.prod(cards[s] for s in latents) <= contraction.JOINT_MAX:
        tables = [(fac.scope, fac.log_table) for fac in f.factors] + extra
        log_z, margs = contraction.joint_marginals(tables, latents, cards)
        return log_z, margs, "joint"
    own = {fac.site: i for i, fac in enumerate(f.factors) if fac.site in f.supports}
    if PROBABILITY_SPACE:
        found = _probability_space(f, own, p, cards, extra)
        if found is not None:
            return found[0], found[1], "probability"
    with torch.enable_grad():
        tables = _tables(f, requires_grad=True)
        log_z = elimination.log_partition(tables + extra, p, cards)
        value = float(log_z.detach())
        if not math.isfinite(value):
            return value, {}, "log"
        grads = torch.autograd.grad(log_z, [tables[own[s]][1] for s in latents])
    margs = {}
    for s, g in zip(latents, grads, strict=True):
        axis = f.factors[own[s]].scope.index(s)
        others = _others(g.dim(), axis)
        margs[s] = (g.sum(others) if others else g).detach().clamp_min(0.0)
    return value, margs, "log"


def _probability_space(f: factors.Factors, own: dict, p: Plan, cards: dict, extra: list):
    """(log Z, the marginals) from :mod:`pvae.exact.sweeps`, or None (see `_marginals`)."""
    terms = [(fac.scope, fac.log_table) for fac in f.factors] + extra
    program = None
    if len(f.latents) <= EINSUM_PATH_MAX_LATENTS:
        _, largest, (subscripts, steps) = contraction.path(terms)
        if largest <= p.largest:  # no table beyond the order's, checked against max_table
            shapes = [tuple(t.shape) for _, t in terms]
            program = sweeps.compile_path(subscripts, steps, shapes)
    if program is None:
        program = sweeps.compile_plan([sc for sc, _ in terms], p.steps, cards)
    if program is None:
        return None
    logs = [t.detach().cpu().numpy() for _, t in terms]
    shifts = [float(a.max()) if a.size else 0.0 for a in logs]
    shifts = [m if math.isfinite(m) else 0.0 for m in shifts]
    tables = [np.exp(a - m) for a, m in zip(logs, shifts, strict=True)]
    if any(_lost(e, a) for e, a in zip(tables, logs, strict=True)):
        return None
    found = sweeps.run(program, tables)
    if found is None:
        return None
    log_z, outside = found
    margs = {}
    for s in f.latents:
        i = own[s]
        m = _onto(tables[i] * outside[i], f.factors[i].scope.index(s))
        if not abs(m.sum() - 1.0) <= SUM_TOLERANCE:
            return None
        margs[s] = torch.from_numpy(m).to(f.factors[i].log_table.device)
    return log_z + math.fsum(shifts), margs


def _lost(table: np.ndarray, log_table: np.ndarray) -> bool:
    """Whether a nonzero entry of a factor is under :data:`pvae.exact.sweeps.TINY` once
    rescaled (it may have lost precision, or become 0, in probability space)."""
    small = table < sweeps.TINY
    return bool(small.any()) and bool((small & (log_table > -math.inf)).any())


def _onto(table: np.ndarray, axis: int) -> np.ndarray:
    """``table`` summed onto one axis."""
    others = _others(table.ndim, axis)
    return table.sum(others) if others else table


def _others(ndim: int, axis: int) -> tuple:
    return tuple(a for a in range(ndim) if a != axis)


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
