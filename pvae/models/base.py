r"""What every pvae model shares: argument checks, a unique Pyro name, data checks, a device.

:class:`ModelBase` is the ``torch.nn.Module`` base of :class:`~pvae.models.VAE`,
:class:`~pvae.models.ConditionalVAE` and :class:`~pvae.models.Autoencoder`. It gives each
instance (copies included) its own name in Pyro's param store, checks data at the
boundary (shape, dtype and device always; the likelihood's support when ``validate``),
and builds the networks under :func:`pvae._seed.seeded`, so ``seed=`` fixes the initial
weights without touching the caller's random number generators.

The argument checks (:func:`event_shape`, :func:`positive_ints`, :func:`check_codes`) use
:mod:`pvae._checks` and raise its ``ValueError`` style: the argument in backticks, what
was expected, what was given, and the fix.

Examples
--------
>>> event_shape(64), event_shape((8, 8))
((64,), (8, 8))
>>> positive_ints("hidden", [256, 64])
(256, 64)
>>> event_shape(True)
Traceback (most recent call last):
...
ValueError: `x_dim` must be a positive integer or an image shape (H, W) or (C, H, W), ...
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from pvae._checks import boolean, one_of, positive_int
from pvae._checks import seed as check_seed
from pvae._seed import seeded

__all__ = ["ModelBase", "check_codes", "event_shape", "positive_ints"]

_ids = itertools.count()

#: The likelihoods of the semi-supervised and mixture VAEs.
_DISCRETE_VAE_LIKELIHOODS = ("bernoulli", "continuous_bernoulli", "gaussian")


def positive_ints(name: str, values: Any, *, example: str = "(256,)") -> tuple[int, ...]:
    """``values`` as a tuple of positive integers (layer widths, channels, a shape).

    Examples
    --------
    >>> positive_ints("channels", (16, 32))
    (16, 32)
    >>> positive_ints("hidden", 8)
    Traceback (most recent call last):
    ...
    ValueError: `hidden` must be a sequence of positive integers, got 8 (int). Pass e.g. ...
    """
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValueError(
            f"`{name}` must be a sequence of positive integers, got {values!r} "
            f"({type(values).__name__}). Pass e.g. `{name}={example}` (`()` for none)."
        )
    return tuple(positive_int(name, v) for v in values)


def event_shape(x_dim: Any) -> tuple[int, ...]:
    """The shape of one example: ``64 -> (64,)``, ``(8, 8) -> (8, 8)``, ``(1, 28, 28)``.

    Examples
    --------
    >>> event_shape([1, 28, 28])
    (1, 28, 28)
    """
    if isinstance(x_dim, (tuple, list)) and 1 <= len(x_dim) <= 3:
        return positive_ints("x_dim", x_dim)
    if not isinstance(x_dim, (tuple, list)):
        try:
            return (positive_int("x_dim", x_dim, example=64),)
        except ValueError:
            pass  # the message below names both accepted forms
    raise ValueError(
        "`x_dim` must be a positive integer or an image shape (H, W) or (C, H, W), got "
        f"{x_dim!r} ({type(x_dim).__name__}). Pass e.g. `x_dim=64` or `x_dim=(8, 8)`."
    )


def check_codes(t: Any, dim: int, name: str) -> torch.Tensor:
    """``t`` if it is a ``[N, dim]`` tensor of latent codes, else a ``ValueError``.

    Examples
    --------
    >>> check_codes(torch.zeros(3, 2), 2, "z").shape
    torch.Size([3, 2])
    >>> check_codes(torch.zeros(2), 2, "z")
    Traceback (most recent call last):
    ...
    ValueError: `z` must have shape [N, 2], got [2]. Pass one code per row, ...
    """
    if not isinstance(t, torch.Tensor) or t.dim() != 2 or t.shape[1] != dim:
        shape = list(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(
            f"`{name}` must have shape [N, {dim}], got {shape}. Pass one code per row, "
            f"e.g. `torch.randn(N, {dim})` (a single code: `{name}.reshape(1, {dim})`)."
        )
    return t


class ModelBase(nn.Module):
    """Base of the pvae models: a unique Pyro name, data checks, ``device``, seeded set-up.

    Subclasses set ``x_shape``, ``likelihood`` (for :meth:`_check_x`) and ``validate``,
    and build their networks inside :meth:`_build` so ``seed=`` applies to them.

    Examples
    --------
    >>> class Tiny(ModelBase):
    ...     def __init__(self, seed=None):
    ...         super().__init__()
    ...         self.net = self._build(lambda: nn.Linear(2, 1), seed)
    >>> bool(torch.equal(Tiny(seed=0).net.weight, Tiny(seed=0).net.weight))
    True
    """

    def __init__(self) -> None:
        super().__init__()
        self._new_name()

    def _new_name(self) -> None:
        # unique per instance (copies included), so two models never share param-store entries
        self._pyro_name = f"{type(self).__name__.lower()}{next(_ids)}"

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self._new_name()

    @staticmethod
    def _build(make: Callable[[], Any], seed: int | None) -> Any:
        """``make()`` with torch, NumPy and :mod:`random` seeded by ``seed``, then restored."""
        with seeded(seed):
            return make()

    @property
    def device(self) -> torch.device:
        """The device holding the parameters."""
        return next(self.parameters()).device

    def _discrete_vae_args(
        self,
        x_dim: Any,
        z_dim: Any,
        hidden: Any,
        likelihood: Any,
        activation: Any,
        validate: Any,
        seed: Any,
    ) -> tuple[tuple[int, ...], str, str, int | None]:
        """The checks the semi-supervised and mixture VAEs share: sets ``x_shape``, ``x_dim``,
        ``z_dim`` and ``validate``; returns the checked ``(hidden, likelihood, activation,
        seed)``."""
        from pvae.models.networks import ACTIVATIONS  # networks imports this module

        self.x_shape = event_shape(x_dim)
        self.x_dim = self.x_shape if isinstance(x_dim, (tuple, list)) else self.x_shape[0]
        self.z_dim = positive_int("z_dim", z_dim, example=8)
        hidden = positive_ints("hidden", hidden)
        activation = one_of("activation", activation, ACTIVATIONS)
        likelihood = one_of("likelihood", likelihood, _DISCRETE_VAE_LIKELIHOODS)
        self.validate = boolean("validate", validate)
        return hidden, likelihood, activation, check_seed("seed", seed)

    def _check_x(self, x: Any, arg: str = "x") -> torch.Tensor:
        """Shape, dtype, device (always) and support (if ``validate``) checks on data."""
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"`{arg}` must be a torch.Tensor, got {type(x).__name__}.")
        if tuple(x.shape[1:]) != self.x_shape:
            dims = ", ".join(map(str, self.x_shape))
            raise ValueError(
                f"`{arg}` must have shape [N, {dims}], got {list(x.shape)}. Reshape it (e.g. "
                f"`x.reshape(-1, {dims})`) or rebuild the model with the matching `x_dim`."
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

    def _check_z(self, z: Any, arg: str = "z") -> torch.Tensor:
        """Codes ``[N, z_dim]`` moved to the parameters' device and dtype."""
        check_codes(z, self.z_dim, arg)
        param = next(self.parameters())
        return z.to(param.device, param.dtype)
