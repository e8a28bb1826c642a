r"""The two terms of a VAE's ELBO, and beta, the weight of the KL term in training.

.. math::
    \mathrm{ELBO}(x) = \underbrace{\mathbb{E}_{q(z|x)} \log p(x \mid z)}_{\texttt{reconstruction}}
      - \underbrace{\mathrm{KL}(q(z \mid x) \,\|\, p(z))}_{\texttt{kl\_prior}}
      \le \log p(x).

A :math:`\beta`-VAE trains :math:`\mathbb{E}_q \log p(x|z) - \beta\,\mathrm{KL}(q \| p(z))`
instead (Higgins et al. 2017), and KL annealing moves :math:`\beta` from 0 to 1. In Pyro
that is a *scale* on the latent sites: Pyro's ELBOs weight each site's log-density by its
``msg["scale"]``, so scaling :math:`\log p(z)` in the model and :math:`\log q(z|x)` in the
guide by :math:`\beta` turns ``Trace_ELBO`` (and ``TraceMeanField_ELBO``'s analytic KL) into
the :math:`\beta`-weighted objective. :class:`KLWeightMessenger` does exactly that and
nothing else: ``poutine.scale`` refuses :math:`\beta = 0`, and ``poutine.mask(False)``
would erase the latent's density from the trace, which every analysis that reads
unscaled, masked densities (:mod:`pvae._traces`, and so ``evaluate``, ``psis_khat``,
``elbo_decomposition``) must see. With the messenger the model is always the
:math:`\beta = 1` model; only the training objective is weighted.

References
----------
1. Higgins, I. et al. (2017). beta-VAE: Learning basic visual concepts with a constrained
   variational framework. ICLR.
2. Bowman, S. R. et al. (2016). Generating sentences from a continuous space (KL annealing).
   CoNLL.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from pyro.poutine.messenger import Messenger

from pvae._checks import nonnegative_float
from pvae._compat import renamed

__all__ = ["ELBOTerms", "KLWeightMessenger"]


class ELBOTerms(NamedTuple):
    r"""The two ELBO terms per example (shape ``[N]``, nats, positive sense).

    ``reconstruction`` is :math:`\log p(x \mid z)` at one reparameterised draw
    :math:`z \sim q(z \mid x)`; ``kl_prior`` is the analytic
    :math:`\mathrm{KL}(q(z|x) \,\|\, p(z))`. The ELBO is ``reconstruction - kl_prior``
    (the :math:`\beta`-VAE objective: ``reconstruction - beta * kl_prior``).

    ``kl`` is the deprecated name of ``kl_prior`` (pvae 0.1; removed in 0.3): by the
    project's convention ``kl`` is :math:`\mathrm{KL}(q \,\|\, p(z \mid x))`.

    Examples
    --------
    >>> t = ELBOTerms(torch.tensor([-5.0]), torch.tensor([1.5]))
    >>> (t.reconstruction - t.kl_prior).item()
    -6.5
    """

    reconstruction: torch.Tensor
    kl_prior: torch.Tensor

    kl = renamed("ELBOTerms", "kl", "kl_prior")  # KL(q || p(z)); `kl` is to the posterior


class KLWeightMessenger(Messenger):
    r"""Multiply the ``scale`` of every sample site in its block by ``beta`` (``beta >= 0``).

    Used around the latent site ``"z"`` in both the model and the guide, it makes Pyro's
    ELBOs optimise :math:`\mathbb{E}_q \log p(x|z) - \beta\,\mathrm{KL}(q \| p(z))`. Unlike
    ``poutine.scale`` it accepts :math:`\beta = 0` (the site then contributes nothing to a
    loss), and unlike ``poutine.mask`` it leaves ``msg["mask"]`` alone: a trace's
    ``unscaled_log_prob`` and ``mask`` stay the model's own, the :math:`\beta = 1` model.

    Parameters
    ----------
    beta : float
        The weight, a finite number ``>= 0``.

    Examples
    --------
    >>> import pyro, pyro.distributions as dist
    >>> def model():
    ...     with KLWeightMessenger(0.0):
    ...         pyro.sample("z", dist.Normal(0.0, 1.0))
    >>> site = pyro.poutine.trace(model).get_trace().nodes["z"]
    >>> site["scale"], site["mask"]
    (0.0, None)
    """

    def __init__(self, beta: float) -> None:
        super().__init__()
        self.beta = nonnegative_float("beta", beta, example=1.0)

    def _process_message(self, msg: Any) -> None:
        if msg["type"] == "sample":
            msg["scale"] = self.beta * msg["scale"]
