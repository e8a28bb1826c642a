r"""The variational autoencoder as a Pyro model/guide pair.

The generative model (the decoder) and the approximate posterior (the encoder) are

.. math::
    p(z) = \mathcal{N}(0, I), \qquad p(x \mid z) = \mathrm{Lik}(x \mid \mathrm{Dec}(z)),
    \qquad q(z \mid x) = \mathcal{N}(\mathrm{loc}(x), \mathrm{diag}\,\mathrm{scale}(x)^2),

trained by maximising the evidence lower bound, one number per example in nats:

.. math::
    \mathrm{ELBO}(x) = \mathbb{E}_{q(z \mid x)} \log p(x \mid z)
        - \beta\, \mathrm{KL}(q(z \mid x) \,\|\, p(z)) \;\le\; \log p(x) \quad (\beta = 1).

References
----------
1. Kingma, D. P. and Welling, M. (2014). Auto-Encoding Variational Bayes. ICLR.
2. Higgins, I. et al. (2017). beta-VAE: Learning basic visual concepts with a constrained
   variational framework. ICLR.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import pyro
import pyro.distributions as dist
import torch
from torch import nn
from torch.distributions import Distribution, kl_divergence

from pvae._checks import boolean, mlp_size, nonnegative_float, one_of, positive_int
from pvae._checks import seed as check_seed
from pvae.models.base import ModelBase, event_shape, positive_ints
from pvae.models.latent import LatentPaths
from pvae.models.likelihoods import check_scale, make_likelihood
from pvae.models.networks import (
    ACTIVATIONS,
    ConvDecoder,
    ConvEncoder,
    MLPDecoder,
    MLPEncoder,
)
from pvae.models.terms import ELBOTerms, KLWeightMessenger

__all__ = ["ELBOTerms", "MAX_BETA", "VAE"]

#: The largest KL weight ``beta``: ``beta * KL`` must stay far inside float32.
MAX_BETA = 1e6


class VAE(LatentPaths, ModelBase):
    r"""Variational autoencoder: a Pyro ``model(x)`` / ``guide(x)`` pair with amortized q(z|x).

    ``model(x)`` samples ``"z"`` from :math:`\mathcal{N}(0, I)` and observes ``"x"`` under
    ``pyro.plate("data", N)``; ``guide(x)`` samples ``"z"`` from the encoder's
    :math:`q(z \mid x)`. Both call ``pyro.module`` on the whole VAE, so the param store and
    ``vae.parameters()`` hold the same tensors and ``vae.state_dict()`` is all the learned
    state. ``beta`` multiplies the ``scale`` of both ``"z"`` sites
    (:class:`~pvae.models.terms.KLWeightMessenger`, ``beta = 0`` allowed), so
    ``Trace_ELBO`` optimises the :math:`\beta`-VAE objective
    :math:`\mathbb{E}_q \log p(x|z) - \beta\,\mathrm{KL}(q \| p(z))` while the traced
    densities (``unscaled_log_prob``, ``mask``) stay those of the :math:`\beta = 1` model,
    which is what every reported ELBO and :math:`\log p(x)` is computed from.

    Parameters
    ----------
    x_dim : int or tuple of int
        Features per example (``64``), or an image shape ``(H, W)`` / ``(C, H, W)``;
        data passed in have shape ``[N, *x_shape]``.
    z_dim : int
        Latent dimension (>= 1).
    hidden : sequence of int
        Hidden widths of the MLP encoder; the decoder uses them reversed.
    likelihood : str or callable
        ``"bernoulli"`` (binary data), ``"continuous_bernoulli"`` (intensities in [0, 1]),
        ``"gaussian"``, or ``fn(decoder_output) -> Distribution``
        (see :mod:`pvae.models.likelihoods`).
    scale : float or "learned"
        Standard deviation of the Gaussian likelihood, from ``1e-6`` to ``1e6``
        (:data:`~pvae.models.likelihoods.SCALE_RANGE`; checked for every likelihood).
    activation : str
        Hidden activation (:data:`pvae.models.networks.ACTIVATIONS`).
    net : {"mlp", "conv"}
        Built-in networks (:mod:`pvae.models.networks`): ``MLPEncoder``/``MLPDecoder``, or
        ``ConvEncoder``/``ConvDecoder`` (image ``x_dim`` only).
    channels : sequence of int
        Conv channels (``net="conv"``).
    beta : float
        KL weight in the training objective, from 0 to :data:`MAX_BETA`; settable at any
        time (``vae.beta = 0.5``), as KL annealing does. Reported numbers are always the
        model's.
    encoder, decoder : nn.Module, optional
        Replace the built-in nets: ``encoder(x) -> (loc, scale)`` with shapes
        ``[N, z_dim]`` and ``decoder(z) -> params`` with shape ``[N, *x_shape]``.
    validate : bool
        Check data against the likelihood's support on every call (one vectorised
        comparison; pass ``False`` to skip it in a hot loop). Shape, dtype and device are
        always checked.
    device : str or torch.device, optional
        Where to put the parameters (``"cpu"``, ``"cuda"``).
    seed : int, optional
        Seed of the initial weights: the same seed gives the same model. The networks are
        built under :func:`pvae._seed.seeded`, so the caller's random state is left as it
        was. ``None`` draws from (and advances) the global generators.
    custom : bool
        Set in :attr:`config` when user-supplied parts (encoder, decoder, likelihood
        callable) make ``VAE(**config)`` unable to rebuild the model; passing
        ``custom=True`` without such parts raises ``ValueError``.

    Attributes
    ----------
    config : dict
        JSON-serialisable constructor arguments: ``type(vae)(**vae.config)`` rebuilds the
        architecture (and, with a ``seed``, the initial weights) unless ``config["custom"]``.
    x_dim, x_shape, z_dim, beta, likelihood, encoder, decoder

    Raises
    ------
    ValueError
        For a bad ``x_dim``, ``z_dim``, ``hidden``, ``scale``, ``beta`` or ``seed``, sizes
        that ask for more than :data:`~pvae._checks.MAX_PARAMETERS` parameters, an unknown
        likelihood, activation or net, and at call time for data of the wrong shape, dtype
        or device, NaN, or data outside the likelihood's support.

    Examples
    --------
    >>> vae = VAE(x_dim=4, z_dim=2, hidden=(8,), seed=0)
    >>> x = torch.tensor([[0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    >>> svi = pyro.infer.SVI(vae.model, vae.guide, pyro.optim.Adam({"lr": 1e-2}),
    ...                      pyro.infer.Trace_ELBO())
    >>> loss = svi.step(x)   # -ELBO summed over the batch
    >>> terms = vae.elbo_terms(x)
    >>> terms.reconstruction.shape, terms.kl_prior.shape
    (torch.Size([2]), torch.Size([2]))
    >>> vae.sample(3).shape
    torch.Size([3, 4])
    """

    objective = "elbo"

    def __init__(
        self,
        x_dim: int | Sequence[int],
        z_dim: int,
        hidden: Sequence[int] = (256,),
        likelihood: str | Callable[[torch.Tensor], Distribution] = "bernoulli",
        *,
        scale: float | str = 1.0,
        activation: str = "relu",
        net: str = "mlp",
        channels: Sequence[int] = (16, 32),
        beta: float = 1.0,
        encoder: nn.Module | None = None,
        decoder: nn.Module | None = None,
        validate: bool = True,
        device: str | torch.device | None = None,
        seed: int | None = None,
        custom: bool = False,
    ) -> None:
        super().__init__()
        self.x_shape = event_shape(x_dim)
        self.x_dim = self.x_shape if isinstance(x_dim, (tuple, list)) else self.x_shape[0]
        self.z_dim = positive_int("z_dim", z_dim, example=8)
        hidden = positive_ints("hidden", hidden)
        channels = positive_ints("channels", channels, example="(16, 32)")
        net = one_of("net", net, ("mlp", "conv"))
        activation = one_of("activation", activation, ACTIVATIONS)
        self.validate = boolean("validate", validate)
        seed = check_seed("seed", seed)
        if net == "conv" and len(self.x_shape) == 1 and (encoder is None or decoder is None):
            raise ValueError(
                f'`net="conv"` needs an image `x_dim` (H, W) or (C, H, W), got {x_dim!r}. '
                'Pass the image shape, or use net="mlp".'
            )
        is_custom = encoder is not None or decoder is not None or callable(likelihood)
        if boolean("custom", custom) and not is_custom:
            raise ValueError(
                "this configuration (`custom=True`) describes a model built with a "
                "user-supplied `encoder`, `decoder` or `likelihood` callable; pass those "
                "parts again to rebuild it."
            )
        self.beta = beta
        check_scale(scale)  # also when the likelihood ignores it: `scale=inf` is a mistake
        features, cond = math.prod(self.x_shape), self._cond_dim()
        if encoder is None or decoder is None:
            mlp_size(
                "`x_dim`, `z_dim` and `hidden`",
                [(features + cond, *hidden, 2 * self.z_dim), (self.z_dim + cond, *hidden[::-1],
                                                              features)],
            )  # fmt: skip

        def networks() -> tuple[nn.Module, nn.Module, nn.Module]:
            cond, z, shape = self._cond_dim(), self.z_dim, self.x_shape
            enc, dec = encoder, decoder
            if enc is None and net == "conv":
                enc = ConvEncoder(shape, z, channels, hidden, activation, cond)
            elif enc is None:
                enc = MLPEncoder(shape, z, hidden, activation, cond)
            if dec is None and net == "conv":
                dec = ConvDecoder(z, shape, channels, hidden[::-1], activation, cond)
            elif dec is None:
                dec = MLPDecoder(z, shape, hidden[::-1], activation, cond)
            return enc, dec, make_likelihood(likelihood, shape, scale)

        self.encoder, self.decoder, self.likelihood = self._build(networks, seed)
        self.config: dict[str, Any] = {
            "x_dim": self.x_dim if isinstance(self.x_dim, int) else list(self.x_shape),
            "z_dim": self.z_dim,
            "hidden": list(hidden),
            "likelihood": self.likelihood.name,
            "scale": scale,
            "activation": activation,
            "net": net,
            "channels": list(channels),
            "beta": self.beta,
            "validate": self.validate,
            "seed": seed,
            "custom": is_custom,
        }
        if device is not None:
            self.to(device)

    # -- hooks the conditional VAE overrides ------------------------------------------------
    def _cond_dim(self) -> int:
        return 0

    def _call(self, net: nn.Module, t: torch.Tensor, c: torch.Tensor | None) -> Any:
        return net(t) if c is None else net(t, c)

    # -- beta ---------------------------------------------------------------------------------
    @property
    def beta(self) -> float:
        """KL weight of the :math:`\\beta`-VAE objective (1: the ELBO); set it at any time."""
        return self._beta

    @beta.setter
    def beta(self, value: float) -> None:
        beta = nonnegative_float("beta", value, example=1.0)
        if beta > MAX_BETA:
            raise ValueError(
                f"`beta` must be at most {MAX_BETA:g} (beyond it the weighted KL overflows the "
                f"float32 objective), got {value!r}. beta-VAEs use beta of order 1 to 100."
            )
        self._beta = beta

    # -- the probabilistic program ---------------------------------------------------------------
    def _encode(
        self, x: torch.Tensor, c: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        loc, scale = self._call(self.encoder, x, c)
        if loc.shape != (x.shape[0], self.z_dim) or scale.shape != loc.shape:
            raise ValueError(
                f"the `encoder` must return (loc, scale) of shape [{x.shape[0]}, {self.z_dim}], "
                f"got {list(loc.shape)} and {list(scale.shape)}."
            )
        return loc, scale

    def _decode(self, z: torch.Tensor, c: torch.Tensor | None) -> Distribution:
        return self.likelihood(self._call(self.decoder, z, c))

    def _model(self, x: torch.Tensor, c: torch.Tensor | None) -> None:
        pyro.module(self._pyro_name, self)
        n = x.shape[0]
        with pyro.plate("data", n, device=x.device):
            prior = dist.Normal(x.new_zeros(n, self.z_dim), x.new_ones(n, self.z_dim))
            with KLWeightMessenger(self._beta):
                z = pyro.sample("z", prior.to_event(1))
            pyro.sample("x", self._decode(z, c), obs=x)

    def _guide(self, x: torch.Tensor, c: torch.Tensor | None) -> None:
        pyro.module(self._pyro_name, self)
        with pyro.plate("data", x.shape[0], device=x.device):
            loc, scale = self._encode(x, c)
            with KLWeightMessenger(self._beta):
                pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    def _elbo_terms(self, x: torch.Tensor, c: torch.Tensor | None) -> ELBOTerms:
        loc, scale = self._encode(x, c)
        q = dist.Normal(loc, scale)
        z = q.rsample()
        reconstruction = self._decode(z, c).log_prob(x)
        kl = kl_divergence(q, dist.Normal(torch.zeros_like(loc), torch.ones_like(scale)))
        return ELBOTerms(reconstruction, kl.sum(-1))

    def model(self, x: torch.Tensor) -> None:
        r"""Generative model :math:`p(z)\,p(x \mid z)` with ``x`` observed at site ``"x"``.

        Parameters
        ----------
        x : torch.Tensor
            Data of shape ``[N, *x_shape]``.

        Examples
        --------
        >>> vae = VAE(2, 1, hidden=())
        >>> tr = pyro.poutine.trace(vae.model).get_trace(torch.ones(3, 2))
        >>> tr.nodes["z"]["value"].shape
        torch.Size([3, 1])
        """
        self._model(self._check_x(x), None)

    def guide(self, x: torch.Tensor) -> None:
        r"""Amortized posterior :math:`q(z \mid x)`, sampling site ``"z"``.

        Examples
        --------
        >>> vae = VAE(2, 1, hidden=())
        >>> tr = pyro.poutine.trace(vae.guide).get_trace(torch.ones(3, 2))
        >>> tr.nodes["z"]["fn"].batch_shape
        torch.Size([3])
        """
        self._guide(self._check_x(x), None)

    def elbo_terms(self, x: torch.Tensor) -> ELBOTerms:
        r"""Per-example reconstruction :math:`\log p(x|z)`, :math:`z \sim q`, and analytic KL.

        Differentiable in every parameter; ``terms.reconstruction - terms.kl_prior`` has
        the same expectation as ``Trace_ELBO`` on ``model``/``guide`` at ``beta = 1`` (per
        example), with lower variance. This is the fast path of :func:`pvae.fit`
        (``elbo="analytic"``); the training objective weights ``kl_prior`` by ``beta``.

        Returns
        -------
        ELBOTerms
            ``reconstruction`` and ``kl_prior``, each of shape ``[N]``, in nats.

        Examples
        --------
        >>> vae = VAE(2, 1, hidden=())
        >>> t = vae.elbo_terms(torch.ones(3, 2))
        >>> bool((t.kl_prior >= 0).all()), t.reconstruction.shape
        (True, torch.Size([3]))
        """
        return self._elbo_terms(self._check_x(x), None)

    # -- latent operations ------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's ``(loc, scale)`` of :math:`q(z|x)`, each ``[N, z_dim]``.

        Examples
        --------
        >>> loc, scale = VAE(2, 3, hidden=()).encode(torch.ones(4, 2))
        >>> loc.shape
        torch.Size([4, 3])
        """
        return self._encode(self._check_x(x), None)

    def decode(self, z: torch.Tensor) -> Distribution:
        """The likelihood :math:`p(x|z)`: batch shape ``[N]``, event shape ``x_shape``.

        Examples
        --------
        >>> d = VAE((2, 2), 3, hidden=()).decode(torch.zeros(5, 3))
        >>> d.batch_shape, d.event_shape
        (torch.Size([5]), torch.Size([2, 2]))
        """
        return self._decode(self._check_z(z), None)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of :math:`p(x \\mid z = \\mathrm{loc}(x))`: the decoded posterior mean code.

        Examples
        --------
        >>> VAE(4, 2, hidden=()).reconstruct(torch.ones(3, 4)).shape
        torch.Size([3, 4])
        """
        x = self._check_x(x)
        return self._decode(self._encode(x, None)[0], None).mean

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """``n`` new examples: decoded means of :math:`z \\sim p(z) = \\mathcal{N}(0, I)`.

        Returns the likelihood's mean (pixel probabilities for a Bernoulli), not binary
        draws; call ``vae.decode(z).sample()`` for draws.

        Examples
        --------
        >>> VAE((8, 8), 2, hidden=(16,)).sample(5).shape
        torch.Size([5, 8, 8])
        """
        n = positive_int("n", n, example=16)
        param = next(self.parameters())
        z = torch.randn(n, self.z_dim, device=param.device, dtype=param.dtype)
        return self._decode(z, None).mean
