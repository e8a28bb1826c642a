r"""The semi-supervised VAE "M2" of Kingma et al. (2014): a class label, observed or latent.

.. math::

    p(y) = \mathrm{Cat}(1/K), \quad p(z) = \mathcal{N}(0, I), \quad
    p(x \mid y, z) = \mathrm{Lik}(x \mid \mathrm{Dec}(y, z)), \qquad
    q(y \mid x) = \mathrm{Cat}(\mathrm{softmax}\,\mathrm{Cls}(x)), \quad
    q(z \mid x, y) = \mathcal{N}(\mathrm{loc}(x, y), \mathrm{diag}\,\mathrm{scale}(x, y)^2).

**Data.** ``model(x, y)`` and ``guide(x, y)`` take images ``x`` ``[N, *x_shape]`` and integer
labels ``y`` ``[N]``, with **-1 for an unlabelled example**, so one ``pvae.fit(m2, (x, y))``
trains on labelled and unlabelled examples together, mixed in any batch.

**The bound.** For a labelled example the guide's label is the observed one (a point mass)
and its ELBO is the paper's :math:`\mathcal{L}(x, y) \le \log p(x, y)`; for an unlabelled
one the label is summed out exactly under :math:`q(y \mid x)` when trained with
``elbo="enum"`` (:class:`~pvae.training.elbos.EnumELBO`; ``"trace"`` samples it, with a
score-function gradient):

.. math::

    \mathcal{U}(x) = \sum_y q(y \mid x)\,\big(\mathcal{L}(x, y) - \log q(y \mid x)\big)
        \le \log p(x).

**The classification term.** :math:`q(y \mid x)` gets no gradient from the labelled
examples' bound, so the training objective adds :math:`\alpha \log q(y \mid x)` for each
labelled example (:meth:`SemiSupervisedVAE.auxiliary_loss`; :func:`pvae.fit` adds it to
any estimator and reports the objective as ``train_objective``, the model's ELBO as
``train_elbo``). The paper's :math:`J^\alpha = J + \alpha_{\text{paper}}\,
\mathbb{E}_{\tilde p_l}[\log q(y \mid x)]` with :math:`\alpha_{\text{paper}} = 0.1 N` is
``alpha = 0.1 N / N_l`` here (a weight per labelled example).

**Checks.** :meth:`~SemiSupervisedVAE.discrete_posterior` is the model's own
:math:`p(y \mid x) \propto p(y)\,p(x \mid y)`, each :math:`p(x \mid y)` estimated by
importance sampling over :math:`z` with :math:`q(z \mid x, y)` and the sum over :math:`y`
done exactly; :func:`pvae.discrete_amortization_gap` compares it with
:math:`q(y \mid x)`.

References
----------
1. Kingma, D. P., Rezende, D. J., Mohamed, S. and Welling, M. (2014). Semi-supervised
   learning with deep generative models. NeurIPS.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pyro
import pyro.distributions as dist
import torch
from torch import nn
from torch.distributions import Distribution
from torch.nn import functional as F

from pvae._checks import nonnegative_float, positive_int
from pvae._checks import seed as check_seed
from pvae._seed import seeded
from pvae.models.base import ModelBase
from pvae.models.likelihoods import make_likelihood
from pvae.models.networks import MLP, GaussianHead

__all__ = ["PIN", "SemiSupervisedVAE", "flat_cat"]

#: Logit offset that pins a labelled example's q(y | x) on its label: exp(-1e4) is 0 in
#: float32 and float64, so the other labels get probability exactly 0 and cost nothing.
PIN = -1.0e4


def flat_cat(*parts: torch.Tensor) -> torch.Tensor:
    """Concatenate feature tensors on the last dim, broadcasting their leading dims.

    Examples
    --------
    >>> flat_cat(torch.zeros(3, 2), torch.ones(4, 1, 5)).shape
    torch.Size([4, 3, 7])
    """
    batch = torch.broadcast_shapes(*(p.shape[:-1] for p in parts))
    return torch.cat([p.expand(*batch, p.shape[-1]) for p in parts], dim=-1)


def _with_label(mlp: MLP, features: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""``mlp(flat_cat(features, one_hot(y)))`` without building the one-hot input.

    The first layer's weight splits into the features' columns and one column per label,
    :math:`W [f; e_y] + b = W_f f + W_{:, y} + b`: the label's column is looked up, so with
    ``K`` labels enumerated for each example (``y`` ``[K, 1]``) the features' product is
    computed once, not ``K`` times (the encoder's :math:`q(z \mid x, y)` under
    ``elbo="enum"``). Labels outside ``0 .. K-1`` raise, as ``one_hot`` does.

    Examples
    --------
    >>> mlp, f, y = MLP(3 + 2, 4, (6,)), torch.randn(5, 3), torch.tensor([[0], [1]])
    >>> slow = mlp(flat_cat(f, F.one_hot(y, 2).float()))
    >>> _with_label(mlp, f, y).shape, torch.allclose(_with_label(mlp, f, y), slow, atol=1e-6)
    (torch.Size([2, 5, 4]), True)
    """
    first, d = mlp.linears[0], features.shape[-1]
    h = F.linear(features, first.weight[:, :d], first.bias)
    return mlp.net[1:](h + F.embedding(y, first.weight[:, d:].T))


class SemiSupervisedVAE(ModelBase):
    r"""Kingma et al.'s M2: ``model(x, y)`` / ``guide(x, y)``, ``y = -1`` where unlabelled.

    Sites ``"y"`` (the label, enumerated in the guide with ``elbo="enum"``), ``"z"``, ``"x"``,
    all in plate ``"data"`` (see the module docstring for the bound and ``alpha``).

    Parameters
    ----------
    x_dim : int or tuple of int
        Features per example, or an image shape.
    num_classes : int
        :math:`K`, labels ``0 .. K-1``.
    z_dim : int
        Dimension of the style code :math:`z`.
    hidden : sequence of int
        Hidden widths of the classifier and the encoder (the decoder: reversed).
    likelihood : str
        ``"bernoulli"``, ``"continuous_bernoulli"`` or ``"gaussian"``.
    alpha : float
        Weight of :math:`\log q(y \mid x)` per labelled example in the training objective.
    activation : str
        Hidden activation.
    validate : bool
        Check the data's support on every call.
    seed : int, optional
        Seed of the initial weights.

    Examples
    --------
    >>> m2 = SemiSupervisedVAE(x_dim=4, num_classes=3, z_dim=2, hidden=(8,), seed=0)
    >>> x = torch.tensor([[0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    >>> y = torch.tensor([2, -1])                       # the second one is unlabelled
    >>> loss = pyro.infer.TraceEnum_ELBO(max_plate_nesting=1).loss(m2.model, m2.guide, x, y)
    >>> m2.predict_proba(x).shape, m2.predict(x).shape
    (torch.Size([2, 3]), torch.Size([2]))
    """

    objective = "elbo"

    def __init__(
        self,
        x_dim: int | Sequence[int],
        num_classes: int,
        z_dim: int = 8,
        hidden: Sequence[int] = (256,),
        likelihood: str = "bernoulli",
        *,
        alpha: float = 1.0,
        activation: str = "relu",
        validate: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.num_classes = positive_int("num_classes", num_classes, example=10)
        hidden, likelihood, activation, seed = self._discrete_vae_args(
            x_dim, z_dim, hidden, likelihood, activation, validate, seed
        )
        self.alpha = nonnegative_float("alpha", alpha, example=1.0)
        d, k, zd = math.prod(self.x_shape), self.num_classes, self.z_dim

        def networks() -> tuple[nn.Module, ...]:
            body = hidden[:-1]
            last = hidden[-1] if hidden else d + k
            encoder = MLP(d + k, last, body, activation, activation) if hidden else nn.Identity()
            return (
                MLP(d, k, hidden, activation),
                encoder,
                GaussianHead(last, zd),
                MLP(zd + k, d, hidden[::-1], activation),
                make_likelihood(likelihood, self.x_shape, 1.0),
            )

        with seeded(seed):
            nets = networks()
        self.classifier, self.encoder, self.head, self.decoder, self.likelihood = nets
        self.config: dict[str, Any] = {
            "x_dim": self.x_dim if isinstance(self.x_dim, int) else list(self.x_shape),
            "num_classes": k,
            "z_dim": zd,
            "hidden": list(hidden),
            "likelihood": likelihood,
            "alpha": self.alpha,
            "activation": activation,
            "validate": self.validate,
            "seed": seed,
        }

    # -- checks ----------------------------------------------------------------------------
    def _labels(self, y: Any, n: int) -> torch.Tensor:
        k = self.num_classes
        if not isinstance(y, torch.Tensor) or y.shape != (n,) or y.is_floating_point():
            got = list(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ValueError(
                f"`y` must be an integer tensor of shape [{n}] (labels 0..{k - 1}, -1 for an "
                f"unlabelled example), got {got}"
                + (f" of dtype {y.dtype}" if isinstance(y, torch.Tensor) else "")
                + ". Pass e.g. `torch.full((n,), -1)` for unlabelled data."
            )
        if bool(((y < -1) | (y >= k)).any()):
            raise ValueError(
                f"`y` must hold labels in 0..{k - 1} or -1 (unlabelled), got values in "
                f"[{int(y.min())}, {int(y.max())}]."
            )
        return y.to(self.device).long()

    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(*x.shape[: x.dim() - len(self.x_shape)], -1)

    # -- the networks ------------------------------------------------------------------------
    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """The classifier's logits of :math:`q(y \\mid x)`, ``[N, num_classes]`` (unchecked)."""
        return self.classifier(self._flat(x))

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loc, scale)`` of :math:`q(z \\mid x, y)`; ``y`` labels, broadcast with ``x``.

        Examples
        --------
        >>> m2 = SemiSupervisedVAE(4, 3, z_dim=2, hidden=())
        >>> m2.encode(torch.zeros(5, 4), torch.arange(3).reshape(3, 1))[0].shape
        torch.Size([3, 5, 2])
        """
        x = self._flat(x)
        rows = torch.broadcast_shapes(x.shape[:-1], y.shape)
        if isinstance(self.encoder, MLP) and rows.numel() > x.shape[:-1].numel():
            # several labels per example (enumerated): x's share of the first layer once
            return self.head(_with_label(self.encoder, x, y))
        one_hot = F.one_hot(y, self.num_classes).to(x.dtype)
        return self.head(self.encoder(flat_cat(x, one_hot)))

    def decode(self, y: torch.Tensor, z: torch.Tensor) -> Distribution:
        """The likelihood :math:`p(x \\mid y, z)` (``y`` labels, broadcast with ``z``).

        Examples
        --------
        >>> SemiSupervisedVAE(4, 3, z_dim=2, hidden=()).decode(torch.tensor([0, 2]),
        ...                                                   torch.zeros(2, 2)).batch_shape
        torch.Size([2])
        """
        one_hot = F.one_hot(y, self.num_classes).to(z.dtype)
        out = self.decoder(flat_cat(z, one_hot))
        return self.likelihood(out.reshape(*out.shape[:-1], *self.x_shape))

    def _guide_logits(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """q(y | x) logits, pinned on the label where ``y >= 0`` (see :data:`PIN`)."""
        logits = self.classify(x)
        pinned = F.one_hot(y.clamp(min=0), self.num_classes).to(logits.dtype).sub(1) * -PIN
        return torch.where((y >= 0).unsqueeze(-1), pinned, logits)

    # -- the probabilistic program -------------------------------------------------------------
    def model(self, x: torch.Tensor, y: torch.Tensor) -> None:
        r"""Generative model :math:`p(y)\,p(z)\,p(x \mid y, z)`; ``x`` observed at ``"x"``.

        Examples
        --------
        >>> m2 = SemiSupervisedVAE(2, 3, z_dim=1, hidden=())
        >>> tr = pyro.poutine.trace(m2.model).get_trace(torch.ones(4, 2), -torch.ones(4).long())
        >>> tr.nodes["y"]["fn"].batch_shape, tr.nodes["x"]["fn"].batch_shape
        (torch.Size([4]), torch.Size([4]))
        """
        x = self._check_x(x)
        y = self._labels(y, x.shape[0])
        pyro.module(self._pyro_name, self)
        n, k = x.shape[0], self.num_classes
        with pyro.plate("data", n, device=x.device):
            label = pyro.sample("y", dist.Categorical(logits=x.new_zeros(n, k)))
            prior = dist.Normal(x.new_zeros(n, self.z_dim), x.new_ones(n, self.z_dim))
            z = pyro.sample("z", prior.to_event(1))
            pyro.sample("x", self.decode(label, z), obs=x)

    def guide(self, x: torch.Tensor, y: torch.Tensor) -> None:
        r"""Amortized :math:`q(y \mid x)\,q(z \mid x, y)`, ``"y"`` marked for enumeration.

        Examples
        --------
        >>> m2 = SemiSupervisedVAE(2, 3, z_dim=1, hidden=())
        >>> tr = pyro.poutine.trace(m2.guide).get_trace(torch.ones(2, 2), torch.tensor([1, -1]))
        >>> tr.nodes["y"]["value"][0].item(), tr.nodes["y"]["infer"]
        (1, {'enumerate': 'parallel'})
        """
        x = self._check_x(x)
        y = self._labels(y, x.shape[0])
        pyro.module(self._pyro_name, self)
        with pyro.plate("data", x.shape[0], device=x.device):
            q_y = dist.Categorical(logits=self._guide_logits(x, y))
            label = pyro.sample("y", q_y, infer={"enumerate": "parallel"})
            loc, scale = self.encode(x, label)
            pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    def auxiliary_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        r""":math:`-\alpha \sum_{n \text{ labelled}} \log q(y_n \mid x_n)`, differentiable.

        The classification term :func:`pvae.fit` adds to the training loss (Pyro's sign).

        Examples
        --------
        >>> m2 = SemiSupervisedVAE(2, 2, z_dim=1, hidden=(), alpha=0.0)
        >>> m2.auxiliary_loss(torch.ones(2, 2), torch.tensor([0, -1])).item()
        0.0
        """
        x = self._check_x(x)
        y = self._labels(y, x.shape[0])
        labelled = y >= 0
        if self.alpha == 0.0 or not bool(labelled.any()):
            return x.new_zeros(())
        log_q = F.log_softmax(self.classify(x[labelled]), -1)
        return -self.alpha * log_q.gather(-1, y[labelled].unsqueeze(-1)).sum()

    # -- the label -------------------------------------------------------------------------
    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        r"""The classifier's :math:`q(y \mid x)`, ``[N, num_classes]`` (rows sum to 1)."""
        return F.softmax(self.classify(self._check_x(x)), -1)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        r"""The most probable label under :math:`q(y \mid x)`, ``[N]`` integers."""
        return self.predict_proba(x).argmax(-1)

    def discrete_guide(self, x: torch.Tensor, num_particles: int = 1) -> torch.Tensor:
        r"""The amortized :math:`q(y \mid x)` (exact; ``num_particles`` is not used)."""
        return self.predict_proba(x).double()

    @torch.no_grad()
    def log_joint_y(self, x: torch.Tensor, num_particles: int = 100) -> torch.Tensor:
        r""":math:`\log p(x, y)` for every label, ``[N, K]`` float64, by importance sampling.

        .. math::

            \log p(x, y) \approx \log p(y) + \log \frac1S \sum_{s=1}^S
                \frac{p(x \mid y, z_s)\, p(z_s)}{q(z_s \mid x, y)},
            \qquad z_s \sim q(z \mid x, y),

        every label in one vectorized pass (a consistent estimate as :math:`S \to \infty`;
        for each :math:`y` a lower bound in expectation).
        """
        x = self._check_x(x)
        s = positive_int("num_particles", num_particles, example=100)
        k = self.num_classes
        labels = torch.arange(k, device=x.device).reshape(k, 1)  # [K, 1]
        loc, scale = self.encode(x, labels)  # [K, N, zd]
        q = dist.Normal(loc, scale).to_event(1)
        z = q.sample((s,))  # [S, K, N, zd]
        prior = dist.Normal(torch.zeros_like(loc), torch.ones_like(scale)).to_event(1)
        log_w = self.decode(labels, z).log_prob(x) + prior.log_prob(z) - q.log_prob(z)
        log_px_y = torch.logsumexp(log_w.double(), 0) - math.log(s)  # [K, N]
        return (log_px_y - math.log(k)).T

    def discrete_posterior(
        self, x: torch.Tensor, num_particles: int = 100, seed: int | None = None
    ) -> torch.Tensor:
        r"""The model's :math:`p(y \mid x)`, ``[N, K]`` float64: Bayes' rule over the labels
        with each :math:`p(x \mid y)` estimated by importance sampling (:meth:`log_joint_y`).

        Examples
        --------
        >>> m2 = SemiSupervisedVAE(4, 3, z_dim=2, hidden=(), seed=0)
        >>> p = m2.discrete_posterior(torch.ones(2, 4), num_particles=10, seed=0)
        >>> p.shape, torch.allclose(p.sum(-1), torch.ones(2, dtype=torch.float64))
        (torch.Size([2, 3]), True)
        """
        with seeded(check_seed("seed", seed)):
            return torch.softmax(self.log_joint_y(x, num_particles), -1)

    def __repr__(self) -> str:
        return (
            f"SemiSupervisedVAE(x_dim={self.config['x_dim']}, num_classes={self.num_classes}, "
            f"z_dim={self.z_dim}, hidden={tuple(self.config['hidden'])}, alpha={self.alpha})"
        )
