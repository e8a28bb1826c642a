"""The one input validator: every public function checks its arguments here.

Each check returns the value (converted where that is safe, e.g. a NumPy integer to
``int``) or raises a :class:`ValueError` in one style: the argument's name in backticks,
what was expected, what was given (value and type), and the fix::

    `num_steps` must be a positive integer, got 2.5 (float). Pass a whole number,
    e.g. `num_steps=1000`.

Booleans are never numbers here (``True`` is not a count), and NaN or infinity is never a
positive number unless ``allow_inf`` says so.

Examples
--------
>>> positive_int("num_particles", 10)
10
>>> positive_int("num_particles", True)
Traceback (most recent call last):
...
ValueError: `num_particles` must be a positive integer, got True (bool). ...
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable
from typing import Any

__all__ = [
    "MAX_SEED",
    "boolean",
    "callable_arg",
    "finite_float",
    "nonnegative_float",
    "nonnegative_int",
    "one_of",
    "optional",
    "positive_float",
    "positive_int",
    "seed",
]


def _given(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def positive_int(name: str, value: Any, *, example: int = 10) -> int:
    """``value`` as an ``int >= 1``."""
    if not _is_int(value) or value < 1:
        raise ValueError(
            f"`{name}` must be a positive integer, got {_given(value)}. Pass a whole number, "
            f"e.g. `{name}={example}`."
        )
    return int(value)


def nonnegative_int(name: str, value: Any, *, example: int = 0) -> int:
    """``value`` as an ``int >= 0``."""
    if not _is_int(value) or value < 0:
        raise ValueError(
            f"`{name}` must be a non-negative integer, got {_given(value)}. Pass a whole "
            f"number, e.g. `{name}={example}`."
        )
    return int(value)


def positive_float(
    name: str, value: Any, *, allow_inf: bool = False, example: float = 1.0
) -> float:
    """``value`` as a ``float > 0`` (finite unless ``allow_inf``)."""
    ok = _is_real(value) and value > 0 and (allow_inf or math.isfinite(value))
    if not ok:
        kind = "positive number" if allow_inf else "positive, finite number"
        raise ValueError(
            f"`{name}` must be a {kind}, got {_given(value)}. Pass e.g. `{name}={example}`."
        )
    return float(value)


def nonnegative_float(name: str, value: Any, *, example: float = 0.0) -> float:
    """``value`` as a finite ``float >= 0``."""
    if not (_is_real(value) and value >= 0 and math.isfinite(value)):
        raise ValueError(
            f"`{name}` must be a finite number >= 0, got {_given(value)}. Pass e.g. "
            f"`{name}={example}`."
        )
    return float(value)


def finite_float(name: str, value: Any) -> float:
    """``value`` as a finite ``float``."""
    if not (_is_real(value) and math.isfinite(value)):
        raise ValueError(f"`{name}` must be a finite number, got {_given(value)}.")
    return float(value)


def boolean(name: str, value: Any) -> bool:
    """``value`` as a ``bool`` (only ``True``/``False``, not 0/1 or strings)."""
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be True or False, got {_given(value)}.")
    return value


def one_of(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices``."""
    choices = tuple(choices)
    if not any(value == c and type(value) is type(c) for c in choices):
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be one of {listed}, got {_given(value)}.")
    return value


def callable_arg(name: str, value: Any, *, what: str = "a callable") -> Callable:
    """``value`` if it is callable."""
    if not callable(value):
        raise ValueError(f"`{name}` must be {what}, got {_given(value)}.")
    return value


#: The largest seed every generator takes (NumPy's limit); ``fit`` adds the process rank.
MAX_SEED = 2**32 - 1 - 1024


def seed(name: str, value: Any) -> int | None:
    """``None`` or an ``int`` in ``[0, MAX_SEED]`` (a seed for :func:`pyro.set_rng_seed`)."""
    if value is None:
        return None
    if not _is_int(value) or not 0 <= value <= MAX_SEED:
        raise ValueError(
            f"`{name}` must be None or an integer from 0 to {MAX_SEED}, got {_given(value)}. "
            f"Pass e.g. `{name}=0`."
        )
    return int(value)


def optional(check: Callable[..., Any], name: str, value: Any, **kwargs: Any) -> Any:
    """``None``, or ``check(name, value, **kwargs)``."""
    return None if value is None else check(name, value, **kwargs)
