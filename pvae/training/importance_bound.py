r"""The importance-weighted bound (IWAE) as a training objective, per example.

For :math:`K` draws :math:`z_k \sim q(z \mid x)` the bound of Burda et al. (2016) is

.. math::

    \mathcal{L}_K(x) = \mathbb{E}\Big[\log \frac1K \sum_{k=1}^K
        \frac{p(x, z_k)}{q(z_k \mid x)}\Big],
    \qquad \mathrm{ELBO} = \mathcal{L}_1 \le \mathcal{L}_K \le \mathcal{L}_{K+1}
    \le \log p(x),

one log-mean-exp *per example* (the weights of the importance-weight core,
:func:`pvae._traces.log_weights`, with its conventions: masked, unscaled densities, discrete
latents the guide leaves to the model summed out exactly). Where the weights do not factor
over the examples (a global latent), it is the bound of the whole batch, which is Pyro's
:class:`~pyro.infer.RenyiELBO` with ``alpha=0``: that estimator always treats the batch as
one example.

The gradient is the reparameterised one, so every site the guide samples must have
``rsample``: a discrete guide site is refused (leave it to the model, where it is summed
out, or use ``elbo="enum"``). A scaled site (``poutine.scale``: a :math:`\beta`, a
subsample's :math:`N/B`) is refused too: the bound is the model's own.

References
----------
1. Burda, Y., Grosse, R. and Salakhutdinov, R. (2016). Importance Weighted Autoencoders.
   ICLR.
2. Li, Y. and Turner, R. E. (2016). Renyi Divergence Variational Inference. NeurIPS.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from pyro import poutine
from pyro.infer import ELBO
from pyro.poutine.util import site_is_subsample

from pvae import _traces
from pvae._checks import MAX_PARTICLES, positive_int
from pvae.training.rng import forked_rng

__all__ = ["IWAE_ELBO", "iwae_bound"]


def _shape_key(args: tuple, kwargs: dict) -> tuple:
    def key(v: Any) -> Any:
        return tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__

    return tuple(key(a) for a in args) + tuple((k, key(v)) for k, v in sorted(kwargs.items()))


def _refuse(model: Callable, guide: Callable, args: tuple, kwargs: dict) -> None:
    """Raise for a guide site without ``rsample`` or a scaled site."""
    with poutine.block(), torch.no_grad():
        guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(
            *args, **kwargs
        )
    for name, site in _traces.sample_sites(guide_trace):
        if not site["is_observed"] and not getattr(site["fn"], "has_rsample", False):
            raise ValueError(
                f'`elbo="iwae"` uses reparameterised gradients, but the guide samples '
                f"{name!r} from {type(site['fn']).__name__}, which has no `rsample`. Leave a "
                'discrete latent to the model (it is summed out exactly), or use elbo="enum".'
            )
    for trace in (guide_trace, model_trace):
        for name, site in trace.nodes.items():
            if site["type"] == "sample" and not site_is_subsample(site):
                if bool(torch.as_tensor(site["scale"]).ne(1).any()):
                    raise ValueError(
                        f'`elbo="iwae"` is the model\'s own bound, but site {name!r} is scaled '
                        "(poutine.scale: a beta, or a subsample's N/B). Remove the scale "
                        '(beta=1, no `num_examples` subsampling), or use elbo="trace".'
                    )


def iwae_bound(
    model: Callable,
    guide: Callable,
    args: tuple,
    kwargs: dict,
    num_particles: int,
    structure: _traces.Structure | None = None,
) -> torch.Tensor:
    r"""The IWAE estimate :math:`\log \frac1K \sum_k w_k`, differentiable, float64.

    Returns one number per example (``[N]``) where the weights factor over the examples,
    else one for the whole batch (``[]``).

    Examples
    --------
    >>> import pyro, pyro.distributions as dist
    >>> def model(x):
    ...     with pyro.plate("data", len(x)):
    ...         z = pyro.sample("z", dist.Normal(0.0, 1.0))
    ...         pyro.sample("x", dist.Normal(z, 1.0), obs=x)
    >>> def guide(x):                      # the exact posterior: every weight is p(x)
    ...     with pyro.plate("data", len(x)):
    ...         pyro.sample("z", dist.Normal(x / 2, 0.5 ** 0.5))
    >>> x = torch.tensor([0.3, -1.0])
    >>> bound = iwae_bound(model, guide, (x,), {}, 5)
    >>> exact = dist.Normal(0.0, 2 ** 0.5).log_prob(x).double()
    >>> torch.allclose(bound, exact)
    True
    """
    w = _traces.log_weights(
        model, guide, args, kwargs, num_particles, structure, check=False
    ).log_weight
    return torch.logsumexp(w, 0) - math.log(num_particles)


class IWAE_ELBO(ELBO):  # noqa: N801 (Pyro's naming: Trace_ELBO, RenyiELBO)
    r"""Minus the importance-weighted bound with ``num_particles`` draws (module docstring).

    ``loss`` and ``loss_and_grads`` follow Pyro's sign and sum over the examples (the
    per-example bounds added, as :class:`~pyro.infer.Trace_ELBO` adds ELBOs). With
    ``num_particles=1`` it is the ELBO. Made by :func:`~pvae.training.elbos.make_elbo`
    for ``elbo="iwae"``; meant for :func:`pvae.fit` and :class:`~pvae.training.SVIStep`
    (the guide runs inside the importance-weight core, hidden from an outer
    ``pyro.infer.SVI`` param trace).

    Parameters
    ----------
    num_particles : int
        :math:`K`, the draws per example.

    Examples
    --------
    >>> import pyro, pyro.distributions as dist
    >>> def model(x):
    ...     with pyro.plate("data", len(x)):
    ...         z = pyro.sample("z", dist.Normal(0.0, 1.0))
    ...         pyro.sample("x", dist.Normal(z, 1.0), obs=x)
    >>> def guide(x):
    ...     with pyro.plate("data", len(x)):
    ...         pyro.sample("z", dist.Normal(x / 2, 0.5 ** 0.5))
    >>> x = torch.tensor([0.3, -1.0])
    >>> exact = -dist.Normal(0.0, 2 ** 0.5).log_prob(x).sum().item()
    >>> round(IWAE_ELBO(10).loss(model, guide, x) - exact, 6)
    0.0
    """

    def __init__(self, num_particles: int = 1) -> None:
        super().__init__(
            num_particles=positive_int(
                "num_particles", num_particles, maximum=MAX_PARTICLES, example=10
            )
        )
        self._structures: dict[tuple, _traces.Structure] = {}

    def _get_trace(self, model: Any, guide: Any, args: Any, kwargs: Any) -> Any:
        raise NotImplementedError("IWAE_ELBO computes its weights with pvae._traces.")

    def _structure(self, model, guide, args, kwargs) -> _traces.Structure:
        key = _shape_key(args, kwargs)
        if key not in self._structures:  # the checking runs leave the random state alone
            with forked_rng():
                _refuse(model, guide, args, kwargs)
                self._structures[key] = _traces.inspect(model, guide, args, kwargs)
        return self._structures[key]

    def differentiable_loss(self, model: Callable, guide: Callable, *args: Any, **kwargs: Any):
        """Minus the bound summed over the examples, as a differentiable tensor."""
        structure = self._structure(model, guide, args, kwargs)
        bound = iwae_bound(model, guide, args, kwargs, self.num_particles, structure)
        return -bound.sum()

    def loss(self, model: Callable, guide: Callable, *args: Any, **kwargs: Any) -> float:
        """The loss as a float, without gradients."""
        with torch.no_grad():
            return self.differentiable_loss(model, guide, *args, **kwargs).item()

    def loss_and_grads(self, model: Callable, guide: Callable, *args: Any, **kwargs: Any):
        """The loss as a float; its gradients are added to the parameters' ``.grad``."""
        loss = self.differentiable_loss(model, guide, *args, **kwargs)
        loss.backward()
        return loss.item()
