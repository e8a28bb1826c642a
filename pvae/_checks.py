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
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_PARAMETERS",
    "MAX_SEED",
    "boolean",
    "mlp_size",
    "callable_arg",
    "finite_float",
    "nonnegative_float",
    "nonnegative_int",
    "one_of",
    "open_fraction",
    "optional",
    "path_arg",
    "positive_float",
    "positive_int",
    "seed",
    "torch_device",
]


def _given(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _at_most(name: str, value: int, maximum: int | None) -> int:
    if maximum is not None and value > maximum:
        raise ValueError(
            f"`{name}` must be at most {maximum:,}, got {value:,}: a count that large would run "
            "for hours or exhaust memory. Pass a smaller number."
        )
    return value


def positive_int(name: str, value: Any, *, example: int = 10, maximum: int | None = None) -> int:
    """``value`` as an ``int >= 1`` (and ``<= maximum`` when given)."""
    if not _is_int(value) or value < 1:
        raise ValueError(
            f"`{name}` must be a positive integer, got {_given(value)}. Pass a whole number, "
            f"e.g. `{name}={example}`."
        )
    return _at_most(name, int(value), maximum)


def nonnegative_int(name: str, value: Any, *, example: int = 0, maximum: int | None = None) -> int:
    """``value`` as an ``int >= 0`` (and ``<= maximum`` when given)."""
    if not _is_int(value) or value < 0:
        raise ValueError(
            f"`{name}` must be a non-negative integer, got {_given(value)}. Pass a whole "
            f"number, e.g. `{name}={example}`."
        )
    return _at_most(name, int(value), maximum)


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


#: The largest learning rate taken: float32's largest number (torch's optimizers multiply
#: it into float32 parameters, and a larger one overflows inside the update).
MAX_LR = 3.4028234663852886e38


def learning_rate(lr: Any) -> float:
    """``lr`` as a positive float no larger than :data:`MAX_LR`; ValueError naming ``lr``.

    Examples
    --------
    >>> learning_rate(1e-3)
    0.001
    """
    value = positive_float("lr", lr, example=1e-3)
    if value > MAX_LR:
        raise ValueError(
            f"`lr` must be at most {MAX_LR:.4g} (float32's largest number; torch's "
            f"optimizers multiply it into float32 parameters), got {value:g}. Pass e.g. "
            "`lr=1e-3`."
        )
    return value


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


def open_fraction(name: str, value: Any, *, example: float = 0.1) -> float:
    """``value`` as a ``float`` strictly between 0 and 1 (a share of something)."""
    if not (_is_real(value) and 0 < value < 1):
        raise ValueError(
            f"`{name}` must be a number strictly between 0 and 1, got {_given(value)}. "
            f"Pass e.g. `{name}={example}`."
        )
    return float(value)


def path_arg(name: str, value: Any) -> Path:
    """``value`` (a ``str`` or an ``os.PathLike``) as a :class:`~pathlib.Path`."""
    if isinstance(value, bool) or not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"`{name}` must be a path (a str or pathlib.Path), got {_given(value)}.")
    if isinstance(value, str) and (not value or "\x00" in value):
        raise ValueError(f"`{name}` must be a non-empty path without NUL bytes, got {value!r}.")
    return Path(value)


def boolean(name: str, value: Any) -> bool:
    """``value`` as a ``bool`` (only ``True``/``False``, not 0/1 or strings)."""
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` must be True or False, got {_given(value)}.")
    return value


def one_of(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices``."""
    choices = tuple(choices)
    if not any(type(value) is type(c) and value == c for c in choices):  # type first: arrays
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be one of {listed}, got {_given(value)}.")
    return value


def callable_arg(name: str, value: Any, *, what: str = "a callable") -> Callable:
    """``value`` if it is callable."""
    if not callable(value):
        raise ValueError(f"`{name}` must be {what}, got {_given(value)}.")
    return value


#: The most particles (Monte Carlo or importance samples) any estimator takes per example.
MAX_PARTICLES = 10**7

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


def torch_device(name: str, value: Any) -> Any:
    """A :class:`torch.device` that exists here; ``"auto"`` picks CUDA, else MPS, else CPU.

    ``"cuda"``, ``"cuda:N"`` or ``"mps"`` where PyTorch finds no such device raises a
    :class:`ValueError` that says so and names the fix (instead of torch's bare assertion at
    the first tensor moved).

    Examples
    --------
    >>> torch_device("device", "cpu")
    device(type='cpu')
    >>> torch_device("device", "auto").type in ("cpu", "cuda", "mps")
    True
    """
    import torch

    fix = f"Pass `{name}='cpu'`, or `{name}='auto'` to use a GPU only where there is one."
    if isinstance(value, str) and value.strip().lower() == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    if not isinstance(value, (str, torch.device)):
        raise ValueError(
            f"`{name}` must be a device name such as 'cpu', 'cuda', 'cuda:1', 'mps' or 'auto', "
            f"or a torch.device, got {_given(value)}. {fix}"
        )
    try:
        device = torch.device(value)
    except (RuntimeError, ValueError) as err:
        raise ValueError(
            f"`{name}` must be a device name such as 'cpu', 'cuda', 'cuda:1', 'mps' or 'auto', "
            f"got {value!r} ({err}). {fix}"
        ) from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(
                f"`{name}` is {value!r}, but PyTorch finds no CUDA GPU here "
                f"(torch.cuda.is_available() is False; this torch {torch.__version__} "
                f"{'has no CUDA support' if torch.version.cuda is None else 'sees no device'}). "
                f"{fix}"
            )
        if device.index is not None and device.index >= count:
            raise ValueError(
                f"`{name}` is {value!r}, but PyTorch finds {count} CUDA GPU(s), numbered from 0. "
                f"Pass e.g. `{name}='cuda:0'`, or `{name}='auto'`."
            )
    if device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(
                f"`{name}` is {value!r}, but PyTorch finds no Apple-silicon (MPS) GPU here. {fix}"
            )
    return device


#: The most parameters a built-in network may have (2**28 float32 numbers are 1 GiB): a
#: larger size is a typo (``z_dim=2**31``) and would exhaust memory before any message.
MAX_PARAMETERS = 2**28


def mlp_size(names: str, widths: Iterable[Sequence[int]]) -> int:
    """Parameters of the dense layers ``widths`` (one sequence of widths per network), refused
    with a ``ValueError`` naming ``names`` above :data:`MAX_PARAMETERS`, before any allocation.

    Examples
    --------
    >>> mlp_size("`x_dim`, `hidden`", [(64, 32, 8)])   # 65 * 32 + 33 * 8
    2344
    """
    total = sum((a + 1) * b for w in widths for a, b in zip(w[:-1], w[1:], strict=True))
    if total > MAX_PARAMETERS:
        raise ValueError(
            f"{names} ask for networks with {total:.3g} parameters, more than "
            f"{MAX_PARAMETERS:,} (1 GiB of float32). Check the sizes, e.g. `z_dim=8`."
        )
    return total
