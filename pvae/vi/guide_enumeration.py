r"""Exact sums over a discrete guide's support.

For a guide :math:`q(z)` whose latents all have small finite supports, every expectation
under :math:`q` is a finite sum,

.. math:: \mathbb{E}_q[f(z)] = \sum_{z} q(z)\, f(z),

so the ELBO :math:`\mathbb{E}_q[\log p(x, z) - \log q(z)]` and its gradient are exact.
:func:`enumerate_guide` lays out :math:`\log q(z)` and every term of :math:`\log p(x, z)` on
the guide's support, as a :class:`GuideEnumeration`. Two engines do it: *parallel* uses Pyro's
tensor enumeration (plates stay batch dimensions, so :math:`N` datapoints cost :math:`O(NK)`),
*sequential* replays the model once per joint assignment (Python control flow on sampled values
works). :class:`DiscreteTable` is the categorical over arbitrary support values that guides use
to stand in for a model's ``Bernoulli`` or ``Binomial`` sites.

The guides themselves, and their fitting, live in :mod:`pvae.vi.guides`.

References
----------
1. Obermeyer, F. et al. (2019). Tensor Variable Elimination for Plated Factor Graphs. ICML.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.distributions import constraints
from pyro.infer.enum import iter_discrete_traces
from pyro.poutine.util import prune_subsample_sites

from pvae.exact.posterior import _max_plate_nesting as _trace_plate_nesting

__all__ = ["DiscreteTable", "GuideEnumeration", "enumerate_guide"]


def _replay(model: Callable, guide_trace, args: tuple, kwargs: dict):
    """The model's trace replayed against ``guide_trace`` (subsample sites pruned)."""
    return prune_subsample_sites(
        poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
    )


def _traces(model: Callable, guide: Callable, args: tuple, kwargs: dict):
    """One guide trace and the model replayed against it (subsample sites pruned)."""
    guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
    return _replay(model, guide_trace, args, kwargs), prune_subsample_sites(guide_trace)


def _latents(trace) -> list[str]:
    return [
        name
        for name, site in trace.nodes.items()
        if site["type"] == "sample" and not site["is_observed"]
    ]


def _plate_dims(site) -> frozenset[int]:
    return frozenset(f.dim for f in site["cond_indep_stack"] if f.vectorized and f.dim is not None)


def _max_plate_nesting(model: Callable, guide: Callable, *args: Any, **kwargs: Any) -> int:
    """The number of batch dimensions the plates of ``model`` and ``guide`` use."""
    with poutine.block():
        traces = _traces(model, guide, args, kwargs)
    return max(_trace_plate_nesting(tr) for tr in traces)


def _weighted(w: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    r"""``w * t`` with :math:`0 \cdot t = 0` where the weight is 0 (``t`` may be ``-inf``)."""
    return torch.where(w > 0, w * t, torch.zeros((), dtype=w.dtype))


def _check_guide_covers_model(model_trace, guide_trace) -> None:
    """Raise a ValueError unless the guide samples exactly the model's latent sites."""
    model_latents, guide_latents = set(_latents(model_trace)), set(_latents(guide_trace))
    if model_latents != guide_latents:
        raise ValueError(
            "`guide` must sample exactly the model's latent sites, got model latents "
            f"{sorted(model_latents)} and guide latents {sorted(guide_latents)}. Add the "
            "missing sites to the guide (or observe them in the model)."
        )


class DiscreteTable(dist.TorchDistribution):
    r"""A categorical distribution over arbitrary support values (``values[k]`` with
    probability ``probs[..., k]``), enumerable like :class:`pyro.distributions.Categorical`.

    Its samples have the dtype of ``values``, so a guide can stand in for a model's
    ``Bernoulli`` (float 0/1) or ``Binomial`` site.

    Examples
    --------
    >>> d = DiscreteTable(torch.tensor([0.2, 0.8]), torch.tensor([0.0, 1.0]))
    >>> d.log_prob(torch.tensor(1.0)).exp().item()
    0.800000011920929
    >>> d.enumerate_support().tolist()
    [0.0, 1.0]
    """

    arg_constraints = {"probs": constraints.simplex}
    support = constraints.real
    has_enumerate_support = True

    def __init__(self, probs: torch.Tensor, values: torch.Tensor, validate_args=None):
        self.probs, self.values = probs, values
        super().__init__(probs.shape[:-1], torch.Size(), validate_args=False)

    def expand(self, batch_shape, _instance=None):
        probs = self.probs.expand(torch.Size(batch_shape) + self.probs.shape[-1:])
        return DiscreteTable(probs, self.values)

    def sample(self, sample_shape=()):
        index = torch.distributions.Categorical(probs=self.probs).sample(sample_shape)
        return self.values[index]

    def log_prob(self, value):
        match = (value.unsqueeze(-1) == self.values).to(self.probs.dtype)
        return (match * self.probs).sum(-1).log()

    def enumerate_support(self, expand=True):
        values = self.values.reshape((-1,) + (1,) * len(self.batch_shape))
        return values.expand((-1,) + self.batch_shape) if expand else values


@dataclass(frozen=True)
class GuideEnumeration:
    r"""Every term of :math:`\log q(z)` and :math:`\log p(x, z)` on the guide's support.

    Tensors are float64 and broadcast to one joint shape: enumeration dimensions on the left
    (one per guide site, or one over all joint assignments for the sequential engine), plate
    dimensions on the right.

    Attributes
    ----------
    sites : tuple of str
        The guide's latent sites, in trace order.
    log_q : torch.Tensor
        :math:`\log q(z)` of the joint assignment (per plate element).
    prior_terms, likelihood_terms : tuple of (torch.Tensor, frozenset of int)
        The model's latent-site and observed-site log-probs with the plate dims of each.
    guide_terms : tuple of (torch.Tensor, frozenset of int)
        The guide's site log-probs with their plate dims.
    values : dict
        ``values[site]`` broadcasts against ``log_q``: the site's value in each assignment.
    site_dims : dict
        Plate dims of each guide site.
    num_plate_dims : int
        How many rightmost dims are plate dims.
    method : str
        ``"parallel"`` (Pyro tensor enumeration) or ``"sequential"`` (one replay per assignment).

    Examples
    --------
    Made by :func:`enumerate_guide`; ``e.elbo()``, ``e.marginal(site)``, ``e.joint_tables()``.
    """

    sites: tuple[str, ...]
    log_q: torch.Tensor
    prior_terms: tuple
    likelihood_terms: tuple
    guide_terms: tuple
    values: dict
    site_dims: dict
    num_plate_dims: int
    method: str

    @property
    def q(self) -> torch.Tensor:
        """Joint guide probabilities, the weights of every expectation."""
        return self.log_q.exp()

    @property
    def enum_dims(self) -> tuple[int, ...]:
        """The enumeration dims: all of ``log_q``'s but the ``num_plate_dims`` rightmost."""
        return tuple(range(self.log_q.dim() - self.num_plate_dims))

    def expectation(self, terms) -> float:
        r""":math:`\mathbb{E}_q[\sum_t t]`: sum over enumeration and the term's plates."""
        return float(self._expectation(terms))

    def _expectation(self, terms) -> torch.Tensor:
        q, m, total = self.q, self.num_plate_dims, torch.zeros((), dtype=torch.float64)
        for t, dims in terms:
            prod = _weighted(q, t)
            res = prod.sum(self.enum_dims) if self.enum_dims else prod
            for d in range(-1, -m - 1, -1):
                if res.dim() >= -d:
                    res = res.sum(d, keepdim=True) if d in dims else res.mean(d, keepdim=True)
            total = total + res.sum()
        return total

    def elbo(self) -> torch.Tensor:
        """The exact ELBO as a differentiable float64 scalar tensor."""
        return (
            self._expectation(self.likelihood_terms)
            + self._expectation(self.prior_terms)
            - self._expectation(self.guide_terms)
        )

    def joint_tables(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        r"""Joint :math:`\log p(x, z)` and :math:`\log q(z)` per plate element of the latents.

        Available when every guide site sits in the same plates :math:`D` and every model term
        in (at least) those plates: model terms are summed over their other plates, so the
        tables keep enumeration dims plus the plate dims in :math:`D` (``None`` otherwise).
        ``logsumexp`` of ``log_p`` over the enumeration dims, summed over the rest, is then
        :math:`\log p(x)` restricted to the guide's support.
        """
        dims = set(self.site_dims.values())
        if len(dims) != 1:
            return None
        (keep,) = dims
        if any(not d >= keep for _, d in self.prior_terms + self.likelihood_terms):
            return None
        shape = self.log_q.shape

        def reduce(t: torch.Tensor, own: frozenset) -> torch.Tensor:
            t = t.expand(shape)
            for d in range(-1, -self.num_plate_dims - 1, -1):
                if d not in keep:
                    t = t.sum(d, keepdim=True) if d in own else t.narrow(d, 0, 1)
            return t

        log_p = sum(reduce(t, d) for t, d in self.prior_terms + self.likelihood_terms)
        return log_p, reduce(self.log_q, keep)

    def marginal(self, site: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Support values and guide marginal of ``site``: ``[K]`` or ``[*plates, K]``."""
        q, m = self.q, self.num_plate_dims
        v = self.values[site].expand(q.shape)
        flat_q = q.reshape((-1,) + q.shape[q.dim() - m :]) if m else q.reshape(-1)
        flat_v = v.reshape(flat_q.shape)
        support = torch.unique(flat_v)
        onehot = (flat_v.unsqueeze(-1) == support).to(q.dtype)
        probs = (flat_q.unsqueeze(-1) * onehot).sum(0)
        keep = self.site_dims[site]
        for d in range(-2, -m - 2, -1):  # plate dims sit left of the new K dim
            if d + 1 not in keep and probs.dim() >= -d:
                probs = probs.mean(d, keepdim=True)
        return support, probs.squeeze(tuple(range(probs.dim() - 1))) if probs.dim() > 1 else probs


def _terms(trace, which: str) -> list:
    """``(log_prob, plate dims)`` of the ``"prior"``, ``"likelihood"`` or ``"guide"`` sites.

    Model sites carry their ``poutine.scale`` (Pyro's target, as in ``enumerate_posterior``);
    the guide is a normalized density, so its own scale is left out.
    """
    out = []
    for site in trace.nodes.values():
        if site["type"] != "sample":
            continue
        if which == "guide" or (site["is_observed"] == (which == "likelihood")):
            key = "unscaled_log_prob" if which == "guide" else "log_prob"
            lp = site[key].to(torch.float64)
            out.append((lp, _plate_dims(site)))
    return out


def _force_enumerate(guide: Callable, how: str) -> Callable:
    """Mark every enumerable latent site of ``guide`` for ``how`` enumeration."""

    def config(site):
        if site["is_observed"] or not getattr(site["fn"], "has_enumerate_support", False):
            return {}
        return {"enumerate": how}

    return poutine.infer_config(guide, config)


def _parallel(model, guide, args, kwargs, m: int, cache: dict | None = None) -> GuideEnumeration:
    """Parallel enumeration. With ``cache`` (a dict kept across SVI steps), the model's terms
    are reused while the enumerated guide values are unchanged and the model has no params."""
    enum_guide = poutine.enum(_force_enumerate(guide, "parallel"), first_available_dim=-1 - m)
    guide_trace = prune_subsample_sites(poutine.trace(enum_guide).get_trace(*args, **kwargs))
    guide_trace.compute_log_prob()
    sites = tuple(_latents(guide_trace))
    values = {s: guide_trace.nodes[s]["value"] for s in sites}
    hit = cache is not None and "terms" in cache and cache["values"].keys() == values.keys()
    if hit and all(torch.equal(cache["values"][s], values[s]) for s in sites):
        prior, lik = cache["terms"]
    else:
        model_trace = _replay(model, guide_trace, args, kwargs)
        _check_guide_covers_model(model_trace, guide_trace)
        model_trace.compute_log_prob()
        prior, lik = _terms(model_trace, "prior"), _terms(model_trace, "likelihood")
        has_params = any(site["type"] == "param" for site in model_trace.nodes.values())
        if cache is not None and not has_params:
            cache["values"] = values
            cache["terms"] = (
                [(t.detach(), d) for t, d in prior],
                [(t.detach(), d) for t, d in lik],
            )
    guide_terms = _terms(guide_trace, "guide")
    shape = torch.broadcast_shapes(*(t.shape for t, _ in guide_terms + prior + lik))
    shape = torch.Size((1,) * (m - len(shape))) + shape
    log_q = sum(t for t, _ in guide_terms).expand(shape)
    site_dims = {s: _plate_dims(guide_trace.nodes[s]) for s in sites}
    return GuideEnumeration(
        sites,
        log_q,
        tuple(prior),
        tuple(lik),
        tuple(guide_terms),
        values,
        site_dims,
        m,
        "parallel",
    )


def _sequential(model, guide, args, kwargs, max_states: int) -> GuideEnumeration:
    seq_guide = _force_enumerate(guide, "sequential")
    rows = []
    for count, guide_trace in enumerate(iter_discrete_traces("flat", seq_guide, *args, **kwargs)):
        if count >= max_states:
            raise ValueError(
                f"The guide's joint support has more than `max_states`={max_states} "
                "assignments. Raise `max_states`, or use plates so enumeration can run "
                "in parallel."
            )
        guide_trace = prune_subsample_sites(guide_trace)
        model_trace = _replay(model, guide_trace, args, kwargs)
        _check_guide_covers_model(model_trace, guide_trace)
        for tr in (model_trace, guide_trace):
            tr.compute_log_prob()
            for name in _latents(tr):
                if _plate_dims(tr.nodes[name]):
                    raise ValueError(
                        f"Site {name!r} is inside a plate, which sequential enumeration "
                        "cannot split. Make the model run on enumerated tensors (no Python "
                        "control flow on sampled values)."
                    )
        rows.append(
            (
                {s: guide_trace.nodes[s]["value"] for s in _latents(guide_trace)},
                sum(float(t.sum()) for t, _ in _terms(guide_trace, "guide")),
                sum(float(t.sum()) for t, _ in _terms(model_trace, "prior")),
                sum(float(t.sum()) for t, _ in _terms(model_trace, "likelihood")),
            )
        )
    sites = tuple(rows[0][0])
    col = [torch.tensor([r[i] for r in rows], dtype=torch.float64) for i in (1, 2, 3)]
    values = {s: torch.stack([torch.as_tensor(r[0][s]) for r in rows]) for s in sites}
    return GuideEnumeration(
        sites,
        col[0],
        ((col[1], frozenset()),),
        ((col[2], frozenset()),),
        ((col[0], frozenset()),),
        values,
        {s: frozenset() for s in sites},
        0,
        "sequential",
    )


def enumerate_guide(
    model: Callable,
    guide: Callable,
    *args: Any,
    method: str = "auto",
    max_states: int = 100_000,
    **kwargs: Any,
) -> GuideEnumeration:
    r"""Enumerate a discrete guide's support and score the model on every assignment.

    ``"parallel"`` uses Pyro's tensor enumeration (plates are kept as batch dimensions, so a
    guide over :math:`N` datapoints costs :math:`O(NK)`, not :math:`K^N`); ``"sequential"``
    replays the model once per joint assignment, so models with Python control flow on sampled
    values work; ``"auto"`` tries parallel first.

    Parameters
    ----------
    model, guide : callable
        A Pyro model and a guide sampling exactly the model's latent sites, all discrete.
    *args, **kwargs
        Passed to both.
    method : {"auto", "parallel", "sequential"}
    max_states : int
        Cap on the number of joint assignments for the sequential engine.

    Returns
    -------
    GuideEnumeration

    Raises
    ------
    ValueError
        When a guide site has no finite support, or the guide misses a model latent.

    Examples
    --------
    >>> import pyro
    >>> def model():
    ...     z = pyro.sample("z", dist.Bernoulli(0.3))
    ...     pyro.sample("x", dist.Normal(z, 1.0), obs=torch.tensor(1.0))
    >>> def guide():
    ...     pyro.sample("z", dist.Bernoulli(0.5))
    >>> e = enumerate_guide(model, guide)
    >>> e.sites, e.method, e.q.flatten().tolist()
    (('z',), 'parallel', [0.5, 0.5])
    """
    if method not in ("auto", "parallel", "sequential"):
        raise ValueError(f"`method` must be 'auto', 'parallel' or 'sequential', got {method!r}.")
    with poutine.block():
        model_trace, guide_trace = _traces(model, guide, args, kwargs)
    _check_guide_covers_model(model_trace, guide_trace)
    for name in _latents(guide_trace):
        if not guide_trace.nodes[name]["fn"].has_enumerate_support:
            raise ValueError(
                f"Guide site {name!r} ({type(guide_trace.nodes[name]['fn']).__name__}) has no "
                "finite support to enumerate. Use Monte Carlo instead (continuous latents)."
            )
    m = max(_trace_plate_nesting(tr) for tr in (model_trace, guide_trace))
    with torch.no_grad(), poutine.block():
        if method in ("auto", "parallel"):
            try:
                return _parallel(model, guide, args, kwargs, m)
            except (RuntimeError, ValueError, IndexError, TypeError):
                if method == "parallel":
                    raise
        return _sequential(model, guide, args, kwargs, max_states)
