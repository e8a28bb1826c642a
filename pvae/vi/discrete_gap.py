r"""The discrete amortization gap: how far a network's :math:`q(y \mid x)` is from Bayes' rule.

A model with a discrete latent :math:`y` per example (the label of
:class:`~pvae.models.semisupervised.SemiSupervisedVAE`, the component of
:class:`~pvae.models.mixture.MixtureVAE`) has, for every data point, its own posterior over
:math:`y`, a finite sum:

.. math::

    p(y \mid x) = \frac{p(y)\,p(x \mid y)}{\sum_{y'} p(y')\,p(x \mid y')},

with each :math:`p(x \mid y)` an integral over the continuous latent, estimated by importance
sampling (the sum over :math:`y` is done exactly). The guide's amortized :math:`q(y \mid x)`
-- one network for every data point -- falls short of it by

.. math::

    \mathrm{gap} = \frac1N \sum_{n=1}^N \mathrm{KL}\big(q(y \mid x_n) \,\|\, p(y \mid x_n)\big)
    \quad\text{nats per example,}

the discrete counterpart of :func:`pvae.vae_amortization_gap`. A model offers the two
distributions as ``discrete_guide(x, num_particles)`` and
``discrete_posterior(x, num_particles)`` (``[N, K]`` probability rows).

References
----------
1. Cremer, C., Li, X. and Duvenaud, D. (2018). Inference Suboptimality in Variational
   Autoencoders. ICML.
2. Kingma, D. P., Rezende, D. J., Mohamed, S. and Welling, M. (2014). Semi-supervised
   learning with deep generative models. NeurIPS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from pvae._checks import MAX_PARTICLES, positive_int
from pvae._checks import seed as check_seed
from pvae._seed import seeded

__all__ = ["DiscreteGap", "discrete_amortization_gap"]


@dataclass(frozen=True)
class DiscreteGap:
    r"""The discrete amortization gap of a data set (see the module docstring).

    Attributes
    ----------
    kl : float
        :math:`\frac1N \sum_n \mathrm{KL}(q(y \mid x_n) \,\|\, p(y \mid x_n))`, nats per
        example.
    kl_per_datapoint : torch.Tensor
        ``[N]`` float64.
    guide : torch.Tensor
        :math:`q(y \mid x_n)`, ``[N, K]`` float64.
    posterior : torch.Tensor
        :math:`p(y \mid x_n)`, ``[N, K]`` float64.
    agreement : float
        Fraction of data points where the most probable :math:`y` is the same under both.
    num_examples : int
    num_particles : int
        Importance samples per :math:`p(x \mid y)` (the posterior is an estimate, exact as
        this grows).
    """

    kl: float
    kl_per_datapoint: torch.Tensor
    guide: torch.Tensor
    posterior: torch.Tensor
    agreement: float
    num_examples: int
    num_particles: int

    def __str__(self) -> str:
        return (
            f"DiscreteGap(kl={self.kl:.6f} nats per example, agreement={self.agreement:.3f}, "
            f"num_examples={self.num_examples}, num_particles={self.num_particles})"
        )

    __repr__ = __str__


def _rows(name: str, p: Any, n: int) -> torch.Tensor:
    if not isinstance(p, torch.Tensor) or p.dim() != 2 or p.shape[0] != n:
        shape = list(p.shape) if isinstance(p, torch.Tensor) else type(p).__name__
        raise ValueError(f"`model.{name}(x)` must return [N={n}, K] probabilities, got {shape}.")
    p = p.double()
    sums = p.sum(-1)
    if not bool((p >= 0).all()) or not torch.allclose(sums, torch.ones_like(sums), atol=1e-6):
        raise ValueError(
            f"`model.{name}(x)` rows must be probabilities summing to 1, got row sums in "
            f"[{float(sums.min()):.6g}, {float(sums.max()):.6g}]."
        )
    return p


def discrete_amortization_gap(
    model: Any, x: torch.Tensor, *, num_particles: int = 100, seed: int | None = 0
) -> DiscreteGap:
    r"""Mean :math:`\mathrm{KL}(q(y \mid x) \,\|\, p(y \mid x))` over the rows of ``x``.

    Parameters
    ----------
    model : SemiSupervisedVAE, MixtureVAE, or any object with ``discrete_guide`` and
        ``discrete_posterior`` methods (``(x, num_particles) -> [N, K]`` probabilities).
    x : torch.Tensor
        The data, ``[N, ...]`` (unlabelled: the label is what is inferred).
    num_particles : int
        Importance samples of the continuous latent per :math:`p(x \mid y)`.
    seed : int, optional
        Seeds the draws inside the call (the caller's generators are left as they were).

    Returns
    -------
    DiscreteGap

    Raises
    ------
    TypeError
        For a model without the two methods.

    Examples
    --------
    >>> from pvae.models.mixture import MixtureVAE
    >>> mix = MixtureVAE(x_dim=4, num_components=3, z_dim=2, hidden=(), seed=0)
    >>> x = torch.bernoulli(torch.full((6, 4), 0.5), generator=torch.Generator().manual_seed(0))
    >>> gap = discrete_amortization_gap(mix, x, num_particles=50)
    >>> gap.kl >= 0, gap.posterior.shape
    (True, torch.Size([6, 3]))
    """
    for method in ("discrete_guide", "discrete_posterior"):
        if not callable(getattr(model, method, None)):
            raise TypeError(
                f"`model` must have a `{method}(x, num_particles)` method (SemiSupervisedVAE, "
                f"MixtureVAE), got {type(model).__name__}."
            )
    num_particles = positive_int(
        "num_particles", num_particles, maximum=MAX_PARTICLES, example=100
    )
    if not isinstance(x, torch.Tensor) or x.dim() < 1 or len(x) == 0:
        raise ValueError(f"`x` must be a non-empty tensor of examples, got {x!r:.60}.")
    with seeded(check_seed("seed", seed)):
        q = _rows("discrete_guide", model.discrete_guide(x, num_particles=num_particles), len(x))
        p = _rows(
            "discrete_posterior", model.discrete_posterior(x, num_particles=num_particles), len(x)
        )
    log_q = torch.where(q > 0, q.log(), torch.zeros_like(q))
    kl = (q * (log_q - p.clamp_min(torch.finfo(p.dtype).tiny).log())).sum(-1).clamp_min(0.0)
    agreement = float((q.argmax(-1) == p.argmax(-1)).double().mean())
    return DiscreteGap(float(kl.mean()), kl, q, p, agreement, len(x), num_particles)
