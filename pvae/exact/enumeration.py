r"""Exact posterior of a Pyro model's discrete latents, by enumeration.

When every unobserved sample site of a model has a finite support, Bayes' rule can be
applied to the whole model: sum the joint :math:`p(x, z)` over every value of :math:`z`
to get the evidence, and divide.

.. math::

    p(z \mid x) = \frac{p(x \mid z)\, p(z)}{p(x)}, \qquad
    \log p(x) = \log \sum_z p(x \mid z)\, p(z).

:func:`enumerate_posterior` does this with one of two engines:

``"parallel"`` (:mod:`pvae.exact.parallel`)
    Pyro's tensor enumeration and variable elimination: plates stay batch dimensions, so
    latents local to ``pyro.plate("data", N)`` cost :math:`O(NK)`, and all marginals come
    from one backward pass.
``"sequential"`` (:mod:`pvae.exact.sequential`)
    Replays the model once for every joint assignment of the latents, so Python control
    flow on sampled values works, and keeps the whole joint table.

``"auto"`` runs the parallel engine and checks it against plain runs of the model; it
falls back to the sequential engine only when the model fails on enumerated tensors or
the check shows that its Python code does not treat them as a batch.
:attr:`ExactPosterior.method` says which engine ran and :attr:`ExactPosterior.reason` why.

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
from pyro import poutine

from pvae import _checks
from pvae.exact import parallel, sequential
from pvae.exact.bayes import bayes_rule
from pvae.exact.posterior import ExactPosterior
from pvae.exact.sites import (
    ScaleError,
    check_observed,
    default_dtype,
    label,
    latent_sites,
    to_float64,
    watch_subsampling,
)

__all__ = ["enumerate_posterior"]

_METHODS = ("auto", "parallel", "sequential")
#: What a model that cannot run on enumerated tensors raises there (and not in a plain run).
_ENUMERATION_ERRORS = (
    RuntimeError,
    ValueError,
    IndexError,
    TypeError,
    NotImplementedError,
    AssertionError,
)


def _impossible() -> ValueError:
    return ValueError(
        "The evidence p(x) is 0: the observed data are impossible under every assignment "
        "of the latent sites. Check the observed values against the model's likelihood."
    )


def enumerate_posterior(
    model: Callable,
    *args: Any,
    method: str = "auto",
    max_states: int = 20_000,
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
    method : {"auto", "parallel", "sequential"}
        The engine (see the module docstring). :attr:`ExactPosterior.method` says which
        ran and :attr:`ExactPosterior.reason` why.
    max_states : int
        Largest number of joint assignments the sequential engine will replay.

    Returns
    -------
    ExactPosterior

    Raises
    ------
    ValueError
        If a latent site has no finite support, a plate subsamples at random, the factors
        of the sum carry different ``poutine.scale`` values, the sequential state space
        exceeds ``max_states``, ``method="parallel"`` meets a model that does not run
        correctly on enumerated tensors, or the evidence is 0.

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
    _checks.callable_arg("model", model, what="a callable Pyro model")
    try:
        args64 = tuple(to_float64(a) for a in args)
        kwargs64 = {k: to_float64(v) for k, v in kwargs.items()}
        return _enumerate(model, args64, kwargs64, method, max_states, torch.float64)
    except RuntimeError as err:  # e.g. a float32 network fed float64 tensors
        dtype = torch.get_default_dtype()
        text = str(err).lower()
        if dtype == torch.float64 or ("dtype" not in text and "double" not in text):
            raise
    return _enumerate(model, args, kwargs, method, max_states, dtype)


def _plain_trace(model, args, kwargs, dtype):
    watched, watch = watch_subsampling(model)
    with default_dtype(dtype), torch.no_grad():
        plain = poutine.trace(watched).get_trace(*args, **kwargs)
    watch.refuse()
    check_observed(plain)
    return plain


def _enumerate(model, args, kwargs, method, max_states, dtype) -> ExactPosterior:
    plain = _plain_trace(model, args, kwargs, dtype)
    latents = latent_sites(plain)
    why = ""
    if method in ("auto", "parallel"):
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
        else:
            if not math.isfinite(result.log_partition):
                raise _impossible()
            why = parallel.check(
                result,
                lambda values: sequential.log_joint_at(model, args, kwargs, values, dtype),
            )
            if why and method == "parallel":
                raise ValueError(f"The parallel engine gives wrong numbers for this model: {why}.")
            if not why:
                return ExactPosterior(
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
    rows = sequential.replay_all(model, args, kwargs, max_states, dtype, why=why)
    joint = rows.log_prior + rows.log_likelihood
    log_z = float(torch.logsumexp(joint, 0))
    if not math.isfinite(log_z):
        raise _impossible()
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
    reason = (
        "" if method == "sequential" else f"auto: the parallel engine could not be used ({why})"
    )
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
