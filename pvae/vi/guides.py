r"""Mean-field guides for discrete latents, fitted by SVI and by coordinate ascent.

A *guide* :math:`q(z|x)` is the lecture's tractable stand-in for the posterior
:math:`p(z|x)`. :class:`MeanFieldGuide` is the simplest family, one independent categorical
factor per latent site,

.. math:: q(z) = \prod_i q_i(z_i),

built automatically from the model's trace. :func:`fit_guide` trains it with SVI and
:func:`cavi` finds the best mean-field answer by coordinate ascent on the exact joint, so the
two can be checked against each other. Both rest on exact sums over the guide's support
(:mod:`pvae.vi.guide_enumeration`).

References
----------
1. Blei, D. M., Kucukelbir, A. and McAuliffe, J. D. (2017). Variational Inference: A Review
   for Statisticians. JASA 112(518).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import pyro
import torch
from pyro import poutine
from pyro.distributions import constraints
from pyro.infer import SVI
from pyro.poutine.util import prune_subsample_sites

from pvae import _checks, _display
from pvae._progress import ProgressBar
from pvae._seed import seeded
from pvae.vi.guide_enumeration import DiscreteTable, enumerate_guide, scored

__all__ = ["GuideFit", "MeanFieldGuide", "fit_guide", "sample_factors", "uniform_factor"]


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
        Initial factors: uniform, or drawn from a flat Dirichlet.
    seed : int, optional
        Seeds the random initial factors (the caller's generators are left as they were);
        ``None`` draws them from the global generators.

    Examples
    --------
    >>> import pyro.distributions as dist
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
        self,
        model: Callable,
        *args: Any,
        prefix: str = "mf",
        init: str = "uniform",
        seed: int | None = None,
        **kwargs,
    ):
        _checks.one_of("init", init, ("uniform", "random"))
        if not isinstance(prefix, str) or not prefix:
            raise ValueError(f"`prefix` must be a non-empty string, got {prefix!r}.")
        self.seed = _checks.seed("seed", seed)
        with poutine.block(), torch.no_grad(), seeded(seed):
            trace = prune_subsample_sites(poutine.trace(model).get_trace(*args, **kwargs))
        self.prefix, self.init, self.specs = prefix, init, {}
        names = [
            n
            for n, site in trace.nodes.items()
            if site["type"] == "sample"
            and not site["is_observed"]
            and not site["infer"].get("_deterministic")
        ]
        for name in names:
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
            self.specs[name] = (values, tuple(fn.batch_shape), frames)
        self.sites = tuple(self.specs)

    def _probs(self, name: str) -> torch.Tensor:
        """The factor of ``name``: a ``pyro.param`` on the simplex, one row per plate element."""
        values, batch_shape, _ = self.specs[name]
        if self.init == "uniform":
            init = uniform_factor(values, batch_shape)
        else:
            ones = torch.ones(len(values), dtype=_dtype(values))
            with seeded(None if self.seed is None else self.seed + self.sites.index(name)):
                init = torch.distributions.Dirichlet(ones).sample(batch_shape)
        return pyro.param(f"{self.prefix}.{name}", init, constraint=constraints.simplex)

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        return sample_factors(self.specs, self._probs)

    def marginals(self) -> dict[str, torch.Tensor]:
        """Current factor probabilities, ``[K]`` or ``[*plates, K]`` per site (float64)."""
        return {s: self._probs(s).detach().to(torch.float64) for s in self.sites}


def _dtype(values: torch.Tensor) -> torch.dtype:
    """Float dtype for a site's factor: the site's own (a float64 Bernoulli), else the default."""
    return values.dtype if values.is_floating_point() else torch.get_default_dtype()


def uniform_factor(values: torch.Tensor, batch_shape: tuple) -> torch.Tensor:
    """Uniform probabilities over ``values``, one row per element of ``batch_shape``."""
    return torch.full(batch_shape + (len(values),), 1.0 / len(values), dtype=_dtype(values))


def sample_factors(specs: dict, probs: Callable) -> dict[str, torch.Tensor]:
    """Sample each site from ``DiscreteTable(probs(site), values)`` inside the model's plates.

    Each plate is made once per call and re-entered for every site in it, as a model that
    samples several sites in one ``pyro.plate`` does.
    """
    plates: dict[str, pyro.plate] = {}
    out = {}
    for name, (values, _, frames) in specs.items():
        with contextlib.ExitStack() as stack:
            for f in sorted(frames, key=lambda f: f.dim, reverse=True):  # outermost first
                if f.name not in plates:
                    plates[f.name] = pyro.plate(f.name, f.size, dim=f.dim)
                stack.enter_context(plates[f.name])
            out[name] = pyro.sample(
                name, DiscreteTable(probs(name), values), infer={"enumerate": "parallel"}
            )
    return out


class GuideFit(NamedTuple):
    """ELBO history of :func:`fit_guide`: positive-sense, nats, the joint total of the data
    passed (summed over examples), one entry per step; ``method`` is the enumeration engine."""

    elbos: list[float]
    final_elbo: float
    method: str = "parallel"

    __repr__ = _display.record_repr

    def _repr_html_(self) -> str:
        fields = {"final_elbo": self.final_elbo, "steps": len(self.elbos), "method": self.method}
        spark = _display.sparkline(self.elbos)
        extra = f"ELBO per step: {spark}" if spark else ""
        notes = ["nats, the joint total of the data passed"]
        return _display.html_record("GuideFit", fields, notes=notes, extra=extra)


def fit_guide(
    model: Callable,
    guide: Callable,
    *args: Any,
    num_steps: int = 500,
    lr: float = 0.05,
    seed: int | None = 0,
    progress: bool | None = None,
    **kwargs: Any,
) -> GuideFit:
    r"""Fit a discrete guide by SVI with exact, enumerated gradients.

    The loss is the exact negative ELBO of :func:`pvae.vi.guide_enumeration.enumerate_guide`:
    :math:`\mathbb{E}_q[\log p(x,z) - \log q(z)]` is a finite sum over the guide's support,
    so the ELBO and its gradient are exact (zero variance), as with guide-side enumeration
    in :class:`pyro.infer.TraceEnum_ELBO`. The engine (parallel, or sequential for Python
    control flow on sampled values) is chosen once, by the first enumeration.
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
        Seeds the fit (:func:`pvae._seed.seeded`: the caller's generators are restored
        afterwards); ``None`` leaves the generators alone.
    progress : bool, optional
        Progress over the steps (with the ELBO) on stderr, as :func:`pvae.fit` shows it
        (:mod:`pvae._progress`); ``False`` silences it.

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
    num_steps = _checks.positive_int("num_steps", num_steps, example=500)
    lr = _checks.positive_float("lr", lr, example=0.05)
    _checks.seed("seed", seed)
    progress = _checks.optional(_checks.boolean, "progress", progress)
    with seeded(seed):
        e0 = enumerate_guide(model, guide, *args, **kwargs)  # picks the engine, once
        if float(e0.elbo().sum().detach()) == -math.inf:
            raise ValueError(
                "`guide` puts mass on latent values the model gives probability exactly 0, so "
                "its ELBO is -inf, KL(q || p(z | x)) is inf and the gradient is undefined. Use "
                "a guide that can give those values no mass (e.g. a DiscreteTable over the "
                "joint of the coupled sites), or give them a small probability in the model."
            )
    structure = e0.structure

    def loss(model, guide, *args, **kwargs):
        e = scored(model, guide, args, kwargs, structure, e0.method)
        return -e.elbo().sum()

    with seeded(seed):
        svi = SVI(model, guide, pyro.optim.Adam({"lr": lr}), loss=loss)
        elbos = []
        with ProgressBar(progress, num_steps, desc="fit_guide", unit="step") as bar:
            for _ in range(num_steps):
                elbos.append(-float(svi.step(*args, **kwargs)))
                bar.update(elbo=elbos[-1])
        with torch.no_grad():
            final = -float(loss(model, guide, *args, **kwargs))
    return GuideFit(elbos, final, e0.method)


def __getattr__(name: str):
    """pvae 0.1 kept CAVI here (``pvae.guides.cavi``); now :mod:`pvae.vi.coordinate_ascent`."""
    if name in ("cavi", "CAVIResult"):
        from pvae.vi import coordinate_ascent

        return getattr(coordinate_ascent, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
