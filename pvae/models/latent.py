r"""Walks through latent space: straight and great-circle paths, and traversals.

A VAE's prior :math:`\mathcal{N}(0, I)` puts almost all its mass on a shell of radius
about :math:`\sqrt{k}` in :math:`k` dimensions, so the straight line between two codes
passes through the improbable region near the origin. The spherical path of
:func:`slerp`,

.. math::
    \mathrm{slerp}(a, b; t) = \frac{\sin((1-t)\Omega)}{\sin\Omega}\, a
      + \frac{\sin(t\Omega)}{\sin\Omega}\, b, \qquad \cos\Omega = \frac{a \cdot b}{|a||b|},

stays at a typical distance (White 2016). :class:`LatentPaths` gives
:class:`~pvae.models.VAE` and :class:`~pvae.models.ConditionalVAE` the codes behind their
``interpolate`` and ``traverse`` methods.

References
----------
1. White, T. (2016). Sampling generative networks. arXiv:1609.04468.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from pvae._checks import nonnegative_int, one_of, positive_int

__all__ = ["LatentPaths", "linear", "slerp"]


def linear(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Points ``a + t (b - a)`` on the straight line, one row per ``t``.

    Examples
    --------
    >>> linear(torch.zeros(2), torch.ones(2), torch.tensor([0.0, 0.5])).tolist()
    [[0.0, 0.0], [0.5, 0.5]]
    """
    return a + t[:, None] * (b - a)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Points on the great circle from ``a`` to ``b`` (linear when they are parallel).

    Examples
    --------
    >>> p = slerp(torch.tensor([2.0, 0.0]), torch.tensor([0.0, 2.0]), torch.tensor([0.5]))
    >>> [round(v, 4) for v in p[0].tolist()]  # sqrt(2), sqrt(2): still at radius 2
    [1.4142, 1.4142]
    """
    cos = (a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if omega.abs() < 1e-6:  # parallel codes: spherical = linear
        return linear(a, b, t)
    w1 = torch.sin((1 - t) * omega) / torch.sin(omega)
    w2 = torch.sin(t * omega) / torch.sin(omega)
    return w1[:, None] * a + w2[:, None] * b


class LatentPaths:
    """``interpolate`` and ``traverse`` for a model with ``_encode(x, c)`` and ``_decode(z, c)``.

    A mixin of :class:`~pvae.models.VAE`: the host provides ``_encode(x, c) -> (loc,
    scale)``, ``_decode(z, c) -> Distribution``, ``_check_x(x, name)``, ``x_shape`` and
    ``z_dim``; ``c`` is the conditioning (one-hot labels of a conditional VAE, else
    ``None``; :class:`~pvae.models.ConditionalVAE` overrides both methods to take ``y``).

    Examples
    --------
    >>> from pvae.models import VAE
    >>> vae = VAE(3, 2, hidden=())
    >>> vae._path(torch.zeros(3), torch.ones(3), 4, "slerp", None).shape
    torch.Size([4, 2])
    """

    def _one(self, x: Any, name: str) -> torch.Tensor:
        """One example as a ``[1, *x_shape]`` batch."""
        if isinstance(x, torch.Tensor) and tuple(x.shape) == self.x_shape:
            x = x.unsqueeze(0)
        x = self._check_x(x, name)
        if x.shape[0] != 1:
            raise ValueError(
                f"`{name}` must be one example, got {x.shape[0]}. Pass `{name}[i]` for one row."
            )
        return x

    def _path(
        self, x1: Any, x2: Any, steps: Any, method: Any, c: torch.Tensor | None
    ) -> torch.Tensor:
        """``steps`` codes from ``loc(x1)`` to ``loc(x2)``, endpoints included."""
        steps = positive_int("steps", steps, example=8)
        method = one_of("method", method, ("linear", "slerp"))
        a, b = (self._encode(self._one(x, n), c)[0][0] for x, n in ((x1, "x1"), (x2, "x2")))
        t = torch.linspace(0, 1, steps, device=a.device, dtype=a.dtype)
        return linear(a, b, t) if method == "linear" else slerp(a, b, t)

    def _traverse_codes(
        self, x: Any, dim: Any, values: Sequence[float], c: torch.Tensor | None
    ) -> torch.Tensor:
        """``loc(x)`` repeated with coordinate ``dim`` set to each of ``values``."""
        dim = nonnegative_int("dim", dim)
        if dim >= self.z_dim:
            raise ValueError(
                f"`dim` must be an integer in [0, {self.z_dim}), got {dim}. Pick a latent "
                f"coordinate 0..{self.z_dim - 1}."
            )
        loc = self._encode(self._one(x, "x"), c)[0]
        flat = values.reshape(-1).tolist() if hasattr(values, "reshape") else values
        if isinstance(flat, (str, bytes)) or not all(
            isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in flat
        ):
            raise ValueError(
                f"`values` must be numbers for latent coordinate {dim}, got {values!r}. "
                "Pass e.g. `values=[-2, 0, 2]`."
            )
        vals = torch.as_tensor(flat, dtype=loc.dtype, device=loc.device).reshape(-1)
        z = loc.repeat(len(vals), 1)
        z[:, dim] = vals
        return z

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
        >>> from pvae.models import VAE
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
        >>> from pvae.models import VAE
        >>> VAE(4, 2, hidden=()).traverse(torch.ones(4), dim=1, values=[-2, 0, 2]).shape
        torch.Size([3, 4])
        """
        z = self._traverse_codes(x, dim, values, None)
        return self._decode(z, None).mean
