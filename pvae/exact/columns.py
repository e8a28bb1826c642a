r"""The columns of a Bayes table: a prior or a likelihood as one float64 tensor.

:func:`to_column` turns a mapping ``{hypothesis: value}``, a sequence, an array or a tensor
into the hypotheses it names and a 1-D ``float64`` column, refusing what is not a real
number (strings, booleans, ``None``, complex values, NaN) with a message that names the
argument; :func:`evaluate_likelihood` evaluates a callable likelihood at every hypothesis.
:func:`pvae.exact.bayes.bayes_rule` builds its table from them.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import torch

__all__ = ["as_float64", "evaluate_likelihood", "exp_or_inf", "to_column"]

_LOG_MAX = math.log(sys.float_info.max)  # 709.78: math.exp overflows above it


def exp_or_inf(log_value: float) -> float:
    """``math.exp`` that overflows to ``inf`` instead of raising ``OverflowError``.

    Examples
    --------
    >>> exp_or_inf(0.0), exp_or_inf(800.0)
    (1.0, inf)
    """
    return math.exp(log_value) if log_value < _LOG_MAX else math.inf


def to_column(
    values: Any, hypotheses: tuple | None, name: str
) -> tuple[tuple | None, torch.Tensor]:
    """Turn a mapping, sequence, array or tensor into ``(hypotheses, float64 column)``.

    Examples
    --------
    >>> to_column({"a": 0.25, "b": 0.75}, None, "prior")
    (('a', 'b'), tensor([0.2500, 0.7500], dtype=torch.float64))
    """
    if isinstance(values, Mapping):
        keys = tuple(values.keys())
        if hypotheses is not None:
            if set(keys) != set(hypotheses) or len(keys) != len(hypotheses):
                raise ValueError(
                    f"The hypotheses of `{name}` must match those of the prior: "
                    f"expected {list(hypotheses)}, got {list(keys)}."
                )
            keys = hypotheses
        raw = [values[k] for k in keys]
        return keys, as_float64(raw, name)
    column = as_float64(values, name)
    if column.dim() != 1:
        raise ValueError(f"`{name}` must be 1-D, got shape {tuple(column.shape)}.")
    if hypotheses is not None and column.numel() != len(hypotheses):
        raise ValueError(
            f"`{name}` must have one entry per hypothesis ({len(hypotheses)}), "
            f"got {column.numel()}. Pass values for every hypothesis, in the prior's order."
        )
    return hypotheses, column


def as_float64(values: Any, name: str) -> torch.Tensor:
    """``values`` as a float64 tensor, or a ``ValueError`` naming ``name``.

    Examples
    --------
    >>> as_float64([1, 2], "prior").dtype
    torch.float64
    """
    if isinstance(values, Sequence) and not isinstance(values, str):
        bad = [v for v in values if isinstance(v, (str, bool)) or v is None]
        if bad:
            raise ValueError(
                f"`{name}` must hold numbers, got {bad[0]!r} ({type(bad[0]).__name__}) in "
                f"{list(values)!r}."
            )
    if isinstance(values, torch.Tensor) and values.is_complex() or isinstance(values, complex):
        raise ValueError(f"`{name}` must hold real numbers, got complex {values!r}.")
    try:
        if isinstance(values, torch.Tensor):
            out = values.detach().to(torch.float64).reshape(values.shape)
        else:
            out = torch.as_tensor(
                [float(v) for v in values] if isinstance(values, Sequence) else values,
                dtype=torch.float64,
            )
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"`{name}` must hold numbers, got {values!r}.") from err
    if torch.isnan(out).any():
        raise ValueError(f"`{name}` must not contain NaN, got {out.tolist()}.")
    return out


def evaluate_likelihood(likelihood: Any, hypotheses: tuple, name: str) -> Any:
    """A callable likelihood evaluated at each hypothesis; any other value as it is.

    Examples
    --------
    >>> evaluate_likelihood(lambda h: h / 10, (1, 2), "likelihood")
    [0.1, 0.2]
    """
    if callable(likelihood) and not isinstance(likelihood, torch.Tensor | Mapping):
        return [likelihood(h) for h in hypotheses]
    return likelihood
