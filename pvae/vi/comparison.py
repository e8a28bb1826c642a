r"""The ELBO identity, and variational answers checked against exact ones.

For any guide :math:`q(z|x)` the log evidence splits into the evidence lower bound and the
KL divergence from :math:`q` to the true posterior,

.. math::

    \log p(x) = \underbrace{\mathbb{E}_{q(z|x)}[\log p(x, z) - \log q(z|x)]}_{\mathrm{ELBO}(q)}
    + \mathrm{KL}(q(z|x) \,\|\, p(z|x)),

and the ELBO itself splits into the lecture's two terms,

.. math::

    \mathrm{ELBO}(q) = \underbrace{\mathbb{E}_{q(z|x)}[\log p(x|z)]}_{\text{reconstruction}}
    - \mathrm{KL}(q(z|x) \,\|\, p(z)).

:func:`elbo_decomposition` computes every term: exactly, by summing over the guide's support,
when all latents are discrete; by Monte Carlo (with standard errors) otherwise.
:func:`compare` puts an exact posterior and a guide side by side.

References
----------
1. Kingma, D. P. and Welling, M. (2014). Auto-Encoding Variational Bayes. ICLR.
2. Blei, D. M., Kucukelbir, A. and McAuliffe, J. D. (2017). Variational Inference: A Review
   for Statisticians. JASA 112(518).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyro
import torch
from pyro import poutine
from pyro.poutine.util import prune_subsample_sites

from pvae.exact import enumerate_posterior
from pvae.vi.divergence import kl_divergence, total_variation
from pvae.vi.guide_enumeration import (
    _latents,
    _max_plate_nesting,
    _traces,
    _weighted,
    enumerate_guide,
)

__all__ = ["Comparison", "ELBODecomposition", "compare", "elbo_decomposition"]


@dataclass(frozen=True)
class ELBODecomposition:
    r"""The terms of :math:`\log p(x) = \mathrm{ELBO} + \mathrm{KL}(q \,\|\, p(z|x))`, in nats.

    Attributes
    ----------
    log_evidence : float or None
        :math:`\log p(x)`; ``None`` when it could not be computed (see ``evidence_method``).
    elbo : float
        :math:`\mathbb{E}_q[\log p(x, z) - \log q(z|x)]` (positive sense: higher is better).
    kl : float or None
        :math:`\mathrm{KL}(q(z|x) \,\|\, p(z|x)) = \log p(x) - \mathrm{ELBO}`.
    reconstruction : float
        :math:`\mathbb{E}_q[\log p(x|z)]`: the expected log-probability of the model's
        *observed* sites.
    kl_prior : float
        :math:`\mathrm{KL}(q(z|x) \,\|\, p(z)) = \mathbb{E}_q[\log q(z|x) - \log p(z)]`, with
        :math:`p(z)` the product of the model's *latent* sites' log-probabilities.
    elbo_se, reconstruction_se, kl_prior_se : float
        Monte Carlo standard errors (0.0 when exact). ``kl`` has the same standard error as
        ``elbo`` when ``log_evidence`` is exact.
    method : str
        ``"enumeration"`` (exact sums over the guide's support) or ``"monte_carlo"``.
    evidence_method : str
        ``"enumeration"``, ``"given"``, ``"analytic"`` (the model's ``log_evidence`` attribute),
        ``"quadrature"`` or ``"unavailable"``.
    num_particles : int
        Guide samples of the Monte Carlo estimate (0 when exact).

    Examples
    --------
    >>> d = ELBODecomposition(-1.0, -1.5, 0.5, -1.2, 0.3)
    >>> d.reconstruction - d.kl_prior == d.elbo
    True
    """

    log_evidence: float | None
    elbo: float
    kl: float | None
    reconstruction: float
    kl_prior: float
    elbo_se: float = 0.0
    reconstruction_se: float = 0.0
    kl_prior_se: float = 0.0
    method: str = "enumeration"
    evidence_method: str = "given"
    num_particles: int = 0

    def __str__(self) -> str:
        def fmt(v, se=0.0):
            if v is None:
                return "unavailable"
            return f"{v: .6f}" + (f" ± {se:.2g}" if se else "")

        rows = [
            ("log p(x)", fmt(self.log_evidence), self.evidence_method),
            ("ELBO", fmt(self.elbo, self.elbo_se), self.method),
            ("KL(q || p(z|x))", fmt(self.kl, self.elbo_se if self.kl is not None else 0), ""),
            ("E_q[log p(x|z)]", fmt(self.reconstruction, self.reconstruction_se), ""),
            ("KL(q || p(z))", fmt(self.kl_prior, self.kl_prior_se), ""),
        ]
        return "\n".join(f"{a:<17} {b:<24} {c}".rstrip() for a, b, c in rows)


def _reduce(lp: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Sum a log-prob over its plate dims, keeping the particle dim at ``-1 - m``."""
    lp = lp.to(torch.float64)
    while lp.dim() < m + 1:
        lp = lp.unsqueeze(0)
    out = lp.reshape(lp.shape[: lp.dim() - m] + (-1,)).sum(-1)
    return out.expand(n) if out.shape == (1,) else out.reshape(n)


def _vectorize(fn: Callable, n: int, m: int, name: str) -> Callable:
    def vectorized(*args, **kwargs):
        with pyro.plate(name, n, dim=-1 - m):
            return fn(*args, **kwargs)

    return vectorized


def _split(model_trace, guide_trace, n: int, m: int) -> tuple[torch.Tensor, ...]:
    r"""Per-particle :math:`\log q(z)`, :math:`\log p(z)`, :math:`\log p(x|z)` (float64 [n])."""
    zero = torch.zeros(n, dtype=torch.float64)
    log_q, log_prior, log_lik = zero, zero, zero
    for tr, is_guide in ((guide_trace, True), (model_trace, False)):
        tr.compute_log_prob()
        for site in tr.nodes.values():
            if site["type"] != "sample":
                continue
            # the model's log density as Pyro defines it (poutine.scale included, as in
            # enumerate_posterior); q is a normalized density, so its own scale is left out
            lp = _reduce(site["unscaled_log_prob" if is_guide else "log_prob"], n, m)
            if is_guide:
                log_q = log_q + lp
            elif site["is_observed"]:
                log_lik = log_lik + lp
            else:
                log_prior = log_prior + lp
    return log_q, log_prior, log_lik


def _particles(model, guide, args, kwargs, n: int, m: int) -> tuple[torch.Tensor, ...]:
    """:func:`_split` for ``n`` guide samples: vectorized in a particle plate if the model
    broadcasts, else one trace per particle."""
    with torch.no_grad(), poutine.block():
        try:
            vectorized = (_vectorize(fn, n, m, "_particles") for fn in (model, guide))
            return _split(*_traces(*vectorized, args, kwargs), n, m)
        except (RuntimeError, ValueError, IndexError, TypeError):
            rows = [_split(*_traces(model, guide, args, kwargs), 1, m) for _ in range(n)]
            return tuple(torch.cat(col) for col in zip(*rows, strict=True))


def _mean_se(x: torch.Tensor) -> tuple[float, float]:
    return float(x.mean()), float(x.std() / math.sqrt(len(x))) if len(x) > 1 else 0.0


def _quadrature(model, guide, args, kwargs, m: int) -> float | None:
    r""":math:`\log \int p(x, z)\,dz` on a grid, for at most two scalar latent dimensions.

    The latents are mapped to the real line (``biject_to(support)``, Jacobian included), a
    coarse grid around the guide's samples is widened until the log joint is 40 nats below its
    peak at the edges, and a fine grid around the resulting posterior is integrated with
    Simpson's rule.
    """
    from scipy.integrate import simpson
    from torch.distributions import biject_to

    with torch.no_grad(), poutine.block():
        guide_trace = poutine.trace(_vectorize(guide, 256, m, "_grid")).get_trace(*args, **kwargs)
        trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*args, **kwargs)
        trace = prune_subsample_sites(trace)
    specs = []
    for name in _latents(trace):
        fn = trace.nodes[name]["fn"]
        if fn.has_enumerate_support or fn.batch_shape.numel() != 1 or fn.event_shape.numel() > 2:
            return None
        specs.append((name, biject_to(fn.support), fn.event_shape))
    dims = sum(max(1, s[2].numel()) for s in specs)
    if not specs or dims > 2:
        return None
    u = torch.cat(
        [
            t.inv(guide_trace.nodes[s]["value"]).reshape(256, -1).to(torch.float64)
            for s, t, _ in specs
        ],
        -1,
    )

    def log_joint(points: torch.Tensor) -> torch.Tensor:
        g, data, logdet, i = len(points), {}, torch.zeros(len(points), dtype=torch.float64), 0
        for name, t, event in specs:
            k = max(1, event.numel())
            pts = points[:, i : i + k].reshape((g,) + (1,) * m + tuple(event))
            z = t(pts)
            jac = t.log_abs_det_jacobian(pts, z)
            logdet = logdet + jac.reshape(g, -1).sum(-1)
            data[name], i = z, i + k
        with torch.no_grad(), poutine.block():
            conditioned = poutine.condition(_vectorize(model, g, m, "_grid"), data)
            tr = poutine.trace(conditioned).get_trace(*args, **kwargs)
        _, log_prior, log_lik = _split(tr, poutine.Trace(), g, m)
        return torch.nan_to_num(log_prior + log_lik + logdet, nan=-math.inf)

    def grid(center, half, size):
        axes = [
            torch.linspace(c - h, c + h, size, dtype=torch.float64)
            for c, h in zip(center, half, strict=True)
        ]
        mesh = torch.meshgrid(*axes, indexing="ij")
        pts = torch.stack([a.reshape(-1) for a in mesh], -1)
        return axes, pts, log_joint(pts).reshape(mesh[0].shape)

    center, half = u.mean(0), 10 * u.std(0).clamp(min=1e-2)
    for size in (201 if dims == 1 else 61, 4001 if dims == 1 else 301):
        for _ in range(12):
            axes, pts, lp = grid(center, half, size)
            top = lp.max()
            if not torch.isfinite(top):
                half = half * 2
                continue
            edge = max(float(lp.select(d, j).max()) for d in range(dims) for j in (0, -1))
            if edge < float(top) - 40:
                break
            half = half * 2
        w = torch.softmax(lp.reshape(-1), 0).unsqueeze(-1)  # the posterior on the grid
        center = (w * pts).sum(0)
        sd = (w * (pts - center) ** 2).sum(0).sqrt()
        half = 12 * torch.maximum(sd, torch.stack([a[1] - a[0] for a in axes]))
    integrand = (lp - top).exp().numpy()
    for d in reversed(range(dims)):
        integrand = simpson(integrand, x=axes[d].numpy(), axis=d)
    return float(top) + math.log(float(integrand))


def _is_discrete(model, guide, args, kwargs) -> bool:
    with torch.no_grad(), poutine.block():
        guide_trace = prune_subsample_sites(poutine.trace(guide).get_trace(*args, **kwargs))
    latents = _latents(guide_trace)
    return bool(latents) and all(guide_trace.nodes[s]["fn"].has_enumerate_support for s in latents)


def _log_evidence(model, guide, args, kwargs, given, *, analytic: bool, discrete: bool, m: int):
    r""":math:`\log p(x)` and how it was found: ``given``; else the model's ``log_evidence``
    attribute (when ``analytic``); else enumeration (``discrete``); else quadrature."""
    if given is not None:
        return float(given), "given"
    attr = getattr(model, "log_evidence", None)
    if analytic and attr is not None:
        return float(attr(*args, **kwargs) if callable(attr) else attr), "analytic"
    if discrete:
        return float(enumerate_posterior(model, *args, **kwargs).log_evidence), "enumeration"
    value = _quadrature(model, guide, args, kwargs, m)
    return value, "quadrature" if value is not None else "unavailable"


def _enumerated(e, model, guide, args, kwargs, log_evidence) -> ELBODecomposition:
    """The exact decomposition from a guide enumeration ``e``."""
    reconstruction = e.expectation(e.likelihood_terms)
    kl_prior = e.expectation(e.guide_terms) - e.expectation(e.prior_terms)
    elbo = reconstruction - kl_prior
    log_evidence, how = _log_evidence(
        model, guide, args, kwargs, log_evidence, analytic=False, discrete=True, m=0
    )
    return ELBODecomposition(
        log_evidence, elbo, log_evidence - elbo, reconstruction, kl_prior,
        method="enumeration", evidence_method=how,
    )  # fmt: skip


def elbo_decomposition(
    model: Callable,
    guide: Callable,
    *args: Any,
    log_evidence: float | None = None,
    num_particles: int = 1000,
    method: str = "auto",
    **kwargs: Any,
) -> ELBODecomposition:
    r"""Split :math:`\log p(x)` into the ELBO and the KL gap, and the ELBO into its two terms.

    .. math::

        \log p(x) = \mathrm{ELBO}(q) + \mathrm{KL}(q(z|x) \,\|\, p(z|x)), \qquad
        \mathrm{ELBO}(q) = \mathbb{E}_q[\log p(x|z)] - \mathrm{KL}(q(z|x) \,\|\, p(z))

    *Exact* (``method="enumeration"``, chosen automatically when every guide latent has finite
    support): expectations are sums over the guide's support
    (:func:`pvae.vi.guide_enumeration.enumerate_guide`) and :math:`\log p(x)` comes from
    :func:`pvae.exact.enumerate_posterior`; the KL is then
    :math:`\mathbb{E}_q[\log q(z) - \log p(z|x)]` with
    :math:`\log p(z|x) = \log p(x,z) - \log p(x)`, and the identity holds to rounding error.

    *Monte Carlo* (continuous latents): ``num_particles`` guide samples give the ELBO and both
    terms with standard errors. :math:`\log p(x)` is ``log_evidence`` when given; else the
    model's own ``log_evidence`` attribute (a float, or a callable taking the model's
    arguments, as conjugate toy models carry); else numerical quadrature when the latents have
    at most two scalar dimensions; else unavailable (``None``).

    "Reconstruction" is the expected log-probability of the model's observed sites and the
    prior :math:`p(z)` is the product of its latent sites, so hierarchical priors are included.

    Parameters
    ----------
    model, guide : callable
        A Pyro model and a guide that samples exactly the model's latent sites.
    *args, **kwargs
        Passed to both (the data).
    log_evidence : float, optional
        Known :math:`\log p(x)`, e.g. from a conjugate formula.
    num_particles : int
        Guide samples for the Monte Carlo estimate.
    method : {"auto", "enumeration", "monte_carlo"}

    Returns
    -------
    ELBODecomposition

    Raises
    ------
    ValueError
        When the guide misses model latents, or ``method="enumeration"`` meets a continuous
        latent.

    Examples
    --------
    >>> import pyro.distributions as dist
    >>> def model():
    ...     z = pyro.sample("z", dist.Bernoulli(0.3))
    ...     pyro.sample("x", dist.Bernoulli(0.9 * z + 0.2 * (1 - z)), obs=torch.tensor(1.0))
    >>> def guide():
    ...     pyro.sample("z", dist.Bernoulli(0.5))
    >>> d = elbo_decomposition(model, guide, log_evidence=math.log(0.3 * 0.9 + 0.7 * 0.2))
    >>> round(d.log_evidence - d.elbo - d.kl, 9)
    0.0
    >>> round(d.reconstruction - d.kl_prior - d.elbo, 9), round(d.kl, 4)
    (0.0, 0.053)
    """
    if method not in ("auto", "enumeration", "monte_carlo"):
        raise ValueError(
            f"`method` must be 'auto', 'enumeration' or 'monte_carlo', got {method!r}."
        )
    if num_particles < 2 and method != "enumeration":
        raise ValueError(f"`num_particles` must be at least 2, got {num_particles}.")
    discrete = _is_discrete(model, guide, args, kwargs)
    if method == "enumeration" and not discrete:
        raise ValueError(
            "`method='enumeration'` needs every guide latent to have finite support. Use "
            "`method='monte_carlo'` for continuous latents."
        )
    if discrete and method != "monte_carlo":
        e = enumerate_guide(model, guide, *args, **kwargs)
        return _enumerated(e, model, guide, args, kwargs, log_evidence)
    m = _max_plate_nesting(model, guide, *args, **kwargs)
    log_q, log_prior, log_lik = _particles(model, guide, args, kwargs, num_particles, m)
    elbo, elbo_se = _mean_se(log_lik + log_prior - log_q)
    reconstruction, reconstruction_se = _mean_se(log_lik)
    kl_prior, kl_prior_se = _mean_se(log_q - log_prior)
    log_evidence, how = _log_evidence(
        model, guide, args, kwargs, log_evidence, analytic=True, discrete=discrete, m=m
    )
    return ELBODecomposition(
        log_evidence, elbo, None if log_evidence is None else log_evidence - elbo,
        reconstruction, kl_prior, elbo_se, reconstruction_se, kl_prior_se, "monte_carlo", how,
        num_particles,
    )  # fmt: skip


@dataclass(frozen=True)
class Comparison:
    r"""An exact posterior and a guide side by side.

    Attributes
    ----------
    sites : tuple of str
        Latent sites compared, in the exact posterior's order.
    rows : tuple of tuple
        One row per site, datapoint and support value: ``(site, index, value, exact, approx)``,
        ``index`` the datapoint for sites in a plate (else ``None``), ``exact`` the posterior
        marginal :math:`p(z_i = v | x)` and ``approx`` the guide marginal :math:`q(z_i = v)`.
    site_kl_qp, site_kl_pq, site_tv : dict of str to float
        Per-site :math:`\mathrm{KL}(q_i \,\|\, p_i)`, :math:`\mathrm{KL}(p_i \,\|\, q_i)` between
        marginals (summed over datapoints) and total variation (averaged over datapoints).
    kl_qp : float or None
        Joint :math:`\mathrm{KL}(q(z) \,\|\, p(z|x))`, equal to the ELBO gap.
    kl_pq : float or None
        Joint :math:`\mathrm{KL}(p(z|x) \,\|\, q(z))` over the guide's support, when the joint
        factorizes over plate elements (``None`` otherwise).
    log_evidence, elbo : float
        :math:`\log p(x)` and the guide's ELBO.
    elbo_gap : float
        ``log_evidence - elbo``.

    Examples
    --------
    See :func:`compare`.
    """

    sites: tuple
    rows: tuple
    site_kl_qp: dict
    site_kl_pq: dict
    site_tv: dict
    kl_qp: float | None
    kl_pq: float | None
    log_evidence: float | None
    elbo: float | None
    elbo_gap: float | None

    def bars(self) -> dict[str, list]:
        """Data for a grouped bar chart: ``labels``, ``exact`` and ``approx``, aligned lists.

        Labels read ``"site=value"``, or ``"site[n]=value"`` for datapoint ``n`` of a plate.
        """
        labels = [f"{s}={v:g}" if i is None else f"{s}[{i}]={v:g}" for s, i, v, _, _ in self.rows]
        return {
            "labels": labels,
            "exact": [r[3] for r in self.rows],
            "approx": [r[4] for r in self.rows],
        }

    def to_dataframe(self):
        """The per-value rows as a pandas DataFrame (columns site, index, value, exact, approx)."""
        import pandas as pd

        return pd.DataFrame(list(self.rows), columns=["site", "index", "value", "exact", "approx"])

    def __str__(self) -> str:
        lines = [f"{'site':<14} {'value':>8} {'exact':>10} {'approx':>10}"]
        for s, i, v, p, q in self.rows:
            name = s if i is None else f"{s}[{i}]"
            lines.append(f"{name:<14} {v:>8g} {p:>10.6f} {q:>10.6f}")
        lines.append("")
        lines.append(f"{'site':<14} {'KL(q||p)':>10} {'KL(p||q)':>10} {'TV':>10}")
        for s in self.sites:
            lines.append(
                f"{s:<14} {self.site_kl_qp[s]:>10.6f} {self.site_kl_pq[s]:>10.6f} "
                f"{self.site_tv[s]:>10.6f}"
            )
        lines.append("")

        def fmt(v):
            return "unavailable" if v is None else f"{v:.6f}"

        lines.append(f"joint KL(q || p(z|x)) = {fmt(self.kl_qp)}   (= ELBO gap)")
        lines.append(f"joint KL(p(z|x) || q) = {fmt(self.kl_pq)}")
        lines.append(f"log p(x) = {fmt(self.log_evidence)}   ELBO = {fmt(self.elbo)}")
        return "\n".join(lines)


def _joint_kl_pq(e) -> float | None:
    """Forward KL over the guide's support, when the joint factorizes over plate elements."""
    tables = e.joint_tables()
    if tables is None:
        return None
    log_p, log_q = tables
    log_post = log_p - torch.logsumexp(log_p, e.enum_dims, keepdim=True)
    return float(_weighted(log_post.exp(), log_post - log_q).sum())


def compare(
    exact: Any, guide: Callable, *args: Any, model: Callable | None = None, **kwargs: Any
) -> Comparison:
    r"""Compare a guide with the exact posterior: marginals, KL both ways, TV, ELBO gap.

    Parameters
    ----------
    exact : ExactPosterior or callable
        The result of :func:`pvae.exact.enumerate_posterior`, or the model itself (then it is
        enumerated here).
    guide : callable
        A guide over the same discrete latents.
    *args, **kwargs
        Model and guide arguments.
    model : callable, optional
        The model, when ``exact`` is a posterior that does not carry it (``exact.model``).

    Returns
    -------
    Comparison
        Printable (``print(r)``), ``r.to_dataframe()``, and ``r.bars()`` for a figure.

    Raises
    ------
    ValueError
        When no model is available, or the guide's latents are not discrete.

    Examples
    --------
    >>> from pvae import toy
    >>> from pvae.vi.guides import MeanFieldGuide
    >>> r = compare(toy.medical_test, MeanFieldGuide(toy.medical_test))
    >>> [round(p, 4) for p in r.bars()["exact"]], r.bars()["approx"]
    ([0.9224, 0.0776], [0.5, 0.5])
    >>> round(r.kl_qp, 4), round(r.elbo_gap, 4)
    (0.6251, 0.6251)
    """
    if callable(exact) and not hasattr(exact, "marginal"):
        model, exact = exact, enumerate_posterior(exact, *args, **kwargs)
    model = model if model is not None else getattr(exact, "model", None)
    if model is None:
        raise ValueError(
            "`compare` needs the model to score the guide, got an exact posterior without "
            "`.model`. Pass `model=` or pass the model itself as `exact`."
        )
    e = enumerate_guide(model, guide, *args, **kwargs)
    rows, kl_qp_site, kl_pq_site, tv_site = [], {}, {}, {}
    for site in exact.sites:
        support = torch.as_tensor(exact.support(site)).reshape(-1)
        p = torch.as_tensor(exact.marginal(site), dtype=torch.float64)
        values, q = e.marginal(site)
        match = (support.to(torch.float64).unsqueeze(-1) == values.to(torch.float64)).to(q.dtype)
        q = (q.unsqueeze(-2) * match).sum(-1)  # guide marginal on the exact support
        q = q / q.sum(-1, keepdim=True)
        p = p / p.sum(-1, keepdim=True)
        kl_qp_site[site] = float(torch.as_tensor(kl_divergence(q, p)).sum())
        kl_pq_site[site] = float(torch.as_tensor(kl_divergence(p, q)).sum())
        tv_site[site] = float(torch.as_tensor(total_variation(p, q)).mean())
        batch = [None] if p.dim() == 1 else range(p.shape[0])
        for n in batch:
            pn, qn = (p, q) if n is None else (p[n], q[n])
            for k, v in enumerate(support.tolist()):
                rows.append((site, n, float(v), float(pn[k]), float(qn[k])))
    d = _enumerated(e, model, guide, args, kwargs, exact.log_evidence)  # reuse `e`
    return Comparison(
        tuple(exact.sites), tuple(rows), kl_qp_site, kl_pq_site, tv_site, d.kl,
        _joint_kl_pq(e), d.log_evidence, d.elbo, d.kl,
    )  # fmt: skip
