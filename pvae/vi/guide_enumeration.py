r"""Exact sums over a discrete guide's support.

For a guide :math:`q(z)` whose latents all have small finite supports, every expectation
under :math:`q` is a finite sum,

.. math:: \mathbb{E}_q[f(z)] = \sum_{z} q(z)\, f(z),

so the ELBO :math:`\mathbb{E}_q[\log p(x, z) - \log q(z)]` and its gradient are exact.
:func:`enumerate_guide` scores the model on the guide's whole support, with the conventions
of :mod:`pvae._traces` (masked, unscaled densities; discrete latents the guide leaves to the
model summed out exactly), and returns a :class:`GuideEnumeration`.

Two engines. *Parallel* enumerates the guide with Pyro's tensor enumeration and takes each
expectation by tensor contraction: a term :math:`t` in plates :math:`P` that depends on the
guide sites :math:`S` is weighted by the guide's marginal :math:`q(z_S)` in those plates, so
:math:`N` datapoints cost :math:`O(NK)` and sibling plates that share a dim are never
broadcast against each other. *Sequential* replays the model once per joint assignment of
the guide (Python control flow on sampled values works). ``"auto"`` checks the parallel
engine against a plain run at one assignment and falls back only when they disagree or the
model fails on enumerated tensors; :attr:`GuideEnumeration.reason` says why.

:class:`DiscreteTable` is the categorical over arbitrary support values that guides use to
stand in for a model's ``Bernoulli`` or ``Binomial`` sites. The guides themselves, and their
fitting, live in :mod:`pvae.vi.guides`.

References
----------
1. Obermeyer, F. et al. (2019). Tensor Variable Elimination for Plated Factor Graphs. ICML.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
from pyro import poutine
from pyro.infer.enum import iter_discrete_traces
from pyro.ops import packed
from pyro.ops.contract import contract_tensor_tree
from pyro.poutine.util import site_is_subsample

from pvae import _checks, _traces
from pvae.vi.discrete_table import DiscreteTable
from pvae.vi.enumerated import GuideEnumeration, Term, weighted

__all__ = ["DiscreteTable", "GuideEnumeration", "enumerate_guide", "scored", "weighted"]

_ENGINE_ERRORS = (RuntimeError, ValueError, IndexError, TypeError, NotImplementedError)


def _force_enumerate(guide: Callable, how: str) -> Callable:
    """Mark every enumerable sample site of ``guide`` for ``how`` enumeration."""

    def config(site):
        if site["is_observed"] or not getattr(site["fn"], "has_enumerate_support", False):
            return {}
        return {"enumerate": how}

    return poutine.infer_config(guide, config)


def _ordinal(trace, site) -> frozenset:
    return frozenset(
        trace.plate_to_symbol[f.name] for f in site["cond_indep_stack"] if f.vectorized
    )


def _sample_sites(trace):
    for name, site in trace.nodes.items():
        if site["type"] == "sample" and not site_is_subsample(site):
            if not site["infer"].get("_deterministic"):
                yield name, site


def _parallel(model, guide, args, kwargs, structure) -> GuideEnumeration:
    nesting = structure.nesting
    guide_fn = poutine.enum(_force_enumerate(guide, "parallel"), first_available_dim=-1 - nesting)
    model_fn = _traces.enumerate_model_sites(model, structure, None)
    if not structure.enumerated:  # the model still needs the enumeration's dim bookkeeping
        model_fn = poutine.enum(model_fn)
    guide_trace = poutine.trace(guide_fn).get_trace(*args, **kwargs)
    model_trace = poutine.trace(poutine.replay(model_fn, trace=guide_trace)).get_trace(
        *args, **kwargs
    )
    for tr in (model_trace, guide_trace):
        tr.compute_log_prob()
        _traces.exact_log_probs(tr)
    model_trace.pack_tensors()
    guide_trace.pack_tensors(model_trace.plate_to_symbol)
    weights, weight_dims, guideterms, values = OrderedDict(), set(), [], {}
    for name, site in _sample_sites(guide_trace):
        if site["infer"].get("_enumerate_dim") is None:
            raise ValueError(f"guide site {name!r} could not be enumerated in parallel")
        symbol = site["infer"]["_enumerate_symbol"]
        weight_dims.add(symbol)
        ordinal = _ordinal(guide_trace, site)
        weights.setdefault(ordinal, []).append(site["packed"]["unscaled_log_prob"])
        cost = packed.scale_and_mask(
            site["packed"]["unscaled_log_prob"], mask=site["packed"]["mask"]
        )
        guideterms.append(Term(cost, ordinal))
        fn = site["fn"]
        enum_dim = site["infer"]["_enumerate_dim"]
        values[name] = (symbol, ordinal, enum_dim, site["value"], fn.batch_shape, fn.event_shape)
    enumerated = set(structure.enumerated)
    model_dims = {model_trace.nodes[n]["infer"]["_enumerate_symbol"] for n in enumerated}
    joint, prior = [], []
    dep_joint, dep_prior = OrderedDict(), OrderedDict()
    for name, site in _sample_sites(model_trace):
        ordinal = _ordinal(model_trace, site)
        if name in enumerated:
            term = site["packed"]["unscaled_log_prob"]
        else:
            term = packed.scale_and_mask(
                site["packed"]["unscaled_log_prob"], mask=site["packed"]["mask"]
            )
        latent = not site["is_observed"]
        if model_dims.isdisjoint(term._pyro_dims):
            joint.append(Term(term, ordinal))
            if latent:
                prior.append(Term(term, ordinal))
            continue
        dep_joint.setdefault(ordinal, []).append(term)
        if latent:
            dep_prior.setdefault(ordinal, []).append(term)
    for tree, out in ((dep_joint, joint), (dep_prior, prior)):
        if tree:
            for ordinal, terms in contract_tensor_tree(tree, set(model_dims)).items():
                out.extend(Term(t, ordinal) for t in terms)
    symbol_to_dim = {**guide_trace.symbol_to_dim, **model_trace.symbol_to_dim}
    weightterms = [Term(t, o) for o, ts in weights.items() for t in ts]
    return GuideEnumeration(
        sites=tuple(values),
        method="parallel",
        reason="",
        per_example=structure.per_example,
        num_examples=structure.num_examples,
        structure=structure,
        terms={"joint": joint, "prior": prior, "guide": guideterms, "weights": weightterms},
        weights=weights,
        weight_dims=weight_dims,
        symbol_to_dim=symbol_to_dim,
        values=values,
    )


def _check(e: GuideEnumeration, model, guide, args, kwargs) -> str:
    """ "" when the parallel terms at the first guide assignment match a plain run there."""
    values = {}
    for name, (_, _, _, value, batch, event) in e.values.items():
        support = value.reshape((-1,) + tuple(event))
        values[name] = support[0].expand(tuple(batch) + tuple(event))
    structure = e.structure._replace(per_example=False)
    guide_fixed = poutine.Trace()
    for name, value in values.items():
        guide_fixed.add_node(name, type="sample", is_observed=False, value=value, infer={})
    guide_trace = poutine.trace(poutine.replay(guide, trace=guide_fixed)).get_trace(
        *args, **kwargs
    )
    model_fn = _traces.enumerate_model_sites(model, structure, -1 - structure.nesting)
    model_trace = poutine.trace(poutine.replay(model_fn, trace=guide_trace)).get_trace(
        *args, **kwargs
    )
    lik, prior, _ = _traces.site_terms(structure, guide_trace, model_trace, structure.nesting, [])
    plain = float(lik + prior)
    total = 0.0
    for term in e.terms["joint"]:
        t = e.dense(term.tensor)
        for symbol in e.weight_dims.intersection(term.tensor._pyro_dims):
            d = e.symbol_to_dim[symbol]
            t = t.narrow(d, 0, 1)
        total += float(t.sum())
    if plain == total or abs(plain - total) <= 1e-6 * (1 + abs(plain)):
        return ""
    if math.isinf(plain) and math.isinf(total):
        return ""
    return (
        f"at the guide's first assignment the enumerated run gives log p = {total:.6g} and a "
        f"plain run {plain:.6g}: the model's Python code does not treat enumerated values as "
        "a batch"
    )


def _sequential(model, guide, args, kwargs, structure, max_states: int, why: str):
    for name in structure.guide_sites:
        if structure.site_plates.get(name):
            raise ValueError(
                f"Guide site {name!r} is inside a plate, which sequential enumeration cannot "
                "split (it would give every element the same value). Make the model run on "
                f"enumerated tensors (no Python control flow on sampled values). {why}".strip()
            )
    seq_guide = _force_enumerate(guide, "sequential")
    rows = []
    flat = structure._replace(per_example=False)
    model_fn = _traces.enumerate_model_sites(model, flat, -1 - flat.nesting)
    for count, guide_trace in enumerate(iter_discrete_traces("flat", seq_guide, *args, **kwargs)):
        if count >= max_states:
            raise ValueError(
                f"The guide's joint support has more than `max_states`={max_states} "
                "assignments. Raise `max_states`, or use plates so enumeration can run "
                "in parallel."
            )
        model_trace = poutine.trace(poutine.replay(model_fn, trace=guide_trace)).get_trace(
            *args, **kwargs
        )
        lik, prior, cost = _traces.site_terms(flat, guide_trace, model_trace, flat.nesting, [])
        log_w = sum(
            s["unscaled_log_prob"].to(torch.float64).sum() for _, s in _sample_sites(guide_trace)
        )
        rows.append(
            (
                {n: guide_trace.nodes[n]["value"] for n in structure.guide_sites},
                log_w,
                lik,
                prior,
                cost,
            )
        )
    q = torch.stack([torch.as_tensor(r[1], dtype=torch.float64) for r in rows]).exp()
    cols = tuple(torch.stack([r[i] for r in rows]) for i in (2, 3, 4))
    values = {
        n: torch.stack([torch.as_tensor(r[0][n]) for r in rows]) for n in structure.guide_sites
    }
    return GuideEnumeration(
        sites=tuple(structure.guide_sites),
        method="sequential",
        reason=why,
        per_example=False,
        num_examples=structure.num_examples,
        structure=flat,
        values=values,
        rows=(q, cols),
    )


def scored(model, guide, args, kwargs, structure, method: str) -> GuideEnumeration:
    """The enumeration by a given engine, without checks (a training step's loss)."""
    if method == "parallel":
        return _parallel(model, guide, args, kwargs, structure)
    return _sequential(model, guide, args, kwargs, structure, 100_000, "")


def enumerate_guide(
    model: Callable,
    guide: Callable,
    *args: Any,
    method: str = "auto",
    max_states: int = 100_000,
    **kwargs: Any,
) -> GuideEnumeration:
    r"""Enumerate a discrete guide's support and score the model on every assignment.

    Parameters
    ----------
    model, guide : callable
        A Pyro model and a guide whose sites are all discrete. Continuous model latents
        must be in the guide; discrete ones the guide leaves out are summed out exactly.
    *args, **kwargs
        Passed to both.
    method : {"auto", "parallel", "sequential"}
        See the module docstring.
    max_states : int
        Cap on the number of joint assignments for the sequential engine.

    Returns
    -------
    GuideEnumeration

    Raises
    ------
    ValueError
        When a guide site has no finite support, or the pair does not match (see
        :func:`pvae._traces.inspect`).

    Examples
    --------
    >>> import pyro, pyro.distributions as dist
    >>> def model():
    ...     z = pyro.sample("z", dist.Bernoulli(0.3))
    ...     pyro.sample("x", dist.Normal(z, 1.0), obs=torch.tensor(1.0))
    >>> def guide():
    ...     pyro.sample("z", dist.Bernoulli(0.5))
    >>> e = enumerate_guide(model, guide)
    >>> e.sites, e.method, e.marginal("z")[1].tolist()
    (('z',), 'parallel', [0.5, 0.5])
    """
    _checks.one_of("method", method, ("auto", "parallel", "sequential"))
    max_states = _checks.positive_int("max_states", max_states, example=100_000)
    structure = _traces.inspect(model, guide, args, kwargs)
    with poutine.block():
        trace = poutine.trace(guide).get_trace(*args, **kwargs)
    for name, site in _sample_sites(trace):
        if not getattr(site["fn"], "has_enumerate_support", False):
            raise ValueError(
                f"Guide site {name!r} ({type(site['fn']).__name__}) has no finite support to "
                "enumerate. Use Monte Carlo instead (continuous latents)."
            )
    why = ""
    with poutine.block():
        if method in ("auto", "parallel"):
            try:
                e = _parallel(model, guide, args, kwargs, structure)
                with torch.no_grad():
                    why = _check(e, model, guide, args, kwargs)
            except _ENGINE_ERRORS as err:
                if method == "parallel":
                    raise
                why = f"the parallel engine failed ({type(err).__name__}: {err})"
            else:
                if not why:
                    return e
                if method == "parallel":
                    raise ValueError(
                        f"The parallel engine gives wrong numbers for this model: {why}."
                    )
        return _sequential(model, guide, args, kwargs, structure, max_states, why)
