r"""Exact posterior of a Pyro model's discrete latents, by enumeration.

When every unobserved sample site of a model has a finite support, Bayes' rule can be
applied to the whole model: sum the joint :math:`p(x, z)` over every value of :math:`z`
to get the evidence, and divide.

.. math::

    p(z \mid x) = \frac{p(x \mid z)\, p(z)}{p(x)}, \qquad
    \log p(x) = \log \sum_z p(x \mid z)\, p(z).

:func:`enumerate_posterior` does this with one of three engines:

``"parallel"`` (:mod:`pvae.exact.parallel`)
    Pyro's tensor enumeration and variable elimination: plates stay batch dimensions, so
    latents local to ``pyro.plate("data", N)`` cost :math:`O(NK)`, and all marginals come
    from one backward pass. Every latent needs its own tensor dimension, and torch stops
    at 64.
``"factor"`` (:mod:`pvae.exact.factored`)
    For plate-free models of any size: each site's factor (scope and table) is read off a
    few runs of the model, at most 56 tensor dimensions each, latents of one cardinality
    sharing dimensions where there are more (:mod:`pvae.exact.factors`,
    :mod:`pvae.exact.scopes`), then summed out in float64: small models in one go
    (:mod:`pvae.exact.contraction`), larger ones by a weighted min-fill order
    (:mod:`pvae.exact.elimination`); all marginals from the same pass. The largest
    table the order needs is computed before anything is allocated, and an order that
    needs more than ``max_table`` entries is refused, naming the size and the sites.
``"sequential"`` (:mod:`pvae.exact.sequential`)
    Replays the model once for every joint assignment of the latents, so Python control
    flow on sampled values works, and keeps the whole joint table.

``"auto"`` picks from the model's structure: a model without plates whose sites are
scalars goes to the factor engine (on the bnlearn networks it is as fast as the parallel
engine or faster at every size, since it runs the model without Pyro's trace and
enumeration handlers and sums small models out in one go), any other to the parallel
engine. Either is checked against plain runs of the model at three full assignments
(the plain run's draw, every latent's first support value and its last), and ``"auto"`` falls
back to the sequential engine only when the model fails on enumerated tensors or the check
shows that its Python code does not treat them as a batch (control flow).
:attr:`ExactPosterior.method` says which engine ran and :attr:`ExactPosterior.reason` why.

Probabilities of exactly 0 stay exactly 0 in every engine (torch clamps ``probs`` before
taking logs, which would give :math:`\log p \approx -36`); data of probability 0 under
every assignment raise a ``ValueError`` naming the observed sites, since the posterior is
then undefined.

Masks and scales follow Pyro's ``TraceEnum_ELBO`` (:mod:`pvae.exact.sites`): a latent's own
factor is unmasked and unscaled, masks on observations apply inside the sum over latents and
one common ``poutine.scale`` outside it, so ``log_evidence`` equals
``-TraceEnum_ELBO().loss(model, guide)`` for a guide that samples nothing. All numbers are
float64: the model runs with float64 as the default dtype.

References
----------
1. Obermeyer, F. et al. (2019). Tensor variable elimination for plated factor graphs. ICML.
2. Koller, D. & Friedman, N. (2009). *Probabilistic Graphical Models*, ch. 9-10.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import torch
from pyro.distributions.util import scale_and_mask

from pvae import _checks
from pvae._traces import max_plate_nesting
from pvae.exact import factored, factors, parallel, runs, sequential
from pvae.exact.bayes import bayes_rule
from pvae.exact.elimination import MAX_TABLE
from pvae.exact.posterior import ExactPosterior
from pvae.exact.sites import (
    ScaleError,
    impossible_evidence,
    label,
    latent_sites,
    plain_trace,
    to_float64,
    zero_observed,
)

__all__ = ["enumerate_posterior"]

_METHODS = ("auto", "parallel", "factor", "sequential")
#: Tensor dimensions torch allows; the parallel engine needs one per latent and per plate.
TORCH_MAX_DIMS = 64
#: What a model that cannot run on enumerated tensors raises there (and not in a plain run).
_ENUMERATION_ERRORS = (
    RuntimeError,
    ValueError,
    IndexError,
    TypeError,
    NotImplementedError,
    AssertionError,
)


def enumerate_posterior(
    model: Callable,
    *args: Any,
    method: str = "auto",
    max_states: int = 20_000,
    max_table: int = MAX_TABLE,
    **kwargs: Any,
) -> ExactPosterior:
    r"""Compute the exact posterior of a Pyro model's discrete latent sites.

    .. math::

        p(z \mid x) = \frac{p(x, z)}{\sum_{z'} p(x, z')}

    Parameters
    ----------
    model : callable
        A Pyro model. Observed sites (``obs=``) are the data; every other sample site must
        have a finite support (Bernoulli, Categorical, OneHotCategorical, Binomial, ...).
    *args, **kwargs
        Passed to ``model``; floating-point tensors are cast to float64 first, and the
        model runs with float64 as the default dtype. A model that fails with a dtype
        error under float64 (a float32 network fed float64 tensors) is run again in the
        caller's default dtype, at that dtype's precision.
    method : {"auto", "parallel", "factor", "sequential"}
        The engine (see the module docstring). :attr:`ExactPosterior.method` says which
        ran and :attr:`ExactPosterior.reason` why.
    max_states : int
        Largest number of joint assignments the sequential engine will replay.
    max_table : int
        Largest table (entries) the factor engine may create, :math:`2^{27}` by default
        (1 GiB of float64); the elimination order's largest table is predicted first and
        a larger one refused.

    Returns
    -------
    ExactPosterior

    Raises
    ------
    ValueError
        If a latent site has no finite support, a plate subsamples at random, the factors
        of the sum carry different ``poutine.scale`` values, the sequential state space
        exceeds ``max_states``, the factor engine's order needs a table above
        ``max_table``, ``method="parallel"`` or ``"factor"`` meets a model that does not
        run correctly on enumerated tensors, or the evidence is 0.

    Examples
    --------
    >>> import pyro, pyro.distributions as dist
    >>> def coin(flips):
    ...     fair = pyro.sample("fair", dist.Bernoulli(0.5))
    ...     p = 0.5 if int(fair) == 1 else 0.9
    ...     with pyro.plate("data", len(flips)):
    ...         pyro.sample("x", dist.Bernoulli(p), obs=flips)
    >>> post = enumerate_posterior(coin, torch.tensor([1.0, 1.0, 0.0]))
    >>> post.method, round(post.prob(fair=1), 6), round(post.log_evidence, 6)
    ('sequential', 0.606796, -2.273026)
    """
    _checks.one_of("method", method, _METHODS)
    max_states = _checks.positive_int("max_states", max_states, example=20_000)
    max_table = _checks.positive_int("max_table", max_table, example=MAX_TABLE)
    _checks.callable_arg("model", model, what="a callable Pyro model")
    try:
        args64 = tuple(to_float64(a) for a in args)
        kwargs64 = {k: to_float64(v) for k, v in kwargs.items()}
        return _enumerate(model, args64, kwargs64, method, max_states, max_table, torch.float64)
    except RuntimeError as err:  # e.g. a float32 network fed float64 tensors
        dtype = torch.get_default_dtype()
        text = str(err).lower()
        if dtype == torch.float64 or ("dtype" not in text and "double" not in text):
            raise
    return _enumerate(model, args, kwargs, method, max_states, max_table, dtype)


def _route(plain, latents, method: str) -> tuple[str, str]:
    """(engine to try first, why) from the model's structure."""
    if method != "auto":
        return method, ""
    nesting = max_plate_nesting(plain)
    plated = factors.unsupported(plain)
    dims = len(latents) + nesting
    if not plated:
        why = f"auto: {len(latents)} latent sites and no plates, so the factor engine ran"
        if len(latents) > TORCH_MAX_DIMS:
            why += (
                " (the parallel engine gives every latent its own tensor dimension, and torch"
                f" stops at {TORCH_MAX_DIMS})"
            )
        return "factor", why
    if dims > TORCH_MAX_DIMS:
        return "sequential", (
            f"the parallel engine would need {dims} tensor dimensions ({len(latents)} latent "
            f"sites + {nesting} plate dims), more than torch's {TORCH_MAX_DIMS}, and the factor "
            f"engine takes plate-free models only ({plated}); move latents inside plates, or "
            "drop the plates"
        )
    return "parallel", ""


def _enumerate(model, args, kwargs, method, max_states, max_table, dtype) -> ExactPosterior:
    plain = plain_trace(model, args, kwargs, dtype)
    latents = latent_sites(plain)
    engine, why = _route(plain, latents, method)
    if engine == "factor":
        post, why_not = _factor(model, args, kwargs, plain, latents, dtype, max_table, method)
        if post is not None:
            return dataclasses.replace(post, reason=why if method == "auto" else "")
        why = f"the factor engine could not be used ({why_not})"
    elif engine == "parallel":
        post, why_not = _parallel(model, args, kwargs, plain, latents, dtype, method)
        if post is not None:
            return post
        why = f"the parallel engine could not be used ({why_not})"
    rows = sequential.replay_all(model, args, kwargs, max_states, dtype, why=why)
    joint = rows.log_prior + rows.log_likelihood
    log_z = float(torch.logsumexp(joint, 0))
    if not math.isfinite(log_z):
        raise impossible_evidence([])
    hypotheses = tuple(
        tuple(label(v[n]) if n in v else None for n in rows.sites) for v in rows.values
    )
    table = bayes_rule(
        rows.log_prior.exp(),
        hypotheses=hypotheses,
        log_likelihood=rows.log_likelihood,
        normalize=True,
    )
    underflow = (table.likelihood == 0) & (table.log_likelihood > -math.inf)
    table = dataclasses.replace(table, log_space=bool(underflow.any()))
    reason = "" if method == "sequential" else f"auto: {why}"
    return ExactPosterior(
        sites=rows.sites,
        log_evidence=rows.scale * log_z,
        method="sequential",
        unscaled_log_evidence=log_z,
        reason=reason,
        _supports=rows.supports,
        _marginals=sequential.marginals(rows, table.posterior),
        _table=table,
        _rows=rows,
        _model=model,
        _args=args,
        _kwargs=kwargs,
        _dtype=dtype,
    )


def _parallel(model, args, kwargs, plain, latents, dtype, method):
    """(posterior, "") from the parallel engine, or (None, why it cannot be used)."""
    try:
        result = parallel.eliminate(model, args, kwargs, plain, latents, dtype)
    except ScaleError:
        raise
    except _ENUMERATION_ERRORS as err:
        why = f"{type(err).__name__}: {err}"
        if method == "parallel":
            raise ValueError(
                f"The parallel engine could not run this model on enumerated tensors ({why})."
                " Models with Python control flow on sampled values need "
                "method='sequential'."
            ) from err
        return None, why
    if not math.isfinite(result.log_partition):
        raise impossible_evidence(zero_observed(result.trace))
    drawn = None
    if not max_plate_nesting(plain):  # one value per latent: the plain draw is a test point
        values = {s: plain.nodes[s]["value"].detach() for s in latents}
        drawn = (values, runs.log_joint(runs.from_trace(plain, dtype)))
    why = parallel.check(
        result, lambda values: runs.log_joint_at(model, args, kwargs, values, dtype), drawn
    )
    if why:
        if method == "parallel":
            raise ValueError(f"The parallel engine gives wrong numbers for this model: {why}.")
        return None, why
    if result.log_evidence == -math.inf:  # an observation that depends on no latent
        raise impossible_evidence([])
    post = ExactPosterior(
        sites=tuple(latents),
        log_evidence=result.log_evidence,
        method="parallel",
        unscaled_log_evidence=result.log_partition + result.free_unscaled,
        _supports=result.supports,
        _marginals=result.marginals,
        _elimination=result,
        _model=model,
        _args=args,
        _kwargs=kwargs,
        _dtype=dtype,
    )
    return post, ""


def _factor(model, args, kwargs, plain, latents, dtype, max_table, method):
    """(posterior, "") from the factor engine, or (None, why it cannot be used)."""
    plated = factors.unsupported(plain)
    if plated:
        raise ValueError(
            f"The factor engine takes plate-free models with scalar sites only: {plated}. "
            "Use method='parallel' (plates stay batch dimensions there) or method='auto'."
        )
    try:
        result = factored.eliminate(model, args, kwargs, plain, latents, dtype, max_table)
    except factors.ControlFlow as err:
        if method == "factor":
            raise ValueError(
                f"The factor engine could not read this model's factors ({err}). Models with "
                "Python control flow on sampled values need method='sequential'."
            ) from err
        return None, str(err)
    if not math.isfinite(result.log_partition):
        raise impossible_evidence(
            [
                f.site
                for f in result.factors.factors
                if f.site not in result.supports and bool((f.log_table == -math.inf).any())
            ]
        )
    drawn = {s: plain.nodes[s]["value"].detach() for s in latents}
    why = factors.check(
        result.factors,
        lambda values: runs.log_joint_at(model, args, kwargs, values, dtype),
        (drawn, runs.log_joint(runs.from_trace(plain, dtype))),
    )
    if why:
        if method == "factor":
            raise ValueError(f"The factor engine gives wrong numbers for this model: {why}.")
        return None, why
    if result.factors.free_unscaled == -math.inf:  # an observation that depends on no latent
        kept = {f.site for f in result.factors.factors}
        r = runs.from_trace(plain, dtype)
        with runs.quiet(dtype):
            free = [
                n
                for n, msg in r.sites.items()
                if msg["is_observed"]
                and n not in kept
                and bool((_masked(r, n) == -math.inf).any())
            ]
        raise impossible_evidence(free)
    post = ExactPosterior(
        sites=tuple(latents),
        log_evidence=result.log_evidence,
        method="factor",
        unscaled_log_evidence=result.log_partition + result.factors.free_unscaled,
        _supports=result.supports,
        _marginals=result.marginals,
        _factored=result,
        _model=model,
        _args=args,
        _kwargs=kwargs,
        _dtype=dtype,
    )
    return post, ""


def _masked(r: runs.Run, name: str) -> torch.Tensor:
    return scale_and_mask(r.log_prob(name), mask=r.sites[name]["mask"])
