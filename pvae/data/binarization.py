r"""Binary pixels for binary likelihoods, and checks that data suit a likelihood.

Binary likelihoods need binary pixels: *static* binarization draws one Bernoulli sample per
pixel once, with a fixed seed (Salakhutdinov & Murray, 2008); *dynamic* binarization draws a
fresh one for every minibatch (:class:`DynamicBinarized`), which acts as data augmentation.
:func:`check_support` says whether data suit a likelihood: grey-scale images under a
Bernoulli likelihood are the classic mistake (the ELBO is then not a bound on anything).

References
----------
1. Salakhutdinov, R. and Murray, I. (2008). On the quantitative analysis of deep belief
   networks. ICML.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from pvae.data.batches import as_tensor, source_tensor

__all__ = ["DynamicBinarized", "binarize", "check_support", "unit_interval"]


def unit_interval(x: Any, name: str) -> torch.Tensor:
    """``x`` as a tensor of probabilities in :math:`[0, 1]`, or a ``ValueError`` naming ``name``.

    Examples
    --------
    >>> unit_interval([0.0, 0.5], "x").tolist()
    [0.0, 0.5]
    """
    source, tensor = _values(x, name)  # the input's own range: -1e-300 is not 0 in float32
    if source.numel() and (source.min() < 0 or source.max() > 1):
        raise ValueError(
            f"`{name}` must hold probabilities in [0, 1] to be binarized, got values in "
            f"[{float(source.min()):.4g}, {float(source.max()):.4g}]. Rescale it first "
            "(e.g. x / 255)."
        )
    if not tensor.is_floating_point():  # integer 0/1: read as probabilities
        tensor = tensor.to(torch.get_default_dtype())
    return tensor


def _values(x: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` in its own dtype (booleans as 0/1 integers), for checks of its values, and as
    :func:`as_tensor` converts it (with its refusals: non-numeric, complex, NaN, overflow)."""
    source = source_tensor(x, name=name)
    tensor = as_tensor(source, name=name)
    return (source.to(torch.uint8) if source.dtype == torch.bool else source), tensor


def binarize(x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Draw binary pixels :math:`b \sim \mathrm{Bernoulli}(x)`, one draw per entry.

    Used once with a fixed seed this is *static* binarization; applied to every minibatch
    afresh it is *dynamic* binarization (:class:`DynamicBinarized`).

    Parameters
    ----------
    x : torch.Tensor
        Intensities in :math:`[0, 1]`, read as probabilities of a pixel being on.
    generator : torch.Generator, optional
        Random source (default: torch's global generator).

    Returns
    -------
    torch.Tensor
        Zeros and ones, the shape of ``x``, in torch's default dtype (as
        :func:`~pvae.data.as_tensor` converts); integer and boolean ``x`` are read as the
        probabilities 0 and 1.

    Raises
    ------
    ValueError
        If ``x`` is not numeric, is complex, holds NaN, or has values outside
        :math:`[0, 1]`.

    Examples
    --------
    >>> binarize(torch.tensor([0.0, 1.0, 1.0])).tolist()
    [0.0, 1.0, 1.0]
    """
    return torch.bernoulli(unit_interval(x, "x"), generator=generator)


class DynamicBinarized(Dataset):
    """A Dataset that draws fresh binary pixels every time an example is read.

    Pass it to :func:`pvae.fit` (through :func:`~pvae.data.as_batches`, which wraps a
    Dataset in a DataLoader): each minibatch is one vectorised Bernoulli draw from the
    grey-scale intensities, so every epoch sees a new binarization (dynamic binarization).

    Parameters
    ----------
    x : torch.Tensor
        Intensities in :math:`[0, 1]`, shape ``(N, D)``.
    y : torch.Tensor, optional
        Labels, shape ``(N,)``; when given, items are ``(x, y)`` pairs.

    Examples
    --------
    >>> from pvae.data import as_batches
    >>> ds = DynamicBinarized(torch.full((4, 3), 0.5))
    >>> len(ds), sorted(set(ds[0][0].tolist())) <= [0.0, 1.0]
    (4, True)
    >>> [tuple(b[0].shape) for b in as_batches(ds, batch_size=3)]
    [(3, 3), (1, 3)]
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
        x = unit_interval(x, "x")
        if x.dim() == 0 or len(x) == 0:
            raise ValueError(
                f"`x` must hold at least one example (row), got shape {list(x.shape)}."
            )
        if y is not None:
            y = as_tensor(y, name="y")
            if y.dim() == 0 or len(y) != len(x):
                raise ValueError(
                    f"`y` must have {len(x)} labels, one per row of `x`, got shape "
                    f"{list(y.shape)}."
                )
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, ...]]:
        # DataLoader calls this once per batch: one Bernoulli draw for the whole batch.
        xb = torch.bernoulli(self.x[list(indices)])
        if self.y is None:
            return [(row,) for row in xb]
        return list(zip(xb, self.y[list(indices)], strict=True))


def check_support(data: Any, likelihood: str, *, name: str = "data") -> None:
    """Check that data lie where a likelihood puts its mass.

    ``"bernoulli"`` needs zeros and ones, ``"continuous_bernoulli"`` needs values in
    :math:`[0, 1]`, ``"gaussian"`` needs finite values.

    Parameters
    ----------
    data : torch.Tensor or numpy.ndarray
        The observations.
    likelihood : str
        ``"bernoulli"``, ``"continuous_bernoulli"`` or ``"gaussian"``.
    name : str
        Argument name used in the error message.

    Raises
    ------
    ValueError
        If a value is outside the support, naming how many and the fix.

    Examples
    --------
    >>> check_support(torch.tensor([0.0, 1.0]), "bernoulli")
    >>> check_support(torch.tensor([0.5]), "bernoulli")
    Traceback (most recent call last):
    ...
    ValueError: `data` must be binary (0 or 1) for likelihood='bernoulli', ...
    """
    if not isinstance(likelihood, str) or likelihood not in (
        "bernoulli",
        "continuous_bernoulli",
        "gaussian",
    ):
        raise ValueError(
            "`likelihood` must be 'bernoulli', 'continuous_bernoulli' or 'gaussian', "
            f"got {likelihood!r} ({type(likelihood).__name__})."
        )
    x, _ = _values(data, name)  # in its own dtype: 2.2e-308 is not 0 (as it is in float32)
    if likelihood == "bernoulli":
        bad = int(((x != 0) & (x != 1)).sum())
        if bad:
            raise ValueError(
                f"`{name}` must be binary (0 or 1) for likelihood='bernoulli', got {bad} "
                f"value(s) that are not, in [{float(x.min()):.4g}, {float(x.max()):.4g}]. "
                "Binarize it (binarize='static' or 'dynamic'), or use "
                "likelihood='continuous_bernoulli' for intensities in [0, 1]."
            )
    elif likelihood == "continuous_bernoulli":
        bad = int(((x < 0) | (x > 1)).sum())
        if bad:
            raise ValueError(
                f"`{name}` must lie in [0, 1] for likelihood='continuous_bernoulli', got {bad} "
                f"value(s) outside, in [{float(x.min()):.4g}, {float(x.max()):.4g}]. "
                "Rescale it (e.g. x / 255), or use likelihood='gaussian'."
            )
    elif likelihood == "gaussian":
        bad = int((~torch.isfinite(x)).sum())
        if bad:
            raise ValueError(f"`{name}` must be finite for likelihood='gaussian', got {bad} inf.")
    else:
        raise ValueError(
            "`likelihood` must be 'bernoulli', 'continuous_bernoulli' or 'gaussian', "
            f"got {likelihood!r}."
        )
