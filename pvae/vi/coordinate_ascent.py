r"""The best mean-field answer, by coordinate-ascent variational inference (CAVI).

On the exact joint table :math:`\log p(x, z)` each factor of :math:`q(z) = \prod_i q_i(z_i)`
is set in turn to

.. math:: q_i(z_i) \propto \exp \mathbb{E}_{q_{-i}}[\log p(x, z)],

which never decreases the ELBO, so :func:`cavi` gives the optimum that SVI on a
:class:`pvae.vi.guides.MeanFieldGuide` should reach.

References
----------
1. Blei, D. M., Kucukelbir, A. and McAuliffe, J. D. (2017). Variational Inference: A Review
   for Statisticians. JASA 112(518).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from pvae import _checks, _display
from pvae._seed import seeded
from pvae.vi.guide_enumeration import enumerate_guide, weighted
from pvae.vi.guides import MeanFieldGuide, sample_factors, uniform_factor

__all__ = ["CAVIResult", "cavi"]


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

    __repr__ = _display.record_repr
    _repr_html_ = _display.record_html


def _joint_table(model: Callable, args: tuple, kwargs: dict):
    r"""Dense :math:`\log p(x, z)` over the joint support of the model's latents.

    The enumeration of a uniform mean-field guide lays out the whole table in one pass
    (axis ``i`` for latent site ``i``).
    """
    specs = MeanFieldGuide(model, *args, **kwargs).specs

    def uniform(*a, **k):
        return sample_factors(specs, lambda name: uniform_factor(*specs[name][:2]))

    e = enumerate_guide(model, uniform, *args, **kwargs)
    plated = [s for s in e.sites if e.structure.site_plates.get(s)]
    if plated:
        raise ValueError(f"`cavi` needs latent sites outside plates; got plated sites {plated}.")
    supports = {s: specs[s][0] for s in e.sites}
    shape = tuple(len(supports[s]) for s in e.sites)
    log_p, _ = e.joint_tables()
    if e.method == "parallel":
        nesting = e.structure.nesting
        log_p = log_p.reshape(log_p.shape[: log_p.dim() - nesting])
        log_p = log_p.reshape((1,) * (len(shape) - log_p.dim()) + tuple(log_p.shape))
        # site i was enumerated at dim -(nesting + 1 + i): reverse so axis i is site i
        table = log_p.permute(tuple(reversed(range(log_p.dim())))).expand(shape).clone()
    else:
        table = torch.full(shape, -math.inf, dtype=torch.float64)
        index = [
            (e.site_values(s).unsqueeze(-1) == supports[s]).to(torch.long).argmax(-1)
            for s in e.sites
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
    prod = weighted(w.expand(table.shape), table)
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
    _checks.callable_arg("model", model, what="a Pyro model function")
    num_restarts = _checks.nonnegative_int("num_restarts", num_restarts, example=10, maximum=10**5)
    max_iterations = _checks.positive_int(
        "max_iterations", max_iterations, example=1000, maximum=10**6
    )
    tol = _checks.nonnegative_float("tol", tol, example=1e-12)
    seed = _checks.seed("seed", seed)
    if seed is None:  # the restarts draw from their own generator, which needs a number
        raise ValueError("`seed` must be an integer for `cavi` (its restarts), got None.")
    with seeded(seed):
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
        elbo = float(weighted(q, table - log_q).sum())
        if best is None or elbo > best[0] + 1e-12:
            best = (elbo, qs, it)
    elbo, qs, it = best
    marginals = dict(zip(sites, qs, strict=True))
    return CAVIResult(marginals, supports, elbo, log_z - elbo, log_z, it)
