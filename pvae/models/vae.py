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
3. White, T. (2016). Sampling generative networks (spherical interpolation). arXiv:1609.04468.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from torch import nn
from torch.distributions import Distribution, kl_divergence

from pvae.models.likelihoods import make_likelihood
from pvae.models.networks import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder, _int_tuple

__all__ = ["ELBOTerms", "VAE"]

_ids = itertools.count()


class ELBOTerms(NamedTuple):
    r"""The two ELBO terms per example (shape ``[N]``, nats, positive sense).

    ``reconstruction`` is :math:`\log p(x \mid z)` at one reparameterised draw
    :math:`z \sim q(z \mid x)`; ``kl`` is the analytic :math:`\mathrm{KL}(q(z|x) \| p(z))`.
    The ELBO is ``reconstruction - kl`` (:math:`\beta`-VAE: ``reconstruction - beta * kl``).
    """

    reconstruction: torch.Tensor
    kl: torch.Tensor


def _check_dim(value: Any, arg: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{arg}` must be a positive integer (>= 1), got {value!r}.")
    return value


def _x_shape(x_dim: Any) -> tuple[int, ...]:
    """The event shape of one example: ``64 -> (64,)``, ``(8, 8) -> (8, 8)``."""
    if isinstance(x_dim, int) and not isinstance(x_dim, bool):
        return (_check_dim(x_dim, "x_dim"),)
    if isinstance(x_dim, (tuple, list)) and 1 <= len(x_dim) <= 3:
        return tuple(_check_dim(d, "x_dim") for d in x_dim)
    raise ValueError(
        f"`x_dim` must be a positive integer or an image shape (H, W) or (C, H, W), got {x_dim!r}."
    )


def _check_codes(t: Any, dim: int, arg: str) -> None:
    """Raise unless ``t`` is a ``[N, dim]`` tensor of latent codes."""
    if not isinstance(t, torch.Tensor) or t.dim() != 2 or t.shape[1] != dim:
        shape = list(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(
            f"`{arg}` must have shape [N, {dim}], got {shape}. Pass one code per row, "
            f"e.g. `torch.randn(N, {dim})` (a single code: `{arg}.reshape(1, {dim})`)."
        )


class _PyroModule(nn.Module):
    """Shared plumbing: a unique Pyro name, input checks, the device."""

    def _new_name(self) -> None:
        # unique per instance (copies included), so two models never share param-store entries
        self._pyro_name = f"{type(self).__name__.lower()}{next(_ids)}"

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self._new_name()

    @property
    def device(self) -> torch.device:
        """The device holding the parameters."""
        return next(self.parameters()).device

    def _check_x(self, x: Any, arg: str = "x") -> torch.Tensor:
        """Shape, dtype, device (always) and support (if ``validate``) checks on data."""
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"`{arg}` must be a torch.Tensor, got {type(x).__name__}.")
        if tuple(x.shape[1:]) != self.x_shape:
            raise ValueError(
                f"`{arg}` must have shape [N, {', '.join(map(str, self.x_shape))}], got "
                f"{list(x.shape)}. Reshape it (e.g. `x.reshape(-1, "
                f"{', '.join(map(str, self.x_shape))})`) or rebuild the model with the "
                f"matching `x_dim`."
            )
        param = next(self.parameters())
        if x.dtype != param.dtype:
            raise ValueError(
                f"`{arg}` must have dtype {param.dtype} like the model's parameters, got "
                f"{x.dtype}. Convert with `x.to({param.dtype})` (or the model with `.double()`)."
            )
        if x.device != param.device:
            raise ValueError(
                f"`{arg}` is on {x.device} but the model is on {param.device}; move it with "
                f"`x.to(model.device)`."
            )
        if self.validate:
            self.likelihood.check(x)
        return x


def _kl_scale(beta: float) -> contextlib.AbstractContextManager:
    """Scale the z sites' log densities by beta (mask them out at beta = 0)."""
    if beta == 1.0:
        return contextlib.nullcontext()
    if beta == 0.0:
        return poutine.mask(mask=False)
    return poutine.scale(scale=beta)


def _slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    cos = (a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if omega.abs() < 1e-6:  # parallel codes: spherical = linear
        return a + t[:, None] * (b - a)
    w1 = torch.sin((1 - t) * omega) / torch.sin(omega)
    w2 = torch.sin(t * omega) / torch.sin(omega)
    return w1[:, None] * a + w2[:, None] * b


class VAE(_PyroModule):
    r"""Variational autoencoder: a Pyro ``model(x)`` / ``guide(x)`` pair with amortized q(z|x).

    ``model(x)`` samples ``"z"`` from :math:`\mathcal{N}(0, I)` and observes ``"x"`` under
    ``pyro.plate("data", N)``; ``guide(x)`` samples ``"z"`` from the encoder's
    :math:`q(z \mid x)`. Both call ``pyro.module`` on the whole VAE, so the param store and
    ``vae.parameters()`` hold the same tensors and ``vae.state_dict()`` is all the learned
    state. With ``beta != 1`` both ``"z"`` sites are scaled by ``beta`` (``poutine.scale``;
    ``poutine.mask`` at 0), so ``Trace_ELBO`` optimises the :math:`\beta`-VAE objective
    :math:`\mathbb{E}_q \log p(x|z) - \beta\,\mathrm{KL}(q \| p(z))`.

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
        Standard deviation of the Gaussian likelihood.
    activation : str
        Hidden activation (:data:`pvae.models.networks.ACTIVATIONS`).
    net : {"mlp", "conv"}
        Built-in networks (:mod:`pvae.models.networks`): ``MLPEncoder``/``MLPDecoder``, or
        ``ConvEncoder``/``ConvDecoder`` (image ``x_dim`` only).
    channels : sequence of int
        Conv channels (``net="conv"``).
    beta : float
        KL weight (>= 0); settable at any time (``vae.beta = 0.5``), as KL annealing does.
    encoder, decoder : nn.Module, optional
        Replace the built-in nets: ``encoder(x) -> (loc, scale)`` with shapes
        ``[N, z_dim]`` and ``decoder(z) -> params`` with shape ``[N, *x_shape]``.
    validate : bool
        Check data against the likelihood's support on every call (one vectorised
        comparison; pass ``False`` to skip it in a hot loop). Shape, dtype and device are
        always checked.
    device : str or torch.device, optional
        Where to put the parameters (``"cpu"``, ``"cuda"``).
    custom : bool
        Set in :attr:`config` when user-supplied parts (encoder, decoder, likelihood
        callable) make ``VAE(**config)`` unable to rebuild the model; passing
        ``custom=True`` without such parts raises ``ValueError``.

    Attributes
    ----------
    config : dict
        JSON-serialisable constructor arguments: ``type(vae)(**vae.config)`` rebuilds the
        architecture (not the weights) unless ``config["custom"]`` is True.
    x_dim, x_shape, z_dim, beta, likelihood, encoder, decoder

    Raises
    ------
    ValueError
        For a non-positive ``z_dim``, a bad ``x_dim``, unknown likelihood or net, and at
        call time for data of the wrong shape, dtype or device, NaN, or data outside the
        likelihood's support.

    Examples
    --------
    >>> vae = VAE(x_dim=4, z_dim=2, hidden=(8,))
    >>> x = torch.tensor([[0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    >>> svi = pyro.infer.SVI(vae.model, vae.guide, pyro.optim.Adam({"lr": 1e-2}),
    ...                      pyro.infer.Trace_ELBO())
    >>> loss = svi.step(x)   # -ELBO summed over the batch
    >>> terms = vae.elbo_terms(x)
    >>> terms.reconstruction.shape, terms.kl.shape
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
        custom: bool = False,
    ) -> None:
        super().__init__()
        self._new_name()
        self.x_shape = _x_shape(x_dim)
        self.x_dim = x_dim if isinstance(x_dim, int) else self.x_shape
        self.z_dim = _check_dim(z_dim, "z_dim")
        hidden = _int_tuple(hidden, "hidden")
        channels = _int_tuple(channels, "channels")
        if net not in ("mlp", "conv"):
            raise ValueError(f'`net` must be "mlp" or "conv", got {net!r}.')
        if net == "conv" and len(self.x_shape) == 1 and (encoder is None or decoder is None):
            raise ValueError(
                f'`net="conv"` needs an image `x_dim` (H, W) or (C, H, W), got {x_dim!r}. '
                'Pass the image shape, or use net="mlp".'
            )
        is_custom = encoder is not None or decoder is not None or callable(likelihood)
        if custom and not is_custom:
            raise ValueError(
                "this configuration (`custom=True`) describes a model built with a "
                "user-supplied `encoder`, `decoder` or `likelihood` callable; pass those "
                "parts again to rebuild it."
            )
        cond = self._cond_dim()
        if encoder is None:
            if net == "conv":
                encoder = ConvEncoder(self.x_shape, z_dim, channels, hidden, activation, cond)
            else:
                encoder = MLPEncoder(self.x_shape, z_dim, hidden, activation, cond)
        if decoder is None:
            if net == "conv":
                decoder = ConvDecoder(
                    z_dim, self.x_shape, channels, hidden[::-1], activation, cond
                )
            else:
                decoder = MLPDecoder(z_dim, self.x_shape, hidden[::-1], activation, cond)
        self.encoder, self.decoder = encoder, decoder
        self.likelihood = make_likelihood(likelihood, self.x_shape, scale)
        self.validate = bool(validate)
        self.beta = beta
        self.config: dict[str, Any] = {
            "x_dim": self.x_dim if isinstance(self.x_dim, int) else list(self.x_shape),
            "z_dim": self.z_dim,
            "hidden": list(hidden),
            "likelihood": self.likelihood.name,
            "scale": scale,
            "activation": activation,
            "net": net,
            "channels": list(channels),
            "beta": float(beta),
            "validate": self.validate,
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
        value = float(value)
        if not value >= 0 or math.isinf(value):
            raise ValueError(f"`beta` must be a finite number >= 0, got {value!r}.")
        self._beta = value

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
            with _kl_scale(self._beta):
                z = pyro.sample("z", prior.to_event(1))
            pyro.sample("x", self._decode(z, c), obs=x)

    def _guide(self, x: torch.Tensor, c: torch.Tensor | None) -> None:
        pyro.module(self._pyro_name, self)
        with pyro.plate("data", x.shape[0], device=x.device):
            loc, scale = self._encode(x, c)
            with _kl_scale(self._beta):
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

        Differentiable in every parameter; ``(terms.reconstruction - terms.kl)`` has the
        same expectation as ``Trace_ELBO`` on ``model``/``guide`` (per example), with lower
        variance. This is the fast path of :func:`pvae.fit` (``elbo="analytic"``).

        Returns
        -------
        ELBOTerms
            ``reconstruction`` and ``kl``, each of shape ``[N]``, in nats.

        Examples
        --------
        >>> vae = VAE(2, 1, hidden=())
        >>> t = vae.elbo_terms(torch.ones(3, 2))
        >>> bool((t.kl >= 0).all()), t.reconstruction.shape
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

    def _check_z(self, z: torch.Tensor) -> torch.Tensor:
        _check_codes(z, self.z_dim, "z")
        param = next(self.parameters())
        return z.to(param.device, param.dtype)

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
        n = _check_dim(n, "n")
        param = next(self.parameters())
        z = torch.randn(n, self.z_dim, device=param.device, dtype=param.dtype)
        return self._decode(z, None).mean

    def _path(
        self, x1: Any, x2: Any, steps: int, method: str, c: torch.Tensor | None
    ) -> torch.Tensor:
        steps = _check_dim(steps, "steps")
        if method not in ("linear", "slerp"):
            raise ValueError(f'`method` must be "linear" or "slerp", got {method!r}.')
        a, b = (self._one(x, name) for x, name in ((x1, "x1"), (x2, "x2")))
        a, b = self._encode(a, c)[0][0], self._encode(b, c)[0][0]
        t = torch.linspace(0, 1, steps, device=a.device, dtype=a.dtype)
        return a + t[:, None] * (b - a) if method == "linear" else _slerp(a, b, t)

    def _one(self, x: torch.Tensor, name: str) -> torch.Tensor:
        if isinstance(x, torch.Tensor) and tuple(x.shape) == self.x_shape:
            x = x.unsqueeze(0)
        x = self._check_x(x, name)
        if x.shape[0] != 1:
            raise ValueError(f"`{name}` must be one example, got {x.shape[0]}.")
        return x

    @torch.no_grad()
    def interpolate(
        self, x1: torch.Tensor, x2: torch.Tensor, steps: int = 8, method: str = "linear"
    ) -> torch.Tensor:
        r"""Decode a path between the codes ``loc(x1)`` and ``loc(x2)``.

        ``method="linear"`` walks the straight line; ``"slerp"`` the great circle
        :math:`\frac{\sin((1-t)\Omega)}{\sin\Omega} a + \frac{\sin(t\Omega)}{\sin\Omega} b`,
        which keeps codes at a typical distance from the origin under a Gaussian prior.

        Parameters
        ----------
        x1, x2 : torch.Tensor
            One example each, shape ``x_shape`` or ``[1, *x_shape]``.
        steps : int
            Number of points, endpoints included.
        method : {"linear", "slerp"}

        Returns
        -------
        torch.Tensor
            Decoded means, shape ``[steps, *x_shape]``.

        Examples
        --------
        >>> vae = VAE(4, 2, hidden=())
        >>> vae.interpolate(torch.zeros(4), torch.ones(4), steps=5, method="slerp").shape
        torch.Size([5, 4])
        """
        return self._decode(self._path(x1, x2, steps, method, None), None).mean

    @torch.no_grad()
    def traverse(self, x: torch.Tensor, dim: int, values: Sequence[float]) -> torch.Tensor:
        """Decode ``loc(x)`` with latent coordinate ``dim`` set to each of ``values``.

        Parameters
        ----------
        x : torch.Tensor
            One example, shape ``x_shape`` or ``[1, *x_shape]``.
        dim : int
            Latent coordinate to vary, ``0 <= dim < z_dim``.
        values : sequence of float
            Values for that coordinate.

        Returns
        -------
        torch.Tensor
            Decoded means, shape ``[len(values), *x_shape]``.

        Examples
        --------
        >>> VAE(4, 2, hidden=()).traverse(torch.ones(4), dim=1, values=[-2, 0, 2]).shape
        torch.Size([3, 4])
        """
        z = self._traverse_codes(x, dim, values, None)
        return self._decode(z, None).mean

    def _traverse_codes(
        self, x: torch.Tensor, dim: int, values: Sequence[float], c: torch.Tensor | None
    ) -> torch.Tensor:
        if isinstance(dim, bool) or not isinstance(dim, int) or not 0 <= dim < self.z_dim:
            raise ValueError(f"`dim` must be an integer in [0, {self.z_dim}), got {dim!r}.")
        loc = self._encode(self._one(x, "x"), c)[0]
        vals = torch.as_tensor(values, dtype=loc.dtype, device=loc.device).reshape(-1)
        z = loc.repeat(len(vals), 1)
        z[:, dim] = vals
        return z
