r"""KL divergence and total variation between probability tables or distributions.

The lecture measures how far an approximation :math:`Q` is from a target :math:`P` with
the Kullback-Leibler divergence

.. math:: D_{KL}(P \,\|\, Q) = \sum_{x \in X} P(x) \log \frac{P(x)}{Q(x)},

which is zero exactly when :math:`P = Q` and positive otherwise. It is not symmetric:
variational inference minimizes :math:`\mathrm{KL}(q \,\|\, p)` ("reverse" KL, mode seeking),
while :math:`\mathrm{KL}(p \,\|\, q)` ("forward" KL) is mass covering. Total variation,
:math:`\tfrac12 \sum_x |P(x) - Q(x)|`, is a symmetric distance in :math:`[0, 1]`.

All numbers are in nats.
"""

from __future__ import annotations

import copy
import math
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.distributions import Distribution

from pvae import _checks, _display

__all__ = ["KLEstimate", "kl_divergence", "total_variation"]

_SUM_TOL = 1e-6
#: The most draws a Monte Carlo KL takes (one tensor of ``num_samples`` draws of ``p``).
MAX_SAMPLES = 100_000_000


class KLEstimate(NamedTuple):
    r"""A Monte Carlo estimate of a KL divergence, with its standard error.

    ``estimate`` is the sample mean of :math:`\log p(x) - \log q(x)` over :math:`x \sim p`
    (nats), ``standard_error`` its standard error ``std / sqrt(num_samples)``, and
    ``num_samples`` how many samples were drawn from ``p``. Tensors for batched distributions.

    Examples
    --------
    >>> r = KLEstimate(0.12, 0.01, 10_000)
    >>> estimate, se, n = r
    >>> f"{estimate:.2f} ± {se:.2f}"
    '0.12 ± 0.01'
    """

    estimate: Any
    standard_error: Any
    num_samples: int

    __repr__ = _display.record_repr
    _repr_html_ = _display.record_html


def _as_prob_tensor(x: Any, name: str) -> torch.Tensor:
    """Convert a probability table to a float64 tensor and validate it."""
    if isinstance(x, torch.Tensor):
        is_complex = x.is_complex()
        t = None if is_complex else x.detach().to(torch.float64)
    else:
        try:
            array = np.asarray(x)
            is_complex = np.iscomplexobj(array)
            t = None if is_complex else torch.as_tensor(np.asarray(array, dtype=np.float64))
        except (TypeError, ValueError, RuntimeError) as err:  # ragged, text, objects
            raise _not_a_table(x, name) from err
    if t is None:
        raise ValueError(f"`{name}` must hold real probabilities, got complex values.")
    if t.dim() == 0 or t.numel() == 0:
        raise ValueError(
            f"`{name}` must have at least one entry along its last dimension, got shape "
            f"{tuple(t.shape)}. Pass a vector of probabilities such as `[0.2, 0.8]`."
        )
    if not torch.isfinite(t).all():
        raise ValueError(f"`{name}` must be finite, got NaN or inf entries. Remove them.")
    if (t < 0).any():
        raise ValueError(
            f"`{name}` must be non-negative, got minimum {t.min().item():.6g}. "
            "Pass probabilities, not log-probabilities or scores."
        )
    total = t.sum(-1)
    worst = (total - 1).abs().max().item()
    if worst > _SUM_TOL:
        bad = total.flatten()[(total.flatten() - 1).abs().argmax()].item()
        raise ValueError(
            f"`{name}` must sum to 1 along its last dimension, got {bad:.6g}. "
            f"Normalize it first, e.g. `{name} / {name}.sum(-1, keepdims=True)`."
        )
    # sums within the tolerance of 1 are made exact: an unnormalized pair can have KL < 0
    return t / total.unsqueeze(-1)


def _not_a_table(x: Any, name: str) -> ValueError:
    return ValueError(
        f"`{name}` must be a probability table (array, tensor or sequence of numbers), "
        f"got {type(x).__name__}. Pass e.g. `[0.2, 0.8]`."
    )


def _scalar_or_tensor(t: torch.Tensor) -> float | torch.Tensor:
    return float(t) if t.dim() == 0 else t


def _check_pair(p: Any, q: Any) -> tuple[torch.Tensor, torch.Tensor]:
    pt, qt = _as_prob_tensor(p, "p"), _as_prob_tensor(q, "q")
    if pt.shape != qt.shape:
        raise ValueError(
            f"`p` and `q` must have the same shape, got {tuple(pt.shape)} and "
            f"{tuple(qt.shape)}. Align both tables over the same support."
        )
    return pt, qt


def kl_divergence(
    p: Any, q: Any, num_samples: int | None = None, *, method: str = "auto"
) -> float | torch.Tensor | KLEstimate:
    r"""Kullback-Leibler divergence :math:`D_{KL}(P \,\|\, Q)` in nats.

    For probability tables (the lecture's discrete formula)

    .. math:: D_{KL}(P \,\|\, Q) = \sum_{x \in X} P(x) \log \frac{P(x)}{Q(x)},

    with the conventions :math:`0 \log(0/q) = 0` and :math:`p \log(p/0) = +\infty` for
    :math:`p > 0`. For torch distributions the closed form registered with
    :func:`torch.distributions.kl_divergence` is used when it exists; otherwise the Monte Carlo
    estimate :math:`\frac1S \sum_s \log p(x_s) - \log q(x_s)`, :math:`x_s \sim P`.

    Parameters
    ----------
    p, q : array-like, torch.Tensor or torch.distributions.Distribution
        Two probability tables of the same shape (each summing to 1 along the last dimension;
        leading dimensions are a batch), or two distributions over the same space.
    num_samples : int, optional
        Samples from ``p`` for the Monte Carlo estimate, needed when no closed form exists.
    method : {"auto", "closed_form", "monte_carlo"}
        For distributions: ``"auto"`` takes the closed form when registered, else Monte Carlo.

    Returns
    -------
    float, torch.Tensor or KLEstimate
        A float for a single pair, a float64 tensor of the batch shape for batched tables or
        batched distributions, and a :class:`KLEstimate` (estimate, standard error) for Monte
        Carlo.

    Raises
    ------
    ValueError
        On tables of different shapes, negative, complex or non-finite entries, or rows not
        summing to 1; on mixing a table with a distribution, or distributions over different
        spaces; when Monte Carlo is needed and ``num_samples`` is missing (or not in
        ``[2, MAX_SAMPLES]``); when a closed form is NaN (e.g. ``Normal(0.5, 1e-30)`` in
        float32, whose variance underflows to 0) or negative beyond rounding, and when a Monte
        Carlo estimate is NaN.

    Notes
    -----
    A KL is never negative (Gibbs' inequality). Table rows are renormalized (their sums are
    within ``1e-6`` of 1) and the result is clamped at 0, which only removes rounding error;
    a closed form is clamped at 0 within 64 machine epsilons of its dtype and refused beyond.
    A Monte Carlo estimate is an estimate: it may fall below 0 by a few standard errors when
    the true KL is near 0.

    Examples
    --------
    >>> kl_divergence([0.5, 0.5], [0.9, 0.1])
    0.5108256...
    >>> kl_divergence([0.5, 0.5], [1.0, 0.0])
    inf
    >>> import torch.distributions as td
    >>> kl_divergence(td.Normal(0.0, 1.0), td.Normal(1.0, 1.0))
    0.5
    >>> r = kl_divergence(td.Normal(0.0, 1.0), td.StudentT(3.0), num_samples=10_000)
    >>> 0 < r.estimate < 0.1 and r.standard_error < 0.01
    True
    """
    _checks.one_of("method", method, ("auto", "closed_form", "monte_carlo"))
    if num_samples is not None:
        n = _checks.positive_int("num_samples", num_samples, example=10_000)
        if not 2 <= n <= MAX_SAMPLES:
            raise ValueError(
                f"`num_samples` must be an integer from 2 (a standard error needs two draws) "
                f"to {MAX_SAMPLES:,}, got {num_samples!r}. Pass e.g. `num_samples=10_000`."
            )
        num_samples = n
    p_dist, q_dist = isinstance(p, Distribution), isinstance(q, Distribution)
    if p_dist != q_dist:
        raise ValueError(
            "`p` and `q` must both be probability tables or both be torch distributions, got "
            f"{type(p).__name__} and {type(q).__name__}. Convert the table with "
            "`torch.distributions.Categorical(probs=...)`, or the distribution to a table."
        )
    if not p_dist:
        pt, qt = _check_pair(p, q)
        kl = (torch.xlogy(pt, pt) - torch.xlogy(pt, qt)).sum(-1)
        # Gibbs' inequality: KL >= 0 for normalized tables; a negative sum is rounding
        return _scalar_or_tensor(kl.clamp_min(0.0))
    if method != "monte_carlo":
        try:
            kl = _closed_form(p, q)
        except NotImplementedError:
            if method == "closed_form":
                raise ValueError(
                    f"No closed-form KL is registered for {type(p).__name__} and "
                    f"{type(q).__name__}. Use `method='monte_carlo'` with `num_samples`."
                ) from None
        except (RuntimeError, ValueError) as err:  # shapes that do not broadcast, ...
            raise _mismatch(p, q, err) from None
        else:
            return _scalar_or_tensor(_checked_closed_form(kl.detach(), p, q))
    if num_samples is None or isinstance(num_samples, bool) or num_samples in (0, 1):
        raise ValueError(
            f"`num_samples` must be an integer >= 2 for a Monte Carlo KL between "
            f"{type(p).__name__} and {type(q).__name__}, got {num_samples!r}. "
            "Pass e.g. `num_samples=10_000`."
        )
    n = num_samples
    try:
        with torch.no_grad():
            x = p.sample((n,))
            log_ratio = (p.log_prob(x) - q.log_prob(x)).to(torch.float64)
    except (RuntimeError, ValueError) as err:  # shapes, or draws of p outside q's support
        raise _mismatch(p, q, err) from None
    if torch.isnan(log_ratio).any():
        raise ValueError(
            f"the Monte Carlo KL between `p` ({type(p).__name__}) and `q` "
            f"({type(q).__name__}) is NaN: log p(x) - log q(x) is undefined (inf - inf) at "
            f"{int(torch.isnan(log_ratio).sum())} of the draws. Check the parameters."
        )
    estimate = log_ratio.mean(0)
    se = log_ratio.std(0) / math.sqrt(n)
    return KLEstimate(_scalar_or_tensor(estimate), _scalar_or_tensor(se), n)


def _float64_copy(d: Any) -> Any:
    """A shallow copy of a distribution with every floating tensor in it cast to float64
    (nested distributions too, as ``Independent.base_dist``)."""
    if isinstance(d, torch.Tensor):
        return d.detach().to(torch.float64) if d.is_floating_point() else d
    if not isinstance(d, Distribution):
        return d
    out = copy.copy(d)
    for key, value in vars(d).items():
        if isinstance(value, torch.Tensor | Distribution):
            setattr(out, key, _float64_copy(value))
    return out


def _closed_form(p: Distribution, q: Distribution) -> torch.Tensor:
    """The registered closed form, computed with float64 copies of ``p`` and ``q`` where they
    can be made (a float32 formula squares a scale of 1e-30 to 0 and returns inf or NaN
    instead of the KL), else in the caller's dtype; the checks after it apply either way."""
    try:
        p64, q64 = _float64_copy(p), _float64_copy(q)
    except (AttributeError, TypeError, RuntimeError):
        p64, q64 = p, q
    try:
        return torch.distributions.kl_divergence(p64, q64)
    except (AttributeError, TypeError, RuntimeError, ValueError):
        if p64 is p:
            raise
        return torch.distributions.kl_divergence(p, q)  # a copy the formula cannot use


def _mismatch(p: Distribution, q: Distribution, err: Exception) -> ValueError:
    return ValueError(
        f"`p` ({type(p).__name__}, batch {list(p.batch_shape)}, event {list(p.event_shape)}) "
        f"and `q` ({type(q).__name__}, batch {list(q.batch_shape)}, event "
        f"{list(q.event_shape)}) must be distributions over the same space: {err}"
    )


def _checked_closed_form(kl: torch.Tensor, p: Distribution, q: Distribution) -> torch.Tensor:
    """The closed form as float64, refused when NaN and made exact when rounding makes it
    slightly negative (beyond rounding, refused: a KL is never negative)."""
    if torch.isnan(kl).any():
        raise ValueError(
            f"the closed-form KL between `p` ({type(p).__name__}) and `q` ({type(q).__name__}) "
            f"is NaN in {kl.dtype}: the parameters are beyond what the formula can hold (e.g. "
            "a scale of 1e-30 squares to 0 in float32). Pass float64 parameters, or rescale."
        )
    tol = 64 * torch.finfo(kl.dtype).eps if kl.is_floating_point() else 0.0
    worst = float(kl.min()) if kl.numel() else 0.0
    if worst < -tol * max(1.0, float(kl.abs().max())):
        raise ValueError(
            f"the closed-form KL between `p` ({type(p).__name__}) and `q` ({type(q).__name__}) "
            f"came out negative ({worst:.3g}) in {kl.dtype}, beyond rounding: the parameters "
            "lose precision there. Pass float64 parameters."
        )
    return kl.to(torch.float64).clamp_min(0.0)


def _table_of(d: Distribution) -> tuple[torch.Tensor, torch.Tensor]:
    """Support values and probabilities of a distribution with finite support."""
    if not d.has_enumerate_support:
        raise ValueError(
            f"`total_variation` needs distributions with finite support, got "
            f"{type(d).__name__}. Pass probability tables instead."
        )
    values = d.enumerate_support(expand=False)
    probs = d.log_prob(values).exp().to(torch.float64)
    return values, torch.movedim(probs, 0, -1)


def total_variation(p: Any, q: Any) -> float | torch.Tensor:
    r"""Total variation distance :math:`\tfrac12 \sum_x |P(x) - Q(x)|`, in :math:`[0, 1]`.

    Parameters
    ----------
    p, q : array-like, torch.Tensor or torch.distributions.Distribution
        Two probability tables of the same shape (leading dimensions are a batch), or two
        distributions with the same finite support (Bernoulli, Categorical, ...).

    Returns
    -------
    float or torch.Tensor
        A float for a single pair; a float64 tensor of the batch shape otherwise.

    Raises
    ------
    ValueError
        As :func:`kl_divergence` for tables; for distributions without finite support.

    Examples
    --------
    >>> total_variation([0.5, 0.5], [0.9, 0.1])
    0.4
    >>> import torch.distributions as td
    >>> round(total_variation(td.Bernoulli(0.3), td.Bernoulli(0.5)), 6)
    0.2
    """
    if isinstance(p, Distribution) and isinstance(q, Distribution):
        (_, p), (_, q) = _table_of(p), _table_of(q)
    pt, qt = _check_pair(p, q)
    return _scalar_or_tensor(0.5 * (pt - qt).abs().sum(-1))
