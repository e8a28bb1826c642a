r"""The stored form of checkpoint contents: trees of tensors and JSON values, and constraints.

:func:`encode` replaces every tensor of a tree (dicts, lists, tuples, numbers, strings,
``None``) by a reference into a flat ``{name: tensor}`` table, which safetensors stores;
the rest is JSON. Non-finite floats, tuples and dicts with non-string keys are tagged so
that :func:`decode` rebuilds them exactly. Parameter constraints are stored by name
(:func:`encode_constraint`) and rebuilt from a whitelist (:func:`decode_constraint`):
nothing read from a file is ever called or unpickled.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyro.distributions.constraints as constraints
import torch

__all__ = ["decode", "decode_constraint", "encode", "encode_constraint"]

_NAMED_CONSTRAINTS = {
    name: value
    for name in constraints.__all__
    if isinstance(value := getattr(constraints, name), constraints.Constraint)
}
_BOUNDED_CONSTRAINTS = {
    "_GreaterThan": ("lower_bound",),
    "_GreaterThanEq": ("lower_bound",),
    "_LessThan": ("upper_bound",),
    "_Interval": ("lower_bound", "upper_bound"),
    "_HalfOpenInterval": ("lower_bound", "upper_bound"),
}


def encode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace tensors by references into ``tensors``; keep the rest JSON-able.

    Examples
    --------
    >>> table = {}
    >>> encode({"w": torch.ones(2), "best": (3, float("-inf"))}, table)
    {'w': {'__tensor__': 't0'}, 'best': {'__tuple__': [3, {'__float__': '-inf'}]}}
    >>> decode(_, table)
    {'w': tensor([1., 1.]), 'best': (3, -inf)}
    """
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = obj.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):
        return encode(torch.from_numpy(np.array(obj)), tensors)
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"__float__": repr(obj)}
    if isinstance(obj, tuple):
        return {"__tuple__": [encode(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [encode(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: encode(v, tensors) for k, v in obj.items()}
        return {"__items__": [[encode(k, tensors), encode(v, tensors)] for k, v in obj.items()]}
    raise ValueError(
        f"cannot store a value of type {type(obj).__name__} in a checkpoint; only tensors, "
        "arrays, numbers, strings, None and lists/tuples/dicts of them are stored."
    )


def decode(obj: Any, tensors: dict[str, torch.Tensor], where: str = "state") -> Any:
    """The tree :func:`encode` stored, with its tensors taken from ``tensors``.

    Every node is checked: a malformed tag, a reference to a missing tensor or a value
    JSON cannot hold raises :class:`ValueError` naming the field (``where``, then the keys
    and indices down to it), never ``KeyError`` or ``TypeError``.

    Examples
    --------
    >>> decode({"w": {"__tensor__": "t9"}}, {})
    Traceback (most recent call last):
    ...
    ValueError: field `state.w` refers to tensor 't9', which the file does not hold.
    """
    if isinstance(obj, list):
        return [decode(v, tensors, f"{where}[{i}]") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int | float):
        if isinstance(obj, float) and not math.isfinite(obj):
            raise ValueError(f"field `{where}` holds a bare non-finite number {obj!r}.")
        return obj
    if not isinstance(obj, dict):
        raise ValueError(f"field `{where}` holds a {type(obj).__name__}, which is not JSON.")
    tags = [k for k in obj if isinstance(k, str) and k.startswith("__")]
    if not tags:
        return {k: decode(v, tensors, f"{where}.{k}") for k, v in obj.items()}
    if len(obj) != 1 or tags[0] not in _TAGS:
        raise ValueError(f"field `{where}` is a malformed tagged value {sorted(obj)!r}.")
    tag, value = tags[0], obj[tags[0]]
    if tag == "__tensor__":
        if not isinstance(value, str) or value not in tensors:
            raise ValueError(
                f"field `{where}` refers to tensor {value!r}, which the file does not hold."
            )
        return tensors[value]
    if tag == "__float__":
        if value not in ("nan", "inf", "-inf"):
            raise ValueError(f"field `{where}` holds a malformed float {value!r}.")
        return float(value)
    if not isinstance(value, list):
        raise ValueError(f"field `{where}.{tag}` must be a list, got {type(value).__name__}.")
    if tag == "__tuple__":
        return tuple(decode(v, tensors, f"{where}[{i}]") for i, v in enumerate(value))
    items = {}
    for i, pair in enumerate(value):
        if not (isinstance(pair, list) and len(pair) == 2):
            raise ValueError(f"field `{where}.__items__[{i}]` must be a [key, value] pair.")
        key = decode(pair[0], tensors, f"{where}.__items__[{i}][0]")
        if not isinstance(key, (str, int, float, bool, tuple)) or (
            isinstance(key, tuple) and not all(isinstance(k, (str, int, float)) for k in key)
        ):
            raise ValueError(f"field `{where}.__items__[{i}]` has an unhashable key.")
        items[key] = decode(pair[1], tensors, f"{where}[{key!r}]")
    return items


_TAGS = ("__tensor__", "__float__", "__tuple__", "__items__")


def encode_constraint(name: str, constraint: Any) -> Any:
    """A constraint's stored form: its name, or an interval's class and bounds.

    Examples
    --------
    >>> encode_constraint("scale", constraints.positive)
    'positive'
    >>> spec = encode_constraint("p", constraints.interval(0.0, 0.5))
    >>> spec, decode_constraint(spec).upper_bound
    ({'class': '_Interval', 'bounds': [0.0, 0.5]}, 0.5)
    """
    for key, value in _NAMED_CONSTRAINTS.items():
        if constraint is value:
            return key
    cls = type(constraint).__name__
    if cls in _BOUNDED_CONSTRAINTS:
        bounds = [float(getattr(constraint, b)) for b in _BOUNDED_CONSTRAINTS[cls]]
        return {"class": cls, "bounds": bounds}
    raise ValueError(
        f"parameter `{name}` has constraint {constraint!r}, which pvae cannot store. "
        "Use one of pyro.distributions.constraints' named constraints or an interval."
    )


def decode_constraint(spec: Any) -> Any:
    """The constraint :func:`encode_constraint` stored (named ones and intervals only)."""
    if isinstance(spec, str) and spec in _NAMED_CONSTRAINTS:
        return _NAMED_CONSTRAINTS[spec]
    if isinstance(spec, dict) and spec.get("class") in _BOUNDED_CONSTRAINTS:  # whitelist only
        bounds = spec.get("bounds")
        size = len(_BOUNDED_CONSTRAINTS[spec["class"]])
        if (
            set(spec) == {"class", "bounds"}
            and isinstance(bounds, list)
            and len(bounds) == size
            and all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds)
        ):
            cls = getattr(torch.distributions.constraints, spec["class"])
            return cls(*(float(b) for b in bounds))
    raise ValueError(f"the checkpoint names an unknown constraint {spec!r}.")
