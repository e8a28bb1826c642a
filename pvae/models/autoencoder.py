r"""The deterministic autoencoder of the lecture, trainable by the same SVI loop.

An encoder maps an example to a *code* and a decoder maps the code back:

.. math::
    \mathrm{Enc}: \mathcal{X} \to \mathcal{H}, \qquad \mathrm{Dec}: \mathcal{H} \to \mathcal{X},
    \qquad \mathrm{Enc}, \mathrm{Dec} = \arg\min \sum_n
    \lVert x_n - \mathrm{Dec}(\mathrm{Enc}(x_n)) \rVert^2 .

With ``hidden=()`` and ``activation="sigmoid"`` it is the single-layer case
:math:`h = \sigma(W x + b)`, :math:`\hat x = W' h + b'`.

**Pyro form.** ``model(x)`` adds ``pyro.factor("x", -||x - Dec(Enc(x))||^2)`` per example
inside ``pyro.plate("data", N)``: an (improper) density :math:`\exp(-\lVert x - \hat x
\rVert^2)` with no latent variable; ``guide(x)`` only registers the parameters. So
``Trace_ELBO``'s loss is *exactly* the sum over the batch of the squared errors, and
:func:`pvae.fit` trains it like any model/guide pair. There is no distribution over
codes, which is why an autoencoder is not a generative model: :meth:`Autoencoder.sample`
decodes codes drawn from an arbitrary distribution and mostly gives junk, unlike
:meth:`pvae.models.vae.VAE.sample`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pyro
import torch

from pvae._checks import boolean, mlp_size, one_of, optional, positive_int
from pvae._checks import seed as check_seed
from pvae.models.base import ModelBase, check_codes, event_shape, positive_ints
from pvae.models.likelihoods import Likelihood, in_range
from pvae.models.networks import ACTIVATIONS, MLP
from pvae.models.terms import ELBOTerms

__all__ = ["Autoencoder"]


class _FiniteData(Likelihood):
    """Support check only: finite real data."""

    name = "squared_error"

    def check(self, x: torch.Tensor) -> None:
        if x.numel() and not in_range(x, -math.inf, math.inf):
            self._fail(x, torch.isfinite(x), "the finite reals", "Remove or impute those values.")


class Autoencoder(ModelBase):
    r"""Deterministic autoencoder trained on the squared reconstruction error.

    Parameters
    ----------
    x_dim : int or tuple of int
        Features per example, or an image shape (flattened by the MLPs).
    code_dim : int
        Size of the code :math:`h` (>= 1); also readable as :attr:`z_dim`.
    hidden : sequence of int
        Hidden widths of the encoder (decoder: reversed). ``()``: single layer each way.
    activation : str
        Activation of the hidden layers *and of the code* (``"sigmoid"``: the lecture's
        :math:`h = \sigma(Wx + b)`).
    output_activation : str, optional
        Activation of the reconstruction (``None``: affine; ``"sigmoid"`` bounds it in (0, 1)).
    validate : bool
        Check that data are finite on every call (shape, dtype, device: always).
    device : str or torch.device, optional
        Where to put the parameters.
    seed : int, optional
        Seed of the initial weights (the caller's random state is left as it was; see
        :class:`~pvae.models.VAE`).
    custom : bool
        Always False (accepted so that ``Autoencoder(**ae.config)`` works).

    Attributes
    ----------
    objective : str
        ``"squared_error"``: training reports a loss, not an ELBO.
    config : dict
        JSON-serialisable constructor arguments (``config["custom"]`` is always False).
    beta : float
        Accepted for interface compatibility with the VAE (KL annealing sets it); there is
        no KL term, so it has no effect.

    Examples
    --------
    >>> ae = Autoencoder(x_dim=4, code_dim=2, seed=0)
    >>> x = torch.rand(3, 4)
    >>> lin = ae.encoder.linears[0]
    >>> torch.allclose(ae.encode(x), torch.sigmoid(x @ lin.weight.T + lin.bias))
    True
    >>> loss = pyro.infer.Trace_ELBO().loss(ae.model, ae.guide, x)
    >>> abs(loss - ae.reconstruction_error(x).sum().item()) < 1e-5
    True
    """

    objective = "squared_error"

    def __init__(
        self,
        x_dim: int | Sequence[int],
        code_dim: int,
        hidden: Sequence[int] = (),
        activation: str = "sigmoid",
        *,
        output_activation: str | None = None,
        validate: bool = True,
        device: str | torch.device | None = None,
        seed: int | None = None,
        custom: bool = False,
    ) -> None:
        super().__init__()
        if boolean("custom", custom):
            raise ValueError("`custom` must be False: an Autoencoder has no user-supplied parts.")
        self.x_shape = event_shape(x_dim)
        self.x_dim = self.x_shape if isinstance(x_dim, (tuple, list)) else self.x_shape[0]
        self.code_dim = positive_int("code_dim", code_dim, example=8)
        hidden = positive_ints("hidden", hidden, example="()")
        self.activation = one_of("activation", activation, ACTIVATIONS)
        optional(one_of, "output_activation", output_activation, choices=ACTIVATIONS)
        self.validate = boolean("validate", validate)
        seed = check_seed("seed", seed)
        features = self.num_features = math.prod(self.x_shape)  # 2**63 overflows a Size
        mlp_size(
            "`x_dim`, `code_dim` and `hidden`",
            [(features, *hidden, self.code_dim), (self.code_dim, *hidden[::-1], features)],
        )

        def networks() -> tuple[MLP, MLP]:
            encoder = MLP(features, self.code_dim, hidden, activation, activation)
            decoder = MLP(self.code_dim, features, hidden[::-1], activation, output_activation)
            return encoder, decoder

        self.encoder, self.decoder = self._build(networks, seed)
        self.likelihood = _FiniteData(self.x_shape)
        self.beta = 1.0
        self.config: dict[str, Any] = {
            "x_dim": self.x_dim if isinstance(self.x_dim, int) else list(self.x_shape),
            "code_dim": self.code_dim,
            "hidden": list(hidden),
            "activation": activation,
            "output_activation": output_activation,
            "validate": self.validate,
            "seed": seed,
            "custom": False,
        }
        if device is not None:
            self.to(device)

    @property
    def z_dim(self) -> int:
        """Alias of :attr:`code_dim`."""
        return self.code_dim

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x.reshape(x.shape[0], -1))

    def _decode(self, h: torch.Tensor) -> torch.Tensor:
        return self.decoder(h).reshape(h.shape[0], *self.x_shape)

    def _error(self, x: torch.Tensor) -> torch.Tensor:
        diff = x - self._decode(self._encode(x))
        return diff.square().reshape(x.shape[0], -1).sum(-1)

    def model(self, x: torch.Tensor) -> None:
        r"""``pyro.factor("x", -||x - Dec(Enc(x))||^2)`` under ``pyro.plate("data", N)``.

        Examples
        --------
        >>> ae = Autoencoder(2, 1)
        >>> tr = pyro.poutine.trace(ae.model).get_trace(torch.ones(3, 2))
        >>> tr.nodes["x"]["fn"].batch_shape
        torch.Size([3])
        """
        x = self._check_x(x)
        pyro.module(self._pyro_name, self)
        with pyro.plate("data", x.shape[0], device=x.device):
            pyro.factor("x", -self._error(x))

    def guide(self, x: torch.Tensor) -> None:
        """Registers the parameters; there is no latent variable to sample.

        Examples
        --------
        >>> ae = Autoencoder(2, 1)
        >>> ae.guide(torch.ones(3, 2))
        """
        self._check_x(x)
        pyro.module(self._pyro_name, self)

    def elbo_terms(self, x: torch.Tensor) -> ELBOTerms:
        r"""``reconstruction = -||x - Dec(Enc(x))||^2`` per example and ``kl_prior = 0``.

        The same quantity ``model``/``guide`` give ``Trace_ELBO`` (the loss is
        ``-(reconstruction - beta * kl_prior).sum()``, the summed squared error), so a
        training loop's analytic fast path works unchanged.

        Examples
        --------
        >>> t = Autoencoder(2, 1).elbo_terms(torch.ones(3, 2))
        >>> t.reconstruction.shape, t.kl_prior.tolist()
        (torch.Size([3]), [0.0, 0.0, 0.0])
        """
        err = self._error(self._check_x(x))
        return ELBOTerms(-err, torch.zeros_like(err))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code ``Enc(x)``, shape ``[N, code_dim]``.

        Examples
        --------
        >>> Autoencoder(4, 2).encode(torch.zeros(3, 4)).shape
        torch.Size([3, 2])
        """
        return self._encode(self._check_x(x))

    def decode(self, h: torch.Tensor) -> torch.Tensor:
        """The reconstruction ``Dec(h)``, shape ``[N, *x_shape]``.

        Examples
        --------
        >>> Autoencoder((2, 2), 3).decode(torch.zeros(5, 3)).shape
        torch.Size([5, 2, 2])
        """
        check_codes(h, self.code_dim, "h")
        return self._decode(h)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``Dec(Enc(x))`` without gradients.

        Examples
        --------
        >>> Autoencoder(4, 2).reconstruct(torch.zeros(3, 4)).shape
        torch.Size([3, 4])
        """
        return self._decode(self.encode(x))

    @torch.no_grad()
    def reconstruction_error(self, x: torch.Tensor) -> torch.Tensor:
        r"""Per-example squared error :math:`\lVert x - \mathrm{Dec}(\mathrm{Enc}(x))\rVert^2`.

        An evaluation: computed without gradients (training uses the model's own loss).

        Examples
        --------
        >>> Autoencoder(4, 2).reconstruction_error(torch.zeros(3, 4)).shape
        torch.Size([3])
        """
        return self._error(self._check_x(x))

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        r"""Decode ``n`` random codes, to show that an autoencoder is *not* generative.

        The codes are drawn uniformly from the code activation's range,
        :math:`U(0, 1)^k` for ``"sigmoid"`` and :math:`U(-1, 1)^k` for ``"tanh"``, and from
        :math:`\mathcal{N}(0, I)` otherwise. Nothing in training made these codes meaningful,
        so the decoded examples rarely look like data (compare a VAE's samples).

        Examples
        --------
        >>> Autoencoder((8, 8), 2).sample(4).shape
        torch.Size([4, 8, 8])
        """
        n = positive_int("n", n, example=16)
        param = next(self.parameters())
        shape, kw = (n, self.code_dim), {"device": param.device, "dtype": param.dtype}
        if self.activation == "sigmoid":
            h = torch.rand(shape, **kw)
        elif self.activation == "tanh":
            h = 2 * torch.rand(shape, **kw) - 1
        else:
            h = torch.randn(shape, **kw)
        return self._decode(h)
