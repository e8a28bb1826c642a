r"""The distribution of an importance-sampling estimate, from draws made by the suite itself.

A corpus reference provides ``draws(num, seed) -> [num, B]``: independent log weights
:math:`\log p(x_b, z) - \log q(z)` of ``B`` blocks (the examples of a per-example model, or
one block for a joint one), computed by hand-written formulas, never by pvae. An estimate
pvae makes with ``K`` particles is one draw of

* the ELBO estimator :math:`\frac1K \sum_k \log w_k`, and
* the IWAE estimator :math:`\log \frac1K \sum_k w_k`,

averaged over blocks (per example) or taken on the summed weights (joint). Replicating the
estimator ``R`` times with our own draws gives its mean and standard deviation exactly,
bias included, so the check is "within 4 standard deviations of the estimator's mean".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import contextmanager
from typing import NamedTuple

import torch


class Ref(NamedTuple):
    """Closed-form pieces of a Monte Carlo corpus case."""

    #: ``(num, seed) -> [num, B]`` log weights of ``B`` independent blocks.
    draws: Callable[[int, int], torch.Tensor]
    #: log p(x_b) per block, or None where there is no closed form.
    log_evidence: list | None = None
    #: The exact ELBO per block, or None (then it is estimated from many draws).
    elbo: list | None = None
    #: Guide moments for the ArviZ export: {site: (mean, sd)} in the site's shape.
    moments: dict | None = None


class Expected(NamedTuple):
    mean: float
    tolerance: float


def _combine(log_w: torch.Tensor, per_example: bool) -> torch.Tensor:
    """``[R, K, B]`` -> per replicate (ELBO, IWAE) estimates, ``[R]`` each."""
    k = log_w.shape[1]
    if per_example:
        elbo = log_w.mean(1).mean(-1)
        iwae = (torch.logsumexp(log_w, 1) - math.log(k)).mean(-1)
    else:
        joint = log_w.sum(-1)
        elbo = joint.mean(1)
        iwae = torch.logsumexp(joint, 1) - math.log(k)
    return elbo, iwae


_CACHE: dict = {}


def expected(
    ref: Ref,
    num_particles: int,
    per_example: bool,
    *,
    key: str | None = None,
    replicates: int = 400,
    seed: int = 1,
) -> tuple[Expected, Expected]:
    """(ELBO, IWAE) expected values and 4-standard-deviation tolerances of a K estimate.

    ``key`` (a corpus case's name) caches the replicates: they depend on the case only.
    """
    if key is None:
        return _expected(ref, num_particles, per_example, replicates, seed)
    full = (key, num_particles, per_example, replicates, seed)
    if full not in _CACHE:
        _CACHE[full] = _expected(ref, num_particles, per_example, replicates, seed)
    return _CACHE[full]


def _expected(ref, num_particles, per_example, replicates, seed):
    budget = max(replicates, 400_000 // num_particles)
    log_w = ref.draws(budget * num_particles, seed)
    log_w = log_w.reshape(budget, num_particles, -1)
    elbo_r, iwae_r = _combine(log_w, per_example)
    nblocks = log_w.shape[-1]
    if ref.elbo is not None:
        exact = sum(ref.elbo) / (nblocks if per_example else 1)
        elbo = Expected(exact, 4 * float(elbo_r.std()) + 1e-9)
    else:  # the mean from every draw, its own standard error added
        se = float(elbo_r.std()) / math.sqrt(budget)
        elbo = Expected(float(elbo_r.mean()), 4 * math.hypot(float(elbo_r.std()), se) + 1e-9)
    se = float(iwae_r.std()) / math.sqrt(budget)
    iwae = Expected(float(iwae_r.mean()), 4 * math.hypot(float(iwae_r.std()), se) + 1e-9)
    return elbo, iwae


def truth(ref: Ref, per_example: bool) -> float:
    """log p(x): the mean over blocks, or the joint sum."""
    total = sum(ref.log_evidence)
    return total / len(ref.log_evidence) if per_example else total


def exact_elbo(ref: Ref, per_example: bool) -> float:
    total = sum(ref.elbo)
    return total / len(ref.elbo) if per_example else total


@contextmanager
def seeded(seed: int):
    """Seed torch's global generator (torch.distributions samplers) inside the block only."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        yield
