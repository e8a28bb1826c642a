r"""A VAE with a Gaussian-mixture prior: a categorical component per example.

.. math::

    p(c) = \mathrm{Cat}(\pi), \quad p(z \mid c) = \mathcal{N}(\mu_c, \mathrm{diag}\,\sigma_c^2),
    \quad p(x \mid z) = \mathrm{Lik}(x \mid \mathrm{Dec}(z)), \qquad
    q(z \mid x) = \mathcal{N}(\mathrm{loc}(x), \mathrm{diag}\,\mathrm{scale}(x)^2),

with :math:`\pi`, :math:`\mu_c` and :math:`\sigma_c` learned (Jiang et al.'s VaDE; Dilokthanakul
et al.'s GMVAE). The guide samples only :math:`z`; the component ``"c"`` is left to the model,
marked ``infer={"enumerate": "parallel"}``, so ``elbo="enum"`` sums it out exactly:

.. math::

    \mathrm{ELBO}(x) = \mathbb{E}_{q(z \mid x)}\Big[\log p(x \mid z)
        + \log \sum_c p(c)\,p(z \mid c) - \log q(z \mid x)\Big].

**Exact posteriors over the component.** Given :math:`z`, Bayes' rule over the :math:`K`
components is exact (:meth:`MixtureVAE.component_posterior`). Given :math:`x`,
:meth:`MixtureVAE.cluster` is :math:`p(c \mid x) \propto p(c)\,p(x \mid c)`, each
:math:`p(x \mid c)` estimated by importance sampling over :math:`z` with the encoder's
:math:`q(z \mid x)` (the same draws for every component) and the sum over :math:`c` exact.
The amortized distribution over :math:`c` that the ELBO uses is
:math:`q(c \mid x) = \mathbb{E}_{q(z \mid x)}\,p(c \mid z)` (:meth:`discrete_guide`);
:func:`pvae.discrete_amortization_gap` measures its KL to :math:`p(c \mid x)`.

References
----------
1. Jiang, Z., Zheng, Y., Tan, H., Tang, B. and Zhou, H. (2017). Variational Deep Embedding:
   an unsupervised and generative approach to clustering. IJCAI.
2. Dilokthanakul, N. et al. (2016). Deep unsupervised clustering with Gaussian mixture
   variational autoencoders. arXiv:1611.02648.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyro
import pyro.distributions as dist
import torch
from torch import nn
from torch.distributions import Distribution

from pvae._checks import positive_int
from pvae._checks import seed as check_seed
from pvae._seed import seeded
from pvae.models.base import ModelBase, check_codes
from pvae.models.likelihoods import make_likelihood
from pvae.models.networks import MLPDecoder, MLPEncoder

__all__ = ["MixtureVAE"]


class MixtureVAE(ModelBase):
    r"""A Gaussian-mixture VAE: ``model(x)`` / ``guide(x)``, component ``"c"`` enumerated.

    Parameters
    ----------
    x_dim : int or tuple of int
        Features per example, or an image shape.
    num_components : int
        :math:`K`, the mixture components.
    z_dim : int
        Latent dimension.
    hidden : sequence of int
        Hidden widths of the encoder (the decoder: reversed).
    likelihood : str
        ``"bernoulli"``, ``"continuous_bernoulli"`` or ``"gaussian"``.
    spread : float
        Standard deviation of the components' initial means (so they start apart).
    activation : str
        Hidden activation.
    validate : bool
        Check the data's support on every call.
    seed : int, optional
        Seed of the initial weights and means.

    Examples
    --------
    >>> mix = MixtureVAE(x_dim=4, num_components=3, z_dim=2, hidden=(8,), seed=0)
    >>> x = torch.tensor([[0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    >>> loss = pyro.infer.TraceEnum_ELBO(max_plate_nesting=1).loss(mix.model, mix.guide, x)
    >>> p = mix.cluster(x, num_particles=16, seed=0)
    >>> p.shape, torch.allclose(p.sum(-1), torch.ones(2, dtype=torch.float64))
    (torch.Size([2, 3]), True)
    """

    objective = "elbo"

    def __init__(
        self,
        x_dim: int | Sequence[int],
        num_components: int,
        z_dim: int = 8,
        hidden: Sequence[int] = (256,),
        likelihood: str = "bernoulli",
        *,
        spread: float = 1.0,
        activation: str = "relu",
        validate: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.num_components = positive_int("num_components", num_components, example=10)
        hidden, likelihood, activation, seed = self._discrete_vae_args(
            x_dim, z_dim, hidden, likelihood, activation, validate, seed
        )
        k, zd = self.num_components, self.z_dim
        with seeded(seed):
            self.encoder = MLPEncoder(self.x_shape, zd, hidden, activation)
            self.decoder = MLPDecoder(zd, self.x_shape, hidden[::-1], activation)
            self.likelihood = make_likelihood(likelihood, self.x_shape, 1.0)
            self.component_logits = nn.Parameter(torch.zeros(k))
            self.component_locs = nn.Parameter(float(spread) * torch.randn(k, zd))
            self.component_log_scales = nn.Parameter(torch.zeros(k, zd))
        self.config: dict[str, Any] = {
            "x_dim": self.x_dim if isinstance(self.x_dim, int) else list(self.x_shape),
            "num_components": k,
            "z_dim": zd,
            "hidden": list(hidden),
            "likelihood": likelihood,
            "spread": float(spread),
            "activation": activation,
            "validate": self.validate,
            "seed": seed,
        }

    # -- the parts -----------------------------------------------------------------------------
    def components(self) -> Distribution:
        r"""The :math:`K` Gaussians :math:`p(z \mid c)`: batch shape ``[K]``, event ``[z_dim]``."""
        return dist.Normal(self.component_locs, self.component_log_scales.exp()).to_event(1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's ``(loc, scale)`` of :math:`q(z \\mid x)`, each ``[N, z_dim]``."""
        return self.encoder(self._check_x(x))

    def decode(self, z: torch.Tensor) -> Distribution:
        """The likelihood :math:`p(x \\mid z)` (broadcasts over leading dims of ``z``)."""
        return self.likelihood(self.decoder(z))

    # -- the probabilistic program ---------------------------------------------------------------
    def model(self, x: torch.Tensor) -> None:
        r"""Generative model :math:`p(c)\,p(z \mid c)\,p(x \mid z)`; ``"c"`` enumerated.

        Examples
        --------
        >>> mix = MixtureVAE(2, 3, z_dim=1, hidden=())
        >>> tr = pyro.poutine.trace(mix.model).get_trace(torch.ones(4, 2))
        >>> tr.nodes["c"]["infer"], tr.nodes["z"]["value"].shape
        ({'enumerate': 'parallel'}, torch.Size([4, 1]))
        """
        x = self._check_x(x)
        pyro.module(self._pyro_name, self)
        n = x.shape[0]
        with pyro.plate("data", n, device=x.device):
            c = pyro.sample(
                "c",
                dist.Categorical(logits=self.component_logits.expand(n, self.num_components)),
                infer={"enumerate": "parallel"},
            )
            scale = self.component_log_scales.exp()
            z = pyro.sample("z", dist.Normal(self.component_locs[c], scale[c]).to_event(1))
            pyro.sample("x", self.decode(z), obs=x)

    def guide(self, x: torch.Tensor) -> None:
        r"""Amortized posterior :math:`q(z \mid x)`, sampling ``"z"``."""
        x = self._check_x(x)
        pyro.module(self._pyro_name, self)
        with pyro.plate("data", x.shape[0], device=x.device):
            loc, scale = self.encoder(x)
            pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    # -- the component ---------------------------------------------------------------------------
    def _log_joint_c_given_z(self, z: torch.Tensor) -> torch.Tensor:
        """:math:`\\log p(c) + \\log p(z \\mid c)`, ``[..., K]``."""
        log_pi = torch.log_softmax(self.component_logits, -1)
        return log_pi + self.components().log_prob(z.unsqueeze(-2))

    @torch.no_grad()
    def component_posterior(self, z: torch.Tensor) -> torch.Tensor:
        r"""Exact :math:`p(c \mid z) \propto p(c)\,p(z \mid c)`, ``[N, K]`` float64.

        Examples
        --------
        >>> mix = MixtureVAE(2, 3, z_dim=1, hidden=(), seed=0)
        >>> mix.component_posterior(torch.zeros(5, 1)).sum(-1).tolist()
        [1.0, 1.0, 1.0, 1.0, 1.0]
        """
        z = check_codes(z, self.z_dim, "z").to(self.component_locs)
        return torch.softmax(self._log_joint_c_given_z(z).double(), -1)

    @torch.no_grad()
    def _draws(self, x: torch.Tensor, num_particles: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``z`` ``[S, N, zd]`` from :math:`q(z \\mid x)` and :math:`\\log p(c, x, z) -
        \\log q(z \\mid x)`, ``[S, N, K]``."""
        x = self._check_x(x)
        s = positive_int("num_particles", num_particles, example=64)
        loc, scale = self.encoder(x)
        q = dist.Normal(loc, scale).to_event(1)
        z = q.sample((s,))
        log_w = self.decode(z).log_prob(x) - q.log_prob(z)  # [S, N]
        return z, self._log_joint_c_given_z(z) + log_w.unsqueeze(-1)

    def cluster(
        self, x: torch.Tensor, num_particles: int = 64, seed: int | None = None
    ) -> torch.Tensor:
        r""":math:`p(c \mid x)`, ``[N, K]`` float64 (module docstring): the sum over
        components exact, :math:`p(x \mid c)` by importance sampling with ``num_particles``
        draws of :math:`q(z \mid x)`.

        .. math::

            p(c \mid x) \propto \sum_{s=1}^S
                \frac{p(c)\,p(z_s \mid c)\,p(x \mid z_s)}{q(z_s \mid x)}.
        """
        with seeded(check_seed("seed", seed)):
            _, log_w = self._draws(x, num_particles)
        return torch.softmax(torch.logsumexp(log_w.double(), 0), -1)

    def discrete_posterior(
        self, x: torch.Tensor, num_particles: int = 64, seed: int | None = None
    ) -> torch.Tensor:
        r"""The model's :math:`p(c \mid x)` (:meth:`cluster`)."""
        return self.cluster(x, num_particles, seed)

    def discrete_guide(
        self, x: torch.Tensor, num_particles: int = 64, seed: int | None = None
    ) -> torch.Tensor:
        r""":math:`q(c \mid x) = \mathbb{E}_{q(z \mid x)}\,p(c \mid z)`, ``[N, K]`` float64
        (a mean over ``num_particles`` draws): the component distribution the ELBO uses."""
        with seeded(check_seed("seed", seed)):
            z, _ = self._draws(x, num_particles)
        with torch.no_grad():
            return torch.softmax(self._log_joint_c_given_z(z).double(), -1).mean(0)

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """``n`` new examples: decoded means of :math:`c \\sim p(c)`, :math:`z \\sim p(z | c)`."""
        n = positive_int("n", n, example=16)
        c = dist.Categorical(logits=self.component_logits).sample((n,))
        z = self.components().sample((n,))[torch.arange(n), c]
        return self.decode(z).mean

    def __repr__(self) -> str:
        return (
            f"MixtureVAE(x_dim={self.config['x_dim']}, num_components={self.num_components}, "
            f"z_dim={self.z_dim}, hidden={tuple(self.config['hidden'])})"
        )
