r"""Closed forms for linear-Gaussian models, and Monte Carlo tolerances.

A *block* is one independent piece of a model,

.. math::

    z \sim \mathcal N(\mu_0, P), \qquad x \mid z \sim \mathcal N(A z + b, \operatorname{diag}
    \sigma^2),

scored under a Gaussian guide :math:`q(z) = \mathcal N(m, S)`. Conjugate Normal-Normal
models, PPCA and a model that sums its latents are all blocks. Everything is exact
(float64): :math:`\log p(x)`, the posterior, the ELBO; Monte Carlo draws of the log weights
feed :mod:`.montecarlo`, which sets the tolerance of an estimate.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch.distributions import MultivariateNormal


class Block(NamedTuple):
    A: torch.Tensor  # [d, k]
    b: torch.Tensor  # [d]
    sigma: torch.Tensor  # [d]
    x: torch.Tensor  # [d]
    mu0: torch.Tensor  # [k]
    P: torch.Tensor  # [k, k] prior covariance


def block(A, b, sigma, x, mu0=None, P=None) -> Block:
    A = torch.as_tensor(A, dtype=torch.float64)
    d, k = A.shape
    b = torch.as_tensor(b, dtype=torch.float64).expand(d)
    sigma = torch.as_tensor(sigma, dtype=torch.float64).expand(d)
    x = torch.as_tensor(x, dtype=torch.float64).reshape(d)
    mu0 = torch.zeros(k, dtype=torch.float64) if mu0 is None else torch.as_tensor(mu0).double()
    P = torch.eye(k, dtype=torch.float64) if P is None else torch.as_tensor(P).double()
    return Block(A, b, sigma, x, mu0.expand(k), P)


def log_evidence(blk: Block) -> float:
    """:math:`\\log p(x)` of one block (0 for a block without observations)."""
    if blk.x.numel() == 0:
        return 0.0
    cov = torch.diag(blk.sigma**2) + blk.A @ blk.P @ blk.A.T
    return float(MultivariateNormal(blk.A @ blk.mu0 + blk.b, cov).log_prob(blk.x))


def posterior(blk: Block) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance of :math:`p(z \\mid x)`."""
    prior_prec = torch.linalg.inv(blk.P)
    prec = prior_prec + blk.A.T @ torch.diag(blk.sigma**-2) @ blk.A
    cov = torch.linalg.inv(prec)
    cov = (cov + cov.T) / 2
    mean = cov @ (prior_prec @ blk.mu0 + blk.A.T @ ((blk.x - blk.b) / blk.sigma**2))
    return mean, cov


def elbo(blk: Block, m: torch.Tensor, S: torch.Tensor) -> float:
    """The ELBO of :math:`q = N(m, S)`, exactly."""
    m, S = m.double().reshape(-1), S.double()
    k = m.numel()
    mean_x = blk.A @ m + blk.b
    var_x = torch.diagonal(blk.A @ S @ blk.A.T)
    lik = (
        -0.5 * torch.log(2 * math.pi * blk.sigma**2)
        - ((blk.x - mean_x) ** 2 + var_x) / (2 * blk.sigma**2)
    ).sum()
    prior = MultivariateNormal(blk.mu0, blk.P).log_prob(m) - 0.5 * torch.trace(
        torch.linalg.solve(blk.P, S)
    )
    entropy = 0.5 * torch.logdet(2 * math.pi * math.e * S) if k else 0.0
    return float(lik + prior + entropy)


def kl_to_posterior(blk: Block, m, S) -> float:
    return log_evidence(blk) - elbo(blk, m, S)


def log_weights(blk: Block, m, S, num: int, seed: int) -> torch.Tensor:
    """``num`` draws of :math:`\\log p(x, z) - \\log q(z)`, :math:`z \\sim q`."""
    gen = torch.Generator().manual_seed(seed)
    q = MultivariateNormal(m.double().reshape(-1), S.double())
    eps = torch.randn((num, m.numel()), generator=gen, dtype=torch.float64)
    z = q.loc + eps @ q.scale_tril.T
    mean_x = z @ blk.A.T + blk.b
    lik = -0.5 * torch.log(2 * math.pi * blk.sigma**2) - (blk.x - mean_x) ** 2 / (2 * blk.sigma**2)
    return lik.sum(-1) + MultivariateNormal(blk.mu0, blk.P).log_prob(z) - q.log_prob(z)
