r"""The ELBO identity: :math:`\log p(x) = \mathrm{ELBO}(q) + \mathrm{KL}(q \,\|\, p(z \mid x))`.

For any guide :math:`q(z|x)` the log evidence splits into the evidence lower bound and the
KL divergence from :math:`q` to the true posterior,

.. math::

    \log p(x) = \underbrace{\mathbb{E}_{q(z|x)}[\log p(x, z) - \log q(z|x)]}_{\mathrm{ELBO}(q)}
    + \mathrm{KL}(q(z|x) \,\|\, p(z|x)),

and the ELBO itself splits into the lecture's two terms,

.. math::

    \mathrm{ELBO}(q) = \underbrace{\mathbb{E}_{q(z|x)}[\log p(x|z)]}_{\text{reconstruction}}
    - \mathrm{KL}(q(z|x) \,\|\, p(z)).

:func:`elbo_decomposition` computes every term: exactly, by summing over the guide's support
(:mod:`pvae.vi.guide_enumeration`), when the guide's latents are discrete; by Monte Carlo
over the importance weights of :mod:`pvae._traces` (with standard errors) otherwise. Both
use the model's own density (masked, unscaled: a :math:`\beta` or a subsample weight is a
training objective's, not the model's), and sum discrete latents the guide leaves to the
model out exactly.

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

import torch
from pyro import poutine
from pyro.poutine.util import site_is_subsample

from pvae import _checks, _display, _traces
from pvae._seed import seeded
from pvae.exact import enumerate_posterior
from pvae.models.protocol import HasLogEvidence, pair_and_args
from pvae.vi.guide_enumeration import GuideEnumeration, enumerate_guide
from pvae.vi.quadrature import log_evidence_by_quadrature

__all__ = ["ELBODecomposition", "elbo_decomposition", "exact_log_evidence", "units"]


def units(per_example: bool, num_examples: int | None) -> str:
    """How a record's numbers are counted, in words (for reprs)."""
    if per_example:
        return f"nats per example (mean over {num_examples})"
    return "nats, joint: all the data passed"


@dataclass(frozen=True)
class ELBODecomposition:
    r"""The terms of :math:`\log p(x) = \mathrm{ELBO} + \mathrm{KL}(q \,\|\, p(z|x))`.

    Nats; per example (means over the ``num_examples`` examples of the data plate) when
    ``per_example`` -- the examples are independent given the guide -- else joint totals of
    the data passed.

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
        :math:`p(z)` the product of the model's *latent* sites' densities.
    elbo_se, reconstruction_se, kl_prior_se : float
        Monte Carlo standard errors (0.0 when exact). ``kl`` has the standard error of
        ``elbo`` when ``log_evidence`` is exact.
    method : str
        ``"enumeration"`` (exact sums over the guide's support) or ``"monte_carlo"``.
    evidence_method : str
        ``"enumeration"``, ``"given"``, ``"analytic"`` (the model's ``log_evidence``
        attribute), ``"quadrature"`` or ``"unavailable"``.
    num_particles : int
        Guide samples of the Monte Carlo estimate (0 when exact).
    per_example : bool
        Whether the numbers are per example (see above).
    num_examples : int or None
        Examples in the data plate.
    reason : str
        Why an engine fell back (the Monte Carlo particles ran one at a time, or the
        enumeration ran sequentially); "" otherwise.

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
    per_example: bool = False
    num_examples: int | None = None
    reason: str = ""

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
        lines = [f"{a:<17} {b:<24} {c}".rstrip() for a, b, c in rows]
        lines.append(f"({units(self.per_example, self.num_examples)})")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        def cell(v, se=0.0):
            return _display.fmt(v) + (f" ± {se:.2g}" if v is not None and se else "")

        kl_se = self.elbo_se if self.kl is not None else 0.0
        rows = [
            ("log p(x)", cell(self.log_evidence), self.evidence_method),
            ("ELBO", cell(self.elbo, self.elbo_se), self.method),
            ("KL(q || p(z|x))", cell(self.kl, kl_se), "log p(x) − ELBO"),
            ("E_q[log p(x|z)]", cell(self.reconstruction, self.reconstruction_se), ""),
            ("KL(q || p(z))", cell(self.kl_prior, self.kl_prior_se), ""),
        ]
        table = _display.html_table(["term", "nats", "how"], rows)
        notes = [units(self.per_example, self.num_examples), self.reason]
        return _display.html_record("ELBODecomposition", tables=[table], notes=notes)


def exact_log_evidence(model: Callable, args: tuple, kwargs: dict) -> float:
    r"""The model's own :math:`\log p(x)` (every ``poutine.scale`` removed), by enumeration."""
    post = enumerate_posterior(_traces.unscaled(model), *args, **kwargs)
    return float(post.log_evidence)


def _mean(t: torch.Tensor) -> float:
    return float(t.mean()) if t.dim() else float(t)


def _exact(e: GuideEnumeration, model, args, kwargs, log_evidence) -> ELBODecomposition:
    joint, prior, guide = (e.expectation(w) for w in ("joint", "prior", "guide"))
    reconstruction, kl_prior, elbo = joint - prior, guide - prior, joint - guide
    n = e.num_examples if e.per_example else 1
    if log_evidence is None:
        total, how = exact_log_evidence(model, args, kwargs), "enumeration"
    else:
        total, how = float(log_evidence), "given"
    log_px = total / n
    elbo = _mean(elbo)
    return ELBODecomposition(
        log_evidence=log_px,
        elbo=elbo,
        kl=log_px - elbo,
        reconstruction=_mean(reconstruction),
        kl_prior=_mean(kl_prior),
        method="enumeration",
        evidence_method=how,
        per_example=e.per_example,
        num_examples=e.num_examples,
        reason=e.reason,
    )


def _monte_carlo(model, guide, args, kwargs, num_particles, log_evidence) -> ELBODecomposition:
    structure = _traces.inspect(model, guide, args, kwargs)
    with torch.no_grad():
        w = _traces.log_weights(model, guide, args, kwargs, num_particles, structure)

    def per_particle(t: torch.Tensor) -> torch.Tensor:
        return t.mean(-1) if structure.per_example else t

    def mean_se(t: torch.Tensor) -> tuple[float, float]:
        t = per_particle(t)
        return float(t.mean()), float(t.std() / math.sqrt(len(t)))

    elbo, elbo_se = mean_se(w.log_weight)
    rec, rec_se = mean_se(w.log_likelihood)
    kl_prior, kl_prior_se = mean_se(w.log_guide - w.log_prior)
    n = structure.num_examples if structure.per_example else 1
    how = "given"
    if log_evidence is None:
        if isinstance(model, HasLogEvidence):
            attr = model.log_evidence
            log_evidence, how = (attr(*args, **kwargs) if callable(attr) else attr), "analytic"
        elif set(structure.guided) <= set(structure.discrete):
            log_evidence, how = exact_log_evidence(model, args, kwargs), "enumeration"
        else:
            log_evidence = log_evidence_by_quadrature(model, guide, args, kwargs, structure)
            how = "quadrature" if log_evidence is not None else "unavailable"
    log_px = None if log_evidence is None else float(log_evidence) / n
    return ELBODecomposition(
        log_evidence=log_px,
        elbo=elbo,
        kl=None if log_px is None else log_px - elbo,
        reconstruction=rec,
        kl_prior=kl_prior,
        elbo_se=elbo_se,
        reconstruction_se=rec_se,
        kl_prior_se=kl_prior_se,
        method="monte_carlo",
        evidence_method=how,
        num_particles=num_particles,
        per_example=structure.per_example,
        num_examples=structure.num_examples,
        reason=w.reason,
    )


def _all_discrete(model, guide, args, kwargs) -> bool:
    with torch.no_grad(), poutine.block():
        trace = poutine.trace(guide).get_trace(*args, **kwargs)
    sites = [
        s
        for s in trace.nodes.values()
        if s["type"] == "sample"
        and not s["is_observed"]
        and not s["infer"].get("_deterministic")
        and not site_is_subsample(s)
    ]
    return bool(sites) and all(getattr(s["fn"], "has_enumerate_support", False) for s in sites)


def elbo_decomposition(
    model: Any,
    *args: Any,
    guide: Callable | None = None,
    log_evidence: float | None = None,
    num_particles: int = 1000,
    method: str = "auto",
    seed: int | None = None,
    **kwargs: Any,
) -> ELBODecomposition:
    r"""Split :math:`\log p(x)` into the ELBO and the KL gap, and the ELBO into its two terms.

    .. math::

        \log p(x) = \mathrm{ELBO}(q) + \mathrm{KL}(q(z|x) \,\|\, p(z|x)), \qquad
        \mathrm{ELBO}(q) = \mathbb{E}_q[\log p(x|z)] - \mathrm{KL}(q(z|x) \,\|\, p(z))

    Called as Pyro calls pairs, ``elbo_decomposition(model, guide, *args)``, or through the
    front door of :func:`pvae.fit` and :func:`pvae.evaluate`: ``elbo_decomposition(model,
    *data, guide=guide)`` or ``elbo_decomposition(vae, x)`` for a pvae model.

    *Exact* (``method="enumeration"``, chosen automatically when every guide latent has finite
    support): expectations are sums over the guide's support and :math:`\log p(x)` comes
    from :func:`pvae.exact.enumerate_posterior`, so the identity holds to rounding error.
    *Monte Carlo* (continuous latents): ``num_particles`` guide draws give the ELBO and both
    terms with standard errors; :math:`\log p(x)` is ``log_evidence`` when given, else the
    model's own ``log_evidence`` attribute (a float, or a callable taking the model's
    arguments), else exact enumeration when every model latent is discrete, else quadrature
    when the latents have at most two scalar dimensions, else unavailable (``None``).

    Numbers are the model's own (masked, unscaled), per example when the examples of the data
    plate are independent given the guide, else joint totals (see
    :class:`ELBODecomposition`).

    Parameters
    ----------
    model : callable or pvae model
        A Pyro model (then pass ``guide``, or give the guide first in ``args``), or a pvae
        model with ``.model`` and ``.guide``.
    *args, **kwargs
        The guide (Pyro's convention) and the data, passed to both.
    guide : callable, optional
        The guide (front-door convention).
    log_evidence : float, optional
        Known :math:`\log p(x)` of the data passed (a joint total, e.g. from a conjugate
        formula); it is divided by the number of examples for a per-example record.
    num_particles : int
        Guide samples for the Monte Carlo estimate.
    method : {"auto", "enumeration", "monte_carlo"}
    seed : int, optional
        Seeds the Monte Carlo draws (the caller's generators are restored afterwards).

    Returns
    -------
    ELBODecomposition

    Raises
    ------
    ValueError
        When the guide and model do not match (a continuous latent the guide leaves out, a
        guide site the model lacks; see :func:`pvae._traces.inspect`), or
        ``method="enumeration"`` meets a continuous latent.

    Examples
    --------
    >>> import pyro, pyro.distributions as dist
    >>> def model():
    ...     z = pyro.sample("z", dist.Bernoulli(0.3))
    ...     pyro.sample("x", dist.Bernoulli(0.9 * z + 0.2 * (1 - z)), obs=torch.tensor(1.0))
    >>> def guide():
    ...     pyro.sample("z", dist.Bernoulli(0.5))
    >>> d = elbo_decomposition(model, guide)
    >>> round(d.log_evidence - d.elbo - d.kl, 9), round(d.log_evidence, 6)  # log(0.41)
    (0.0, -0.891598)
    >>> round(d.reconstruction - d.kl_prior - d.elbo, 9), round(d.kl, 4)
    (0.0, 0.053)
    """
    _checks.one_of("method", method, ("auto", "enumeration", "monte_carlo"))
    _checks.seed("seed", seed)
    model, guide, args = pair_and_args(model, args, guide)
    if method != "enumeration":
        num_particles = _checks.positive_int(
            "num_particles", num_particles, example=1000, maximum=_checks.MAX_PARTICLES
        )
        if num_particles < 2:
            raise ValueError(
                f"`num_particles` must be at least 2 (a standard error needs two draws), got "
                f"{num_particles}."
            )
    if log_evidence is not None:
        _checks.finite_float("log_evidence", log_evidence)
    with seeded(seed):
        discrete = _all_discrete(model, guide, args, kwargs)
        if method == "enumeration" and not discrete:
            raise ValueError(
                "`method='enumeration'` needs every guide latent to have finite support. Use "
                "`method='monte_carlo'` for continuous latents."
            )
        if discrete and method != "monte_carlo":
            with torch.no_grad():
                e = enumerate_guide(model, guide, *args, **kwargs)
                return _exact(e, model, args, kwargs, log_evidence)
        return _monte_carlo(model, guide, args, kwargs, num_particles, log_evidence)
