r"""A categorical distribution over arbitrary support values, for discrete guides.

:class:`DiscreteTable` puts probability ``probs[..., k]`` on ``values[k]`` and enumerates
like :class:`pyro.distributions.Categorical`, but its samples have the dtype and the values
of the model's site, so a guide can stand in for a ``Bernoulli`` (float 0/1), a
``Binomial`` or a ``Categorical`` over any labels.
"""

from __future__ import annotations

import pyro.distributions as dist
import torch
from pyro.distributions import constraints

__all__ = ["DiscreteTable"]


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
