r"""The schema of a checkpoint's contents, checked before anything is built from them.

:func:`check_state` walks the decoded state of a ``"model"``, ``"param_store"`` or
``"fit"`` file (:mod:`pvae.training.checkpoint`) and raises :class:`SchemaError` (a
:class:`ValueError`) naming the first field that has the wrong type, a value out of range,
or a tensor of the wrong dtype, size or (unless ``allow_nonfinite``) a NaN or infinite
entry. Only then are a model, Pyro's param store, an optimizer or the random generators
touched, so a crafted or damaged file cannot reach them as a ``KeyError``, a
``TypeError`` or an allocation the size of its claims.
"""

from __future__ import annotations

from typing import Any

import torch

from pvae.training.codec import decode_constraint

__all__ = ["SchemaError", "check_state"]

_FLOATS = (torch.float32, torch.float64)


class SchemaError(ValueError):
    """A field of a checkpoint's contents is missing, of the wrong type or out of range.

    Attributes
    ----------
    field : str
        The dotted path of the field (``state.model.config``, ``state.epoch``, ...).

    Examples
    --------
    >>> err = SchemaError("state.epoch", "must be an integer >= 0, got 'three'")
    >>> str(err), err.field
    ("field `state.epoch` must be an integer >= 0, got 'three'.", 'state.epoch')
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"field `{field}` {problem}.")
        self.field = field


def _given(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    text = repr(value)
    return f"{text[:60]}{'...' if len(text) > 60 else ''} ({type(value).__name__})"


def _dict(field: str, value: Any, required: tuple[str, ...] = ()) -> dict:
    if not isinstance(value, dict):
        raise SchemaError(field, f"must be a table, got {_given(value)}")
    for key in required:
        if key not in value:
            raise SchemaError(f"{field}.{key}", "is missing")
    return value


def _int(field: str, value: Any, low: int = 0) -> int:
    if type(value) is not int or value < low:
        raise SchemaError(field, f"must be an integer >= {low}, got {_given(value)}")
    return value


def _number(field: str, value: Any) -> float:
    if type(value) not in (int, float):
        raise SchemaError(field, f"must be a number, got {_given(value)}")
    return value


def _tensor(
    field: str, value: Any, dtypes: tuple[torch.dtype, ...] | None, finite: bool
) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise SchemaError(field, f"must be a tensor, got {_given(value)}")
    if dtypes is not None and value.dtype not in dtypes:
        names = " or ".join(str(d).removeprefix("torch.") for d in dtypes)
        raise SchemaError(field, f"must be a {names} tensor, got {_given(value)}")
    if finite and value.is_floating_point() and not bool(torch.isfinite(value).all()):
        raise SchemaError(
            field,
            "holds NaN or infinite values; pass `allow_nonfinite=True` to load it anyway "
            "(e.g. to inspect a diverged run)",
        )
    return value


def _tensors(field: str, value: Any, dtypes: Any, finite: bool) -> None:
    for key, tensor in _dict(field, value).items():
        _tensor(f"{field}.{key}", tensor, dtypes, finite)


def check_model(field: str, state: Any, finite: bool = True) -> None:
    """A stored module (:func:`~pvae.training.checkpoint.model_state`)."""
    state = _dict(field, state, ("class", "config", "custom", "state_dict"))
    if not isinstance(state["class"], str) or not state["class"]:
        raise SchemaError(f"{field}.class", f"must be a class name, got {_given(state['class'])}")
    if not isinstance(state["custom"], bool):
        raise SchemaError(
            f"{field}.custom", f"must be true or false, got {_given(state['custom'])}"
        )
    if state["config"] is not None or not state["custom"]:
        _dict(f"{field}.config", state["config"])
    _tensors(f"{field}.state_dict", state["state_dict"], None, finite)


def check_param_store(field: str, state: Any, finite: bool = True) -> None:
    """Stored param-store entries (:func:`~pvae.training.checkpoint.param_store_state`)."""
    state = _dict(field, state, ("values", "constraints"))
    _tensors(f"{field}.values", state["values"], _FLOATS, finite)
    specs = _dict(f"{field}.constraints", state["constraints"])
    if set(specs) != set(state["values"]):
        raise SchemaError(f"{field}.constraints", "must name exactly the stored values")
    for name, spec in specs.items():
        try:
            decode_constraint(spec)
        except ValueError:
            raise SchemaError(
                f"{field}.constraints.{name}", f"is unknown: {_given(spec)}"
            ) from None


def _check_optimizer(field: str, state: Any, finite: bool) -> None:
    if state is None:
        return
    state = _dict(field, state)
    if "num_steps" in state:
        _int(f"{field}.num_steps", state["num_steps"])
    if not ({"torch", "pyro"} & set(state)):
        return  # a step object that never stepped
    shapes = state.get("shapes")
    if not isinstance(shapes, list) or not all(
        isinstance(s, list) and all(type(d) is int and d >= 0 for d in s) for s in shapes
    ):
        raise SchemaError(f"{field}.shapes", f"must be a list of shapes, got {_given(shapes)}")
    names = state.get("names")
    if names is not None and not (
        isinstance(names, list)
        and len(names) == len(shapes)
        and all(isinstance(n, str) for n in names)
    ):
        raise SchemaError(f"{field}.names", "must be one parameter name per shape")
    groups = state.get("groups")
    if groups is not None and not (
        isinstance(groups, list)
        and all(type(g) is int and g >= 0 for g in groups)
        and sum(groups) == len(shapes)
    ):
        raise SchemaError(f"{field}.groups", "must be group sizes adding up to the parameters")
    if "torch" in state:
        inner = _dict(f"{field}.torch", state["torch"], ("state", "param_groups"))
        if not isinstance(inner["param_groups"], list):
            raise SchemaError(f"{field}.torch.param_groups", "must be a list")
        _walk_tensors(f"{field}.torch.state", inner["state"], finite)
    else:
        _walk_tensors(f"{field}.pyro", _dict(f"{field}.pyro", state["pyro"]), finite)


def _walk_tensors(field: str, tree: Any, finite: bool) -> None:
    """Every tensor of an optimizer's state: float32/float64 and finite, or int64."""
    if isinstance(tree, torch.Tensor):
        _tensor(field, tree, (*_FLOATS, torch.int64), finite)
    elif isinstance(tree, dict):
        for key, value in tree.items():
            _walk_tensors(f"{field}.{key}", value, finite)
    elif isinstance(tree, (list, tuple)):
        for i, value in enumerate(tree):
            _walk_tensors(f"{field}[{i}]", value, finite)


def _check_rng(field: str, state: Any) -> None:
    state = _dict(field, state, ("torch", "python", "numpy"))
    size = torch.get_rng_state().numel()
    rng = _tensor(f"{field}.torch", state["torch"], (torch.uint8,), False)
    if rng.shape != (size,):
        raise SchemaError(f"{field}.torch", f"must hold {size} bytes, got {_given(rng)}")
    cuda = state.get("cuda")
    if cuda is not None:
        if not isinstance(cuda, list):
            raise SchemaError(f"{field}.cuda", f"must be a list, got {_given(cuda)}")
        for i, value in enumerate(cuda):
            _tensor(f"{field}.cuda[{i}]", value, (torch.uint8,), False)
    py = state["python"]
    if not (
        isinstance(py, (list, tuple))
        and len(py) == 3
        and type(py[0]) is int
        and isinstance(py[1], (list, tuple))
        and len(py[1]) == 625
        and all(type(k) is int and 0 <= k < 2**32 for k in py[1])
        and (py[2] is None or type(py[2]) is float)
    ):
        raise SchemaError(f"{field}.python", "is not a state of Python's random module")
    np_state = state["numpy"]
    if not (
        isinstance(np_state, list)
        and len(np_state) == 5
        and np_state[0] == "MT19937"
        and isinstance(np_state[1], torch.Tensor)
        and np_state[1].dtype == torch.int64
        and np_state[1].shape == (624,)
        and bool(((np_state[1] >= 0) & (np_state[1] < 2**32)).all())
        and type(np_state[2]) is int
        and type(np_state[3]) is int
        and type(np_state[4]) in (int, float)
    ):
        raise SchemaError(f"{field}.numpy", "is not a state of NumPy's random module")
    batches = state.get("batches")
    if batches is not None:
        size = torch.Generator().get_state().numel()
        batches = _tensor(f"{field}.batches", batches, (torch.uint8,), False)
        if batches.shape != (size,):
            raise SchemaError(f"{field}.batches", f"must hold {size} bytes, got {_given(batches)}")


def _check_position(field: str, state: Any, epoch: int) -> None:
    if state is None:
        return
    state = _dict(field, state, ("epoch", "steps", "total", "count", "batches"))
    if state["epoch"] != epoch + 1 or type(state["epoch"]) is not int:
        raise SchemaError(f"{field}.epoch", f"must be {epoch + 1}, got {_given(state['epoch'])}")
    _int(f"{field}.steps", state["steps"])
    _number(f"{field}.total", state["total"])
    _int(f"{field}.count", state["count"])
    if state["batches"] is not None:
        _tensor(f"{field}.batches", state["batches"], (torch.uint8,), False)


def check_fit(field: str, state: Any, finite: bool = True) -> None:
    """A training checkpoint (:class:`~pvae.training.resume.Checkpointer`)."""
    keys = ("epoch", "partial", "history", "model", "param_store", "optimizer", "rng", "best")
    state = _dict(field, state, keys)
    epoch = _int(f"{field}.epoch", state["epoch"])
    if not isinstance(state["partial"], bool):
        raise SchemaError(
            f"{field}.partial", f"must be true or false, got {_given(state['partial'])}"
        )
    history = state["history"]
    if not isinstance(history, list) or len(history) > epoch:
        raise SchemaError(f"{field}.history", f"must be a list of at most {epoch} rows")
    for i, row in enumerate(history):
        _int(
            f"{field}.history[{i}].epoch",
            _dict(f"{field}.history[{i}]", row, ("epoch",))["epoch"],
            1,
        )
    if state["model"] is not None:
        check_model(f"{field}.model", state["model"], finite)
    check_param_store(f"{field}.param_store", state["param_store"], finite)
    _check_optimizer(f"{field}.optimizer", state["optimizer"], finite)
    _check_rng(f"{field}.rng", state["rng"])
    best = state["best"]
    if not (isinstance(best, list) and len(best) == 3):
        raise SchemaError(
            f"{field}.best", f"must be [best_epoch, best_value, bad], got {_given(best)}"
        )
    _int(f"{field}.best[0]", best[0])
    _number(f"{field}.best[1]", best[1])
    _int(f"{field}.best[2]", best[2])
    _check_position(f"{field}.position", state.get("position"), epoch)


_CHECKS = {"model": check_model, "param_store": check_param_store, "fit": check_fit}


def check_state(kind: str, state: Any, *, allow_nonfinite: bool = False) -> None:
    """Check the decoded ``state`` of a ``kind`` file; other kinds are free-form trees.

    Raises
    ------
    SchemaError
        Naming the first bad field.

    Examples
    --------
    >>> check_state("model", {"class": "Linear", "config": None, "custom": True,
    ...                       "state_dict": {"weight": torch.tensor([float("nan")])}})
    Traceback (most recent call last):
    ...
    pvae.training.schema.SchemaError: field `state.state_dict.weight` holds NaN or infinite ...
    """
    check = _CHECKS.get(kind)
    if check is not None:
        check("state", state, not allow_nonfinite)
