r"""The parallel engine: variable elimination on Pyro's enumerated trace.

Every latent site gets its own tensor dimension (Pyro's parallel enumeration), the model
runs once, and its factors (:mod:`pvae.exact.sites` for the mask and scale convention) are
summed out by tensor variable elimination (Obermeyer et al. 2019). Plates stay product
dimensions, so latents local to ``pyro.plate("data", N)`` cost :math:`O(NK)`, not
:math:`O(K^N)`. The marginals of all latents come from one backward pass, since

.. math:: \frac{\partial \log Z}{\partial \log f(z_S)} = p(z_S \mid x)

for every factor :math:`f`. A model is only safe to run on enumerated tensors if its
Python code treats them as batches: :func:`check` compares the engine's log joint at two
full assignments with plain runs of the model at those values, which catches control flow
that silently takes one branch for every value (``if z.sum() > 0:``).

References
----------
1. Obermeyer, F. et al. (2019). Tensor variable elimination for plated factor graphs. ICML.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, NamedTuple

import torch
from pyro import poutine
from pyro.infer import config_enumerate
from pyro.ops import packed
from pyro.ops.contract import contract_to_tensor
from pyro.ops.rings import LogRing
from pyro.poutine.util import site_is_subsample

from pvae._traces import max_plate_nesting
from pvae.exact import contraction
from pvae.exact.runs import check_points
from pvae.exact.sites import common_scale, default_dtype, exact_log_probs, is_deterministic

__all__ = ["Elimination", "check", "eliminate", "log_prob_of"]


class Elimination(NamedTuple):
    """What :func:`eliminate` returns (see :class:`pvae.exact.ExactPosterior`)."""

    log_evidence: float
    log_partition: float  # log Z of the unscaled factors
    scale: float
    supports: dict
    marginals: dict
    latents: list
    first_dim: int
    trace: Any  # the packed, enumerated trace
    tree: OrderedDict  # ordinal -> packed log-factors (detached)
    sum_dims: set
    free_unscaled: float  # the masked, unscaled terms that depend on no latent


def _check_batch_in_plates(name: str, site) -> None:
    plates = {f.dim for f in site["cond_indep_stack"] if f.vectorized}
    batch = site["fn"].batch_shape
    for i, size in enumerate(batch):
        if size > 1 and i - len(batch) not in plates:
            raise NotImplementedError(
                f"site {name!r} has batch shape {tuple(batch)} outside pyro.plate"
            )


def _enumerated_trace(model, args, kwargs, plain, latents, dtype):
    for name in latents:
        _check_batch_in_plates(name, plain.nodes[name])
    first_dim = -1 - max_plate_nesting(plain)
    enum_model = poutine.enum(
        config_enumerate(model, default="parallel"), first_available_dim=first_dim
    )
    with default_dtype(dtype):  # validated as the caller asked, over every enumerated value
        trace = poutine.trace(enum_model).get_trace(*args, **kwargs)
        trace.compute_log_prob()
    exact_log_probs(trace)
    trace.pack_tensors()
    return trace, first_dim


def _factors(trace, latents):
    """The packed factor tree (Pyro's convention), scales, and the free terms."""
    tree, sum_dims, scales, free, free_unscaled = OrderedDict(), set(), {}, 0.0, 0.0
    for name, site in trace.nodes.items():
        if site["type"] != "sample" or site_is_subsample(site) or is_deterministic(site):
            continue
        if name in latents:
            if site["infer"].get("_enumerate_dim") is None:
                raise NotImplementedError(f"site {name!r} was not enumerated in parallel")
            sum_dims.add(site["infer"]["_enumerate_symbol"])
    enum_symbols = set(sum_dims)
    for name, site in trace.nodes.items():
        if site["type"] != "sample" or site_is_subsample(site) or is_deterministic(site):
            continue
        unscaled = site["packed"]["unscaled_log_prob"]
        if name in latents:
            term = unscaled
        else:
            term = packed.scale_and_mask(unscaled, mask=site["packed"]["mask"])
            if enum_symbols.isdisjoint(term._pyro_dims):
                free += float(site["packed"]["log_prob"].detach().to(torch.float64).sum())
                free_unscaled += float(term.detach().to(torch.float64).sum())
                continue
        scales[name] = site["scale"]
        leaf = term.detach().to(torch.float64)
        leaf._pyro_dims = term._pyro_dims
        ordinal = frozenset(
            trace.plate_to_symbol[f.name] for f in site["cond_indep_stack"] if f.vectorized
        )
        tree.setdefault(ordinal, []).append((name, leaf))
    return tree, sum_dims, common_scale(scales), free, free_unscaled


def _contract(tree: OrderedDict, sum_dims: set) -> torch.Tensor:
    terms = OrderedDict((t, [leaf for _, leaf in leaves]) for t, leaves in tree.items())
    if not terms:
        return torch.zeros((), dtype=torch.float64)
    log_z = None
    if list(terms) == [frozenset()]:  # no plates: one einsum in probability space
        log_z = contraction.log_partition_einsum([(t._pyro_dims, t) for t in terms[frozenset()]])
    if log_z is None:
        log_z = contract_to_tensor(terms, sum_dims, ring=LogRing())
    return log_z


def eliminate(model, args, kwargs, plain, latents, dtype, marginals: bool = True) -> Elimination:
    """Sum every latent out; with ``marginals``, also each latent's posterior marginal.

    The marginals are gradients, so they are taken with autograd on even when the caller
    runs under :func:`torch.no_grad`.
    """
    with torch.enable_grad():
        return _eliminate(model, args, kwargs, plain, latents, dtype, marginals)


def _eliminate(model, args, kwargs, plain, latents, dtype, marginals: bool) -> Elimination:
    trace, first_dim = _enumerated_trace(model, args, kwargs, plain, latents, dtype)
    tree, sum_dims, scale, free, free_unscaled = _factors(trace, latents)
    if marginals:
        for leaves in tree.values():
            for _, leaf in leaves:
                leaf.requires_grad_(True)
    log_z = _contract(tree, sum_dims)
    log_partition = float(log_z.detach())
    supports, margs = {}, {}
    if marginals and latents and math.isfinite(log_partition):
        own = {name: leaf for leaves in tree.values() for name, leaf in leaves if name in latents}
        grads = torch.autograd.grad(log_z, [own[n] for n in latents], allow_unused=True)
        for name, grad in zip(latents, grads, strict=True):
            supports[name], margs[name] = _marginal(trace, plain, name, own[name], grad, first_dim)
    for leaves in tree.values():
        for _, leaf in leaves:
            leaf.requires_grad_(False)
    return Elimination(
        log_evidence=scale * log_partition + free,
        log_partition=log_partition,
        scale=scale,
        supports=supports,
        marginals=margs,
        latents=list(latents),
        first_dim=first_dim,
        trace=trace,
        tree=tree,
        sum_dims=sum_dims,
        free_unscaled=free_unscaled,
    )


def _marginal(trace, plain, name, leaf, grad, first_dim):
    site, base = trace.nodes[name], plain.nodes[name]
    event = base["fn"].event_shape
    support = site["value"].detach().reshape((-1,) + event)
    k, batch = support.shape[0], base["fn"].batch_shape
    if grad is None or k == 1:
        return support, torch.ones(batch + (k,), dtype=torch.float64)
    grad._pyro_dims = leaf._pyro_dims
    g = packed.unpack(grad, trace.symbol_to_dim)
    enum_dim = site["infer"]["_enumerate_dim"]
    for d in range(-g.dim(), first_dim + 1):
        if d != enum_dim and g.shape[d] > 1:
            g = g.sum(d, keepdim=True)
    nest = -first_dim - 1
    g = g.movedim(g.dim() + enum_dim, -1)
    g = g.reshape(g.shape[-(nest + 1) :])
    padded = (1,) * (nest - len(batch)) + tuple(batch)
    return support, g.expand(padded + (k,)).reshape(batch + (k,)).clone()


def _indicator(site, value: torch.Tensor) -> torch.Tensor | None:
    """Packed log-indicator of ``site == value`` over its enumerated support; None if never."""
    fn = site["fn"]
    event = len(fn.event_shape)
    support = site["value"]  # enumerated: K values along the site's enum dim
    target = torch.as_tensor(value, dtype=support.dtype, device=support.device)
    try:
        target = target.expand(fn.batch_shape + fn.event_shape)
    except RuntimeError:
        raise ValueError(
            f"the value for site {site['name']!r} has shape {tuple(target.shape)}, which does "
            f"not broadcast to the site's shape {tuple(fn.batch_shape + fn.event_shape)}."
        ) from None
    equal = support == target
    if event:
        equal = equal.flatten(-event).all(-1)
    log_ind = torch.zeros(equal.shape, dtype=torch.float64).masked_fill(~equal, -math.inf)
    enum_dim = site["infer"]["_enumerate_dim"]
    if not bool(equal.any(enum_dim).all()):
        return None  # some element takes a value outside the support
    return packed.pack(log_ind, site["infer"]["_dim_to_symbol"])


def log_prob_of(result: Elimination, assignment: dict[str, Any]) -> float:
    r""":math:`\log p(z_A = a \mid x)` of a (partial) assignment, by a restricted sum."""
    tree = OrderedDict((t, list(leaves)) for t, leaves in result.tree.items())
    for name, value in assignment.items():
        site = result.trace.nodes[name]
        ind = _indicator(site, value)
        if ind is None:
            return -math.inf
        ordinal = frozenset(
            result.trace.plate_to_symbol[f.name] for f in site["cond_indep_stack"] if f.vectorized
        )
        tree.setdefault(ordinal, []).append((name, ind))
    return float(_contract(tree, result.sum_dims)) - result.log_partition


def _support(result: Elimination, name: str) -> torch.Tensor:
    site = result.trace.nodes[name]
    return site["value"].reshape((-1,) + site["fn"].event_shape)


def _log_joint_at_indices(result: Elimination, indices: dict[str, int]) -> float:
    """The enumerated factors' unscaled log joint with every latent at a support index."""
    at_dim = {result.trace.nodes[n]["infer"]["_enumerate_dim"]: i for n, i in indices.items()}
    total = torch.tensor(result.free_unscaled, dtype=torch.float64)
    for leaves in result.tree.values():
        for _, leaf in leaves:
            t = packed.unpack(leaf, result.trace.symbol_to_dim)
            for d in range(-t.dim(), result.first_dim + 1):
                if t.shape[d] > 1:
                    t = t.narrow(d, at_dim[d], 1)
            total = total + t.sum()
    return float(total)


def check(result: Elimination, log_joint_at, plain: tuple[dict, float] | None = None) -> str:
    """ "" if the engine agrees with plain runs at two or three assignments, else why not.

    The assignments are :func:`pvae.exact.runs.check_points`: the plain run's own draw
    ``plain`` (``({site: value}, its unscaled log joint)``, for a model without plates,
    where each latent is one value, and whose latents have a dimension each), every
    latent's first support value and every latent's last. ``log_joint_at(assignment)`` is
    the unscaled log joint of one plain run with every latent set to the given value
    (:func:`pvae.exact.runs.log_joint_at`).
    """
    dims = [result.trace.nodes[n]["infer"]["_enumerate_dim"] for n in result.latents]
    if len(set(dims)) < len(dims):  # pyro.markov recycles dims: one index per dim
        plain = None
    drawn, drawn_score = (None, None) if plain is None else plain
    supports = {n: _support(result, n) for n in result.latents}
    points = [
        (indices, drawn_score if k == 0 else None)
        for k, indices in enumerate(check_points(supports, drawn))
    ]
    for indices, score in points:
        assignment = {n: _support(result, n)[i] for n, i in indices.items()}
        if score is None:
            score = log_joint_at(assignment)
        ours = _log_joint_at_indices(result, indices)
        same = (score == ours) or abs(score - ours) <= 1e-6 * (1 + abs(score))
        if not same and not (math.isinf(score) and math.isinf(ours)):
            return (
                f"at the assignment {dict((k, v.tolist()) for k, v in assignment.items())} "
                f"the enumerated run gives log p = {ours:.6g} and a plain run "
                f"{score:.6g}: the model's Python code does not treat enumerated values as "
                "a batch (control flow on sampled values, or a sum over all elements); "
                "method='sequential' (or 'auto') replays it once per joint assignment"
            )
    return ""
