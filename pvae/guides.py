r"""Guides for discrete latents: exact enumeration, a mean-field guide, SVI and CAVI.

A *guide* :math:`q(z|x)` is the lecture's tractable stand-in for the posterior
:math:`p(z|x)`. For discrete latents with small supports everything about a guide can be
computed exactly by enumerating its support (:func:`enumerate_guide`). :class:`MeanFieldGuide`
is the simplest family, one independent categorical factor per latent site,

.. math:: q(z) = \prod_i q_i(z_i),

built automatically from the model's trace. :func:`fit_guide` trains it with SVI and
:func:`cavi` finds the best mean-field answer by coordinate ascent on the exact joint, so the
two can be checked against each other.

References
----------
1. Blei, D. M., Kucukelbir, A. and McAuliffe, J. D. (2017). Variational Inference: A Review
   for Statisticians. JASA 112(518).
2. Obermeyer, F. et al. (2019). Tensor Variable Elimination for Plated Factor Graphs. ICML.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.distributions import constraints
from pyro.infer import SVI
from pyro.infer.enum import iter_discrete_traces
from pyro.poutine.util import prune_subsample_sites

from pvae.exact import _max_plate_nesting as _trace_plate_nesting

__all__ = [
    "DiscreteTable",
    "GuideEnumeration",
    "MeanFieldGuide",
    "CAVIResult",
    "GuideFit",
    "enumerate_guide",
    "fit_guide",
    "cavi",
]


def _traces(model: Callable, guide: Callable, args: tuple, kwargs: dict):
    """One guide trace and the model replayed against it (subsample sites pruned)."""
    guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
    model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(
        *args, **kwargs
    )
    return prune_subsample_sites(model_trace), prune_subsample_sites(guide_trace)


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


def _terms(trace, which: str, m: int) -> list:
    out = []
    for site in trace.nodes.values():
        if site["type"] != "sample":
            continue
        if which == "guide" or (site["is_observed"] == (which == "likelihood")):
            lp = site["log_prob"].to(torch.float64) * site["scale"]
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
        model_trace = prune_subsample_sites(
            poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
        )
        _check_guide_covers_model(model_trace, guide_trace)
        model_trace.compute_log_prob()
        prior, lik = _terms(model_trace, "prior", m), _terms(model_trace, "likelihood", m)
        has_params = any(site["type"] == "param" for site in model_trace.nodes.values())
        if cache is not None and not has_params:
            cache["values"] = values
            cache["terms"] = (
                [(t.detach(), d) for t, d in prior],
                [(t.detach(), d) for t, d in lik],
            )
    guide_terms = _terms(guide_trace, "guide", m)
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
        model_trace = prune_subsample_sites(
            poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
        )
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
                sum(float(t.sum()) for t, _ in _terms(guide_trace, "guide", 0)),
                sum(float(t.sum()) for t, _ in _terms(model_trace, "prior", 0)),
                sum(float(t.sum()) for t, _ in _terms(model_trace, "likelihood", 0)),
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
    m = _max_plate_nesting(model, guide, *args, **kwargs)
    with torch.no_grad():
        return _enumerate(model, guide, args, kwargs, method, m, max_states)


def _enumerate(model, guide, args, kwargs, method, m, max_states) -> GuideEnumeration:
    if method in ("auto", "parallel"):
        try:
            with poutine.block():
                return _parallel(model, guide, args, kwargs, m)
        except (RuntimeError, ValueError, IndexError, TypeError):
            if method == "parallel":
                raise
    with poutine.block():
        return _sequential(model, guide, args, kwargs, max_states)


class MeanFieldGuide:
    r"""Automatic mean-field guide: one categorical factor per discrete latent site.

    .. math:: q(z) = \prod_i q_i(z_i), \qquad q_i = \mathrm{Categorical}(\pi_i)

    The sites, their supports and their plates are read from one trace of ``model``; each
    factor's probabilities :math:`\pi_i` are a ``pyro.param`` named ``"{prefix}.{site}"``
    constrained to the simplex, with one row per plate element. Sites are marked
    ``infer={"enumerate": "parallel"}``, so :class:`pyro.infer.TraceEnum_ELBO` (or
    :func:`fit_guide`) sums over the guide's support exactly.

    Parameters
    ----------
    model : callable
        A Pyro model whose latent sites all have finite support (scalar values).
    *args, **kwargs
        Model arguments used for the structure-finding trace.
    prefix : str
        Parameter-name prefix; use different prefixes for guides that must coexist.
    init : {"uniform", "random"}
        Initial factors: uniform, or drawn from a flat Dirichlet (seeded by the caller).

    Examples
    --------
    >>> def model():
    ...     a = pyro.sample("a", dist.Bernoulli(0.3))
    ...     pyro.sample("x", dist.Bernoulli(0.9 * a + 0.1 * (1 - a)), obs=torch.tensor(1.0))
    >>> guide = MeanFieldGuide(model)
    >>> guide.sites
    ('a',)
    >>> guide.marginals()["a"].tolist()
    [0.5, 0.5]
    """

    def __init__(
        self, model: Callable, *args: Any, prefix: str = "mf", init: str = "uniform", **kwargs
    ):
        if init not in ("uniform", "random"):
            raise ValueError(f"`init` must be 'uniform' or 'random', got {init!r}.")
        with poutine.block():
            trace = prune_subsample_sites(poutine.trace(model).get_trace(*args, **kwargs))
        self.prefix, self.init, self._specs = prefix, init, {}
        for name in _latents(trace):
            site = trace.nodes[name]
            fn = site["fn"]
            if not fn.has_enumerate_support or fn.event_shape:
                raise ValueError(
                    f"`MeanFieldGuide` needs scalar discrete latent sites, got {name!r} "
                    f"({type(fn).__name__}, event shape {tuple(fn.event_shape)}). Use an "
                    "AutoGuide from pyro.infer.autoguide for continuous latents."
                )
            values = fn.enumerate_support(expand=False).reshape(-1)
            frames = [f for f in site["cond_indep_stack"] if f.vectorized]
            self._specs[name] = (values, tuple(fn.batch_shape), frames)
        self.sites = tuple(self._specs)

    def _probs(self, name: str) -> torch.Tensor:
        values, batch_shape, _ = self._specs[name]
        k = len(values)
        if self.init == "uniform":
            init = torch.full(batch_shape + (k,), 1.0 / k)
        else:
            init = torch.distributions.Dirichlet(torch.ones(k)).sample(batch_shape)
        return pyro.param(f"{self.prefix}.{name}", init, constraint=constraints.simplex)

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        out = {}
        for name, (values, _, frames) in self._specs.items():
            with _plates(frames):
                out[name] = pyro.sample(
                    name,
                    DiscreteTable(self._probs(name), values),
                    infer={"enumerate": "parallel"},
                )
        return out

    def marginals(self) -> dict[str, torch.Tensor]:
        """Current factor probabilities, ``[K]`` or ``[*plates, K]`` per site (float64)."""
        return {s: self._probs(s).detach().to(torch.float64) for s in self.sites}


def _plates(frames) -> contextlib.ExitStack:
    """Re-enter the model's plates (outermost first) around a guide site."""
    stack = contextlib.ExitStack()
    for f in sorted(frames, key=lambda f: f.dim, reverse=True):
        stack.enter_context(pyro.plate(f.name, f.size, dim=f.dim))
    return stack


class GuideFit(NamedTuple):
    """ELBO history of :func:`fit_guide` (positive-sense, nats), one entry per step."""

    elbos: list[float]
    final_elbo: float


def fit_guide(
    model: Callable,
    guide: Callable,
    *args: Any,
    num_steps: int = 500,
    lr: float = 0.05,
    seed: int | None = 0,
    **kwargs: Any,
) -> GuideFit:
    r"""Fit a discrete guide by SVI with exact, enumerated gradients.

    The loss is the exact negative ELBO of :func:`enumerate_guide`: the guide's sites are
    enumerated in parallel and :math:`\mathbb{E}_q[\log p(x,z) - \log q(z)]` is a finite sum
    over the guide's support, so the ELBO and its gradient are exact (zero variance). This is
    the estimator :class:`pyro.infer.TraceEnum_ELBO` uses for guide-side enumeration, without
    its general tensor-contraction machinery (several times slower on these tiny models); when
    the model has no parameters its log-probabilities on the guide's support are computed once
    and reused, so each step only re-runs the guide.
    The alternative, :class:`pyro.infer.Trace_ELBO`, would sample :math:`z` and use the
    score-function (REINFORCE) estimator :math:`\nabla \log q(z)\,(\log p - \log q)`,
    unbiased but with high variance, so convergence to 1e-3 would need many more steps and a
    decaying step size.

    Parameters
    ----------
    model, guide : callable
        Pyro model and a guide whose sites are all discrete and enumerable.
    *args, **kwargs
        Passed to model and guide (toy models take none).
    num_steps : int
        Adam steps.
    lr : float
        Adam learning rate.
    seed : int or None
        Seed for ``pyro.set_rng_seed``; ``None`` leaves the generators alone.

    Returns
    -------
    GuideFit

    Examples
    --------
    >>> from pvae import toy
    >>> guide = MeanFieldGuide(toy.medical_test)
    >>> r = fit_guide(toy.medical_test, guide, num_steps=200, lr=0.2)
    >>> round(guide.marginals()["disease"][1].item(), 3)  # exact: 0.008 / 0.10304
    0.078
    """
    if num_steps < 1:
        raise ValueError(f"`num_steps` must be a positive integer, got {num_steps}.")
    if seed is not None:
        pyro.set_rng_seed(seed)
    m = _max_plate_nesting(model, guide, *args, **kwargs)
    cache: dict = {}  # the model's log-probs on the guide's support, if the model is fixed

    def loss(model, guide, *args, **kwargs):
        return -_parallel(model, guide, args, kwargs, m, cache).elbo()

    svi = SVI(model, guide, pyro.optim.Adam({"lr": lr}), loss=loss)
    elbos = [-float(svi.step(*args, **kwargs)) for _ in range(num_steps)]
    with torch.no_grad():
        final = -float(loss(model, guide, *args, **kwargs))
    return GuideFit(elbos, final)


class CAVIResult(NamedTuple):
    r"""Best mean-field answer found by coordinate ascent (see :func:`cavi`).

    ``marginals[site]`` is the factor :math:`q_i` over ``supports[site]`` (float64);
    ``elbo`` its ELBO, ``kl`` :math:`\mathrm{KL}(q \,\|\, p(z|x)) = \log p(x) - \mathrm{ELBO}`,
    ``log_evidence`` :math:`\log p(x)`, ``num_iterations`` the sweeps of the best start.
    """

    marginals: dict
    supports: dict
    elbo: float
    kl: float
    log_evidence: float
    num_iterations: int


def _joint_table(model: Callable, args: tuple, kwargs: dict):
    r"""Dense :math:`\log p(x, z)` over the joint support of the model's latents.

    The guide's parallel enumeration of a uniform mean-field guide lays out the whole table
    in one pass. (:func:`pvae.exact.enumerate_posterior` contracts the factors without
    building the table in its parallel engine and replays the model once per cell in its
    sequential one, 16 times slower at 4096 cells.)
    """
    specs = MeanFieldGuide(model, *args, **kwargs)._specs

    def uniform(*a, **k):
        for name, (values, batch_shape, frames) in specs.items():
            probs = torch.full(batch_shape + (len(values),), 1.0 / len(values))
            with _plates(frames):
                pyro.sample(name, DiscreteTable(probs, values), infer={"enumerate": "parallel"})

    e = enumerate_guide(model, uniform, *args, **kwargs)
    if any(e.site_dims[s] for s in e.sites):
        raise ValueError(
            "`cavi` needs latent sites outside plates; got plated sites "
            f"{[s for s in e.sites if e.site_dims[s]]}."
        )
    supports = {s: specs[s][0] for s in e.sites}
    shape = tuple(len(supports[s]) for s in e.sites)
    log_p = e.joint_tables()[0]
    log_p = log_p.reshape(log_p.shape[: log_p.dim() - e.num_plate_dims])
    if e.method == "parallel":
        log_p = log_p.expand(e.log_q.shape[: e.log_q.dim() - e.num_plate_dims])
        log_p = log_p.reshape(log_p.shape[log_p.dim() - len(shape) :])
        # site i was enumerated at dim -(i + 1): reverse so axis i belongs to site i
        table = log_p.permute(tuple(reversed(range(log_p.dim())))).reshape(shape)
    else:
        table = torch.full(shape, -math.inf, dtype=torch.float64)
        index = [
            (e.values[s].unsqueeze(-1) == supports[s]).to(torch.long).argmax(-1) for s in e.sites
        ]
        table[tuple(index)] = log_p
    return e.sites, supports, table


def _expect_except(table: torch.Tensor, qs: list, i: int) -> torch.Tensor:
    w = torch.ones((), dtype=torch.float64)
    for j, q in enumerate(qs):
        if j != i:
            shape = [1] * len(qs)
            shape[j] = -1
            w = w * q.reshape(shape)
    prod = _weighted(w.expand(table.shape), table)
    others = [j for j in range(len(qs)) if j != i]
    return prod.sum(others) if others else prod


def cavi(
    model: Callable,
    *args: Any,
    num_restarts: int = 10,
    max_iterations: int = 1000,
    tol: float = 1e-12,
    seed: int = 0,
    **kwargs: Any,
) -> CAVIResult:
    r"""Best mean-field approximation by coordinate-ascent variational inference (CAVI).

    On the exact joint table :math:`\log p(x, z)` each factor is set in turn to

    .. math:: q_i(z_i) \propto \exp \mathbb{E}_{q_{-i}}[\log p(x, z)],

    which never decreases the ELBO. The ELBO is not concave in the factors, so the search is
    restarted from ``num_restarts`` random points (and the uniform one) and the best kept.

    Parameters
    ----------
    model : callable
        Pyro model whose latents are discrete, scalar and outside plates.
    *args, **kwargs
        Model arguments.
    num_restarts : int
        Random restarts besides the uniform start.
    max_iterations : int
        Sweeps per start.
    tol : float
        Stop when no factor moves more than this (max absolute change).
    seed : int
        Seed of the random starts.

    Returns
    -------
    CAVIResult

    Examples
    --------
    >>> from pvae import toy
    >>> r = cavi(toy.burglary_alarm)  # mean field cannot explain away: KL > 0
    >>> round(r.kl, 3), round(r.log_evidence - r.elbo - r.kl, 12)
    (0.476, 0.0)
    """
    sites, supports, table = _joint_table(model, args, kwargs)
    log_z = float(torch.logsumexp(table.reshape(-1), 0))
    gen = torch.Generator().manual_seed(seed)
    best = None
    for start in range(num_restarts + 1):
        qs = []
        for k in table.shape:
            if start == 0:
                qs.append(torch.full((k,), 1.0 / k, dtype=torch.float64))
            else:
                g = -torch.rand(k, generator=gen, dtype=torch.float64).log()
                qs.append(g / g.sum())
        it = 0
        for it in range(1, max_iterations + 1):  # noqa: B007
            change = 0.0
            for i in range(len(qs)):
                new = torch.softmax(_expect_except(table, qs, i), 0)
                change = max(change, float((new - qs[i]).abs().max()))
                qs[i] = new
            if change < tol:
                break
        log_q = sum(
            torch.log(q).reshape([-1 if j == i else 1 for j in range(len(qs))])
            for i, q in enumerate(qs)
        )
        q = log_q.exp()
        elbo = float(_weighted(q, table - log_q).sum())
        if best is None or elbo > best[0] + 1e-12:
            best = (elbo, qs, it)
    elbo, qs, it = best
    marginals = dict(zip(sites, qs, strict=True))
    return CAVIResult(marginals, supports, elbo, log_z - elbo, log_z, it)
