r"""Likelihoods :math:`p(x \mid z)`: from a decoder's output to a distribution over ``x``.

A likelihood is a small ``torch.nn.Module`` that turns the decoder's output ``params``
(shape ``[N, *x_shape]``) into a distribution with batch shape ``[N]`` and event shape
``x_shape``, so ``log_prob(x)`` is one number per example, in nats. It also checks that
data lie in its support before training starts (the classic trap is a Bernoulli
likelihood on grey-level intensities, Pyro issue 529: the loss is finite but meaningless).

* ``"bernoulli"``: the decoder gives logits; ``x`` in {0, 1}.
* ``"continuous_bernoulli"``: logits; ``x`` in [0, 1] (Loaiza-Ganem & Cunningham 2019).
* ``"gaussian"``: the mean, with a fixed or learned standard deviation; real ``x`` with
  :math:`|x| \le 10^{12}` (beyond it the squared error overflows float32).
* a callable ``fn(params) -> Distribution``: ``fn`` decides (its own validation applies).

References
----------
1. Loaiza-Ganem, G. and Cunningham, J. P. (2019). The continuous Bernoulli: fixing a
   pervasive error in variational autoencoders. NeurIPS.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

import pyro.distributions as dist
import torch
from torch import nn
from torch.distributions import Distribution, Independent

from pvae._checks import positive_float

__all__ = [
    "LIKELIHOODS",
    "BernoulliLikelihood",
    "CallableLikelihood",
    "ContinuousBernoulliLikelihood",
    "GaussianLikelihood",
    "Likelihood",
    "check_scale",
    "in_range",
    "make_likelihood",
]


def _describe(x: torch.Tensor, bad: torch.Tensor) -> str:
    """Summarise offending values (the slow path, only run once a check has failed)."""
    nan = int(torch.isnan(x).sum())
    if nan:
        return f"{nan} NaN value(s)"
    first = x[bad].flatten()[0].item()
    return (
        f"{int(bad.sum())} value(s) outside it (range [{x.min().item():.4g}, "
        f"{x.max().item():.4g}], e.g. {first:.4g})"
    )


def in_range(x: torch.Tensor, low: float, high: float) -> bool:
    """``low <= x <= high`` everywhere (strictly inside for infinite bounds), NaN-free.

    One ``aminmax`` pass and one device sync: the cheapest full check on CPU and GPU.

    Examples
    --------
    >>> in_range(torch.tensor([0.0, 1.0]), 0.0, 1.0), in_range(torch.tensor([2.0]), 0.0, 1.0)
    (True, False)
    """
    lo, hi = torch.aminmax(x)
    bounds = (lo > low) if math.isinf(low) else (lo >= low)
    bounds = bounds & ((hi < high) if math.isinf(high) else (hi <= high))
    return bool(bounds)  # NaN propagates through aminmax and fails both comparisons


class Likelihood(nn.Module):
    """Base class: ``likelihood(params)`` returns a distribution over ``x``.

    Subclasses set :attr:`name` and implement :meth:`forward` and :meth:`check`.

    Parameters
    ----------
    x_shape : sequence of int
        The shape of one example (the event shape).

    Examples
    --------
    >>> lik = make_likelihood("bernoulli", (3,))
    >>> isinstance(lik, Likelihood), lik.x_shape
    (True, (3,))
    >>> lik.check(torch.tensor([[0.0, 1.0, 2.0]]))
    Traceback (most recent call last):
    ...
    ValueError: `x` must lie in {0, 1} for likelihood='bernoulli', got 1 value(s) outside it ...
    """

    name = "likelihood"

    def __init__(self, x_shape: Sequence[int]) -> None:
        super().__init__()
        self.x_shape = tuple(x_shape)

    def check(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` if ``x`` holds NaN (subclasses also check their support)."""
        if torch.isnan(x).any():
            raise ValueError(
                f"`x` contains {int(torch.isnan(x).sum())} NaN value(s); remove or impute them."
            )

    def _fail(self, x: torch.Tensor, ok: torch.Tensor, support: str, fix: str) -> None:
        raise ValueError(
            f"`x` must lie in {support} for likelihood={self.name!r}, got "
            f"{_describe(x, ~ok)}. {fix}"
        )


class BernoulliLikelihood(Likelihood):
    """Independent Bernoulli pixels with the decoder's output as logits.

    Examples
    --------
    >>> lik = BernoulliLikelihood((2,))
    >>> d = lik(torch.zeros(3, 2))
    >>> d.batch_shape, d.event_shape
    (torch.Size([3]), torch.Size([2]))
    >>> round(d.log_prob(torch.ones(3, 2))[0].item(), 6)  # 2 * log(1/2)
    -1.386294
    """

    name = "bernoulli"

    def forward(self, params: torch.Tensor) -> Distribution:
        return dist.Bernoulli(logits=params).to_event(len(self.x_shape))

    def check(self, x: torch.Tensor) -> None:
        # one fused test: x (1 - x) is 0 exactly at 0 and 1 (NaN and inf give non-zeros)
        if torch.count_nonzero(x * (1 - x)):
            self._fail(
                x,
                (x == 0) | (x == 1),
                "{0, 1}",
                'Binarize the data first (`pvae.data.digits(binarize="static")`, '
                "`pvae.data.binarize(x)` or `(x > 0.5).float()`), or use "
                'likelihood="continuous_bernoulli" for intensities in [0, 1] (Pyro issue 529).',
            )


class ContinuousBernoulliLikelihood(Likelihood):
    """Continuous Bernoulli on [0, 1] with the decoder's output as logits.

    The normalised density for grey-level intensities (Loaiza-Ganem & Cunningham 2019);
    its mean is not ``sigmoid(logits)`` but :attr:`torch.distributions.ContinuousBernoulli.mean`.

    Examples
    --------
    >>> d = ContinuousBernoulliLikelihood((2,))(torch.zeros(3, 2))
    >>> d.log_prob(torch.full((3, 2), 0.3)).shape  # density 1 at logits 0: log 1 = 0
    torch.Size([3])
    """

    name = "continuous_bernoulli"

    def forward(self, params: torch.Tensor) -> Distribution:
        return dist.ContinuousBernoulli(logits=params).to_event(len(self.x_shape))

    def check(self, x: torch.Tensor) -> None:
        if x.numel() and not in_range(x, 0.0, 1.0):
            self._fail(
                x,
                (x >= 0) & (x <= 1),
                "[0, 1]",
                'Rescale it, e.g. `x / x.max()`, or use likelihood="gaussian".',
            )


class GaussianLikelihood(Likelihood):
    r"""Independent Gaussians :math:`\mathcal{N}(x \mid \mathrm{params}, \sigma^2)`.

    Parameters
    ----------
    x_shape : sequence of int
        The shape of one example.
    scale : float or "learned"
        A fixed standard deviation :math:`\sigma`, or ``"learned"`` for one learned
        :math:`\sigma` per feature, stored as the parameter ``log_scale`` (initialised at 0,
        i.e. :math:`\sigma = 1`).

    Examples
    --------
    >>> d = GaussianLikelihood((2,), scale=1.0)(torch.zeros(1, 2))
    >>> round(d.log_prob(torch.zeros(1, 2)).item(), 6)  # -log(2 pi)
    -1.837877
    >>> [name for name, _ in GaussianLikelihood((2,), scale="learned").named_parameters()]
    ['log_scale']
    """

    name = "gaussian"

    def __init__(self, x_shape: Sequence[int], scale: float | str = 1.0) -> None:
        super().__init__(x_shape)
        self.fixed_scale: float | None = None
        if isinstance(scale, str) and scale == "learned":
            self.log_scale = nn.Parameter(torch.zeros(self.x_shape))
        else:
            self.fixed_scale = check_scale(scale)

    def forward(self, params: torch.Tensor) -> Distribution:
        if self.fixed_scale is None:
            scale = self.log_scale.exp().expand(params.shape)
        else:
            scale = params.new_full((), self.fixed_scale).expand(params.shape)  # no copy
        return dist.Normal(params, scale).to_event(len(self.x_shape))

    def check(self, x: torch.Tensor) -> None:
        if x.numel() and not in_range(x, -MAX_GAUSSIAN_DATA, MAX_GAUSSIAN_DATA):
            self._fail(
                x,
                x.abs() <= MAX_GAUSSIAN_DATA,
                f"[-{MAX_GAUSSIAN_DATA:g}, {MAX_GAUSSIAN_DATA:g}]",
                "Remove or impute non-finite values, and standardize the data: beyond 1e12 "
                "the squared error overflows float32 and log p(x|z) would be -inf.",
            )


#: The largest magnitude of data under the Gaussian likelihood: ``(x / scale) ** 2`` must
#: stay finite in float32 for every ``scale`` in :data:`SCALE_RANGE`.
MAX_GAUSSIAN_DATA = 1e12

#: The range of a fixed Gaussian ``scale``: its square and its inverse square stay normal
#: float32 numbers for data of order 1, so ``log_prob`` is finite.
SCALE_RANGE = (1e-6, 1e6)


def check_scale(scale: object) -> float | str:
    """``scale`` if it is ``"learned"`` or a number in :data:`SCALE_RANGE`, else a
    ``ValueError`` naming it.

    Examples
    --------
    >>> check_scale(0.5), check_scale("learned")
    (0.5, 'learned')
    """
    if isinstance(scale, str) and scale == "learned":
        return scale
    low, high = SCALE_RANGE
    if not (isinstance(scale, numbers.Real) and not isinstance(scale, bool)) or not (
        low <= scale <= high
    ):
        raise ValueError(
            f'`scale` must be "learned" or a number from {low:g} to {high:g} (the standard '
            f"deviation of the Gaussian likelihood, in float32), got {scale!r} "
            f'({type(scale).__name__}). Pass e.g. `scale=1.0`, or `scale="learned"`.'
        )
    return positive_float("scale", scale)


class CallableLikelihood(Likelihood):
    """Wrap a user factory ``fn(params) -> torch Distribution``.

    The last ``len(x_shape)`` batch dimensions of the returned distribution are moved to
    the event with ``.to_event``, so ``fn`` may return per-pixel distributions.
    If ``fn`` is an ``nn.Module`` its parameters are learned with the model.

    Examples
    --------
    >>> lik = CallableLikelihood(lambda p: dist.Laplace(p, 0.5), (2,))
    >>> d = lik(torch.zeros(3, 2))
    >>> d.batch_shape, d.event_shape
    (torch.Size([3]), torch.Size([2]))
    """

    name = "custom"

    def __init__(self, fn: Callable[[torch.Tensor], Distribution], x_shape: Sequence[int]):
        super().__init__(x_shape)
        self.fn = fn
        self.name = getattr(fn, "__name__", type(fn).__name__)

    def forward(self, params: torch.Tensor) -> Distribution:
        d = self.fn(params)
        if not isinstance(d, Distribution):
            raise ValueError(
                f"the `likelihood` callable must return a torch Distribution, got "
                f"{type(d).__name__}."
            )
        event_dims = len(self.x_shape)
        if len(d.event_shape) < event_dims:
            dims = min(event_dims - len(d.event_shape), len(d.batch_shape))
            # a plain torch.distributions object has no `.to_event`: Independent is the same
            d = d.to_event(dims) if hasattr(d, "to_event") else Independent(d, dims)
        batch_shape = params.shape[: params.dim() - event_dims]
        if d.batch_shape != batch_shape or tuple(d.event_shape) != self.x_shape:
            raise ValueError(
                f"the `likelihood` callable must give batch shape {list(batch_shape)} and "
                f"event shape {list(self.x_shape)} (after .to_event), got "
                f"{list(d.batch_shape)} and {list(d.event_shape)}."
            )
        return d


#: Built-in likelihood names and their classes.
LIKELIHOODS: dict[str, type[Likelihood]] = {
    "bernoulli": BernoulliLikelihood,
    "continuous_bernoulli": ContinuousBernoulliLikelihood,
    "gaussian": GaussianLikelihood,
}


def make_likelihood(
    likelihood: str | Callable[[torch.Tensor], Distribution],
    x_shape: Sequence[int],
    scale: float | str = 1.0,
) -> Likelihood:
    """Build a :class:`Likelihood` from a name in :data:`LIKELIHOODS` or a callable.

    Parameters
    ----------
    likelihood : str or callable
        ``"bernoulli"``, ``"continuous_bernoulli"``, ``"gaussian"``, or ``fn(params)``
        returning a torch Distribution.
    x_shape : sequence of int
        The shape of one example.
    scale : float or "learned"
        Standard deviation of the Gaussian likelihood (ignored by the others).

    Returns
    -------
    Likelihood

    Raises
    ------
    ValueError
        For an unknown name.

    Examples
    --------
    >>> make_likelihood("gaussian", (3,), scale="learned").name
    'gaussian'
    """
    if callable(likelihood) and not isinstance(likelihood, str):
        return CallableLikelihood(likelihood, x_shape)
    if likelihood not in LIKELIHOODS:
        raise ValueError(
            f"`likelihood` must be one of {sorted(LIKELIHOODS)} or a callable returning a "
            f"torch Distribution, got {likelihood!r}."
        )
    if likelihood == "gaussian":
        return GaussianLikelihood(x_shape, scale)
    return LIKELIHOODS[likelihood](x_shape)
