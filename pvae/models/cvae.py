r"""The conditional VAE: generate a chosen class.

Labels :math:`y` are given, not modelled; they condition both networks:

.. math::
    p(z) = \mathcal{N}(0, I), \qquad p(x \mid z, y) = \mathrm{Lik}(x \mid \mathrm{Dec}(z, y)),
    \qquad q(z \mid x, y) = \mathcal{N}(\mathrm{loc}(x, y), \mathrm{diag}\,\mathrm{scale}(x, y)^2).

Because the decoder is told the class, the code :math:`z` is free to describe everything
else (style), and ``sample(n, y=3)`` draws new examples of class 3.

References
----------
1. Sohn, K., Lee, H. and Yan, X. (2015). Learning structured output representation using
   deep conditional generative models. NeurIPS.
2. Kingma, D. P., Rezende, D. J., Mohamed, S. and Welling, M. (2014). Semi-supervised
   learning with deep generative models. NeurIPS.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.distributions import Distribution
from torch.nn import functional as F

from pvae._checks import positive_int
from pvae.data.batches import as_tensor
from pvae.models.terms import ELBOTerms
from pvae.models.vae import VAE

__all__ = ["ConditionalVAE"]


class ConditionalVAE(VAE):
    r"""Conditional VAE: ``model(x, y)`` / ``guide(x, y)`` with labels ``y``.

    Takes every argument of :class:`~pvae.models.vae.VAE` plus ``num_classes``. The label
    enters both nets as a one-hot vector ``c`` of width ``num_classes``, so custom parts
    have signatures ``encoder(x, c) -> (loc, scale)`` and ``decoder(z, c) -> params``.

    Parameters
    ----------
    x_dim : int or tuple of int
        Features per example, or an image shape.
    z_dim : int
        Latent dimension (>= 1).
    num_classes : int
        Number of classes (>= 1); labels are ``0, ..., num_classes - 1``.
    hidden : sequence of int
        Hidden widths of the encoder (decoder: reversed).
    likelihood : str or callable
        As for :class:`~pvae.models.vae.VAE`.
    **kwargs
        Any keyword of :class:`~pvae.models.vae.VAE` (``beta``, ``net``, ``device``,
        ``seed``, ...).

    Notes
    -----
    ``y`` may be integer labels of shape ``[N]`` or one-hot (or class-probability) rows of
    shape ``[N, num_classes]``.

    Examples
    --------
    >>> import pyro
    >>> cvae = ConditionalVAE(x_dim=4, z_dim=2, num_classes=3, hidden=(8,), seed=0)
    >>> x = torch.tensor([[0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    >>> y = torch.tensor([0, 2])
    >>> svi = pyro.infer.SVI(cvae.model, cvae.guide, pyro.optim.Adam({"lr": 1e-2}),
    ...                      pyro.infer.Trace_ELBO())
    >>> loss = svi.step(x, y)
    >>> cvae.sample(5, y=2).shape
    torch.Size([5, 4])
    """

    def __init__(
        self,
        x_dim: int | Sequence[int],
        z_dim: int,
        num_classes: int,
        hidden: Sequence[int] = (256,),
        likelihood: Any = "bernoulli",
        **kwargs: Any,
    ) -> None:
        # set before VAE.__init__, which sizes the networks with `_cond_dim()`
        self.num_classes = positive_int("num_classes", num_classes, example=10)
        super().__init__(x_dim, z_dim, hidden, likelihood, **kwargs)
        self.config["num_classes"] = self.num_classes

    def _cond_dim(self) -> int:
        return self.num_classes

    def _labels(self, y: Any, n: int, like: torch.Tensor) -> torch.Tensor:
        """One-hot rows ``[n, num_classes]`` in ``like``'s dtype and device."""
        k = self.num_classes
        if y is None:
            raise ValueError(
                f"`y` must be the labels: {n} class indices in [0, {k}) or one-hot rows, got "
                "None. A ConditionalVAE is called as `model(x, y)`."
            )
        y = as_tensor(y, name="y").to(like.device)  # numeric, real, NaN-free
        if y.dim() == 0:
            y = y.expand(n)
        if y.dim() == 1 and y.shape[0] == n:
            labels = y.long()
            # integer dtypes round-trip exactly: only float labels need the whole-number test
            whole = not y.is_floating_point() or torch.equal(labels.to(y.dtype), y)
            if not whole or not ((labels >= 0) & (labels < k)).all():
                raise ValueError(
                    f"`y` must hold integer labels in [0, {k}), got values in "
                    f"[{y.min().item()}, {y.max().item()}]. Pass class indices 0..{k - 1}."
                )
            return F.one_hot(labels, k).to(like.dtype)
        if y.dim() == 2 and tuple(y.shape) == (n, k) and y.is_floating_point():
            sums = y.sum(-1)
            if not ((y >= 0).all() and torch.allclose(sums, torch.ones_like(sums), atol=1e-4)):
                raise ValueError(
                    "`y` rows must be one-hot (or class probabilities summing to 1), got "
                    f"row sums in [{sums.min().item():.4g}, {sums.max().item():.4g}] and "
                    f"smallest entry {y.min().item():.4g}. Normalize the rows, or pass "
                    "integer labels."
                )
            return y.to(like.dtype)
        raise ValueError(
            f"`y` must be {n} integer labels (shape [{n}]) or one-hot rows (shape [{n}, {k}]), "
            f"got shape {list(y.shape)}."
        )

    def _xy(self, x: Any, y: Any) -> tuple[torch.Tensor, torch.Tensor]:
        x = self._check_x(x)
        return x, self._labels(y, x.shape[0], x)

    def model(self, x: torch.Tensor, y: torch.Tensor) -> None:
        r"""Generative model :math:`p(z)\,p(x \mid z, y)`, ``x`` observed at site ``"x"``.

        Examples
        --------
        >>> cvae = ConditionalVAE(2, 1, num_classes=2, hidden=())
        >>> from pyro import poutine
        >>> tr = poutine.trace(cvae.model).get_trace(torch.ones(3, 2), torch.tensor([0, 1, 1]))
        >>> tr.nodes["x"]["fn"].batch_shape
        torch.Size([3])
        """
        self._model(*self._xy(x, y))

    def guide(self, x: torch.Tensor, y: torch.Tensor) -> None:
        r"""Amortized posterior :math:`q(z \mid x, y)`, sampling site ``"z"``.

        Examples
        --------
        >>> cvae = ConditionalVAE(2, 1, num_classes=2, hidden=())
        >>> from pyro import poutine
        >>> tr = poutine.trace(cvae.guide).get_trace(torch.ones(3, 2), torch.tensor([0, 1, 1]))
        >>> tr.nodes["z"]["value"].shape
        torch.Size([3, 1])
        """
        self._guide(*self._xy(x, y))

    def elbo_terms(self, x: torch.Tensor, y: torch.Tensor) -> ELBOTerms:
        """Per-example reconstruction and analytic KL(q || p(z)) (see :meth:`VAE.elbo_terms`).

        Examples
        --------
        >>> cvae = ConditionalVAE(2, 1, num_classes=2, hidden=())
        >>> cvae.elbo_terms(torch.ones(3, 2), torch.tensor([0, 1, 1])).kl_prior.shape
        torch.Size([3])
        """
        return self._elbo_terms(*self._xy(x, y))

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loc, scale)`` of :math:`q(z \\mid x, y)`, each ``[N, z_dim]``.

        Examples
        --------
        >>> ConditionalVAE(2, 3, num_classes=2, hidden=()).encode(torch.ones(4, 2), 1)[0].shape
        torch.Size([4, 3])
        """
        return self._encode(*self._xy(x, y))

    def decode(self, z: torch.Tensor, y: Any) -> Distribution:
        """The likelihood :math:`p(x \\mid z, y)`; ``y`` is one label or ``N`` labels.

        Examples
        --------
        >>> ConditionalVAE(2, 3, num_classes=2, hidden=()).decode(torch.zeros(4, 3), 0).batch_shape
        torch.Size([4])
        """
        z = self._check_z(z)
        return self._decode(z, self._labels(y, z.shape[0], z))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: Any) -> torch.Tensor:
        """Mean of :math:`p(x \\mid z = \\mathrm{loc}(x, y), y)`.

        Examples
        --------
        >>> ConditionalVAE(2, 1, num_classes=2, hidden=()).reconstruct(torch.ones(3, 2), 1).shape
        torch.Size([3, 2])
        """
        x, c = self._xy(x, y)
        return self._decode(self._encode(x, c)[0], c).mean

    @torch.no_grad()
    def sample(self, n: int, y: Any = None) -> torch.Tensor:
        """``n`` decoded means of :math:`z \\sim \\mathcal{N}(0, I)` for class(es) ``y``.

        Parameters
        ----------
        n : int
            Number of examples.
        y : int or tensor of n labels, optional
            The class to generate; ``None`` cycles through ``0, 1, ..., num_classes - 1``.

        Examples
        --------
        >>> ConditionalVAE(2, 1, num_classes=3, hidden=()).sample(4, y=2).shape
        torch.Size([4, 2])
        """
        n = positive_int("n", n, example=16)
        param = next(self.parameters())
        if y is None:
            y = torch.arange(n, device=param.device) % self.num_classes
        z = torch.randn(n, self.z_dim, device=param.device, dtype=param.dtype)
        return self._decode(z, self._labels(y, n, z)).mean

    @torch.no_grad()
    def interpolate(
        self,
        x1: torch.Tensor,
        x2: torch.Tensor,
        steps: int = 8,
        method: str = "linear",
        *,
        y: Any,
    ) -> torch.Tensor:
        """Decoded path between ``loc(x1, y)`` and ``loc(x2, y)`` for one class ``y``.

        Examples
        --------
        >>> cvae = ConditionalVAE(2, 1, num_classes=2, hidden=())
        >>> cvae.interpolate(torch.zeros(2), torch.ones(2), steps=3, y=1).shape
        torch.Size([3, 2])
        """
        c = self._labels(y, 1, next(self.parameters()))
        z = self._path(x1, x2, steps, method, c)
        return self._decode(z, c.expand(len(z), -1)).mean

    @torch.no_grad()
    def traverse(
        self, x: torch.Tensor, dim: int, values: Sequence[float], *, y: Any
    ) -> torch.Tensor:
        """Decode ``loc(x, y)`` with coordinate ``dim`` set to each of ``values``.

        Examples
        --------
        >>> cvae = ConditionalVAE(2, 2, num_classes=2, hidden=())
        >>> cvae.traverse(torch.ones(2), dim=0, values=[-1.0, 1.0], y=0).shape
        torch.Size([2, 2])
        """
        c = self._labels(y, 1, next(self.parameters()))
        z = self._traverse_codes(x, dim, values, c)
        return self._decode(z, c.expand(len(z), -1)).mean
