r"""The stored form of what a checkpoint holds: a module, and Pyro's param store.

:func:`model_state` and :func:`load_model_state` turn a module into its class name, JSON
``config`` and ``state_dict`` and back (a pvae model is rebuilt through
:data:`pvae.models.MODELS` after a dry run on the ``meta`` device);
:func:`param_store_state` and :func:`restore_param_store` do the same for the entries of
Pyro's param store (unconstrained values and constraints).
"""

from __future__ import annotations

import json
from typing import Any

import pyro
import pyro.distributions.constraints as constraints
import torch

from pvae.models.protocol import HasConfig
from pvae.training.codec import decode_constraint, encode_constraint

__all__ = ["load_model_state", "model_state", "param_store_state", "restore_param_store"]


def param_store_state(exclude: Any = ()) -> dict[str, Any]:
    """Unconstrained values and constraints of the param store, skipping ``exclude``.

    Examples
    --------
    >>> _ = pyro.param("scale", torch.tensor(2.0), constraint=constraints.positive)
    >>> state = param_store_state()
    >>> state["constraints"], round(state["values"]["scale"].item(), 4)   # log(2)
    ({'scale': 'positive'}, 0.6931)
    """
    store = pyro.get_param_store()
    skip = {id(p) for p in exclude}
    cons = store.get_state()["constraints"]
    values, specs = {}, {}
    for name, unconstrained in store.named_parameters():
        if id(unconstrained) in skip:
            continue
        values[name] = unconstrained
        specs[name] = encode_constraint(name, cons.get(name, constraints.real))
    return {"values": values, "constraints": specs}


def restore_param_store(state: dict[str, Any], device: Any = None) -> None:
    """Put stored parameters into Pyro's param store (in place where the name exists).

    Examples
    --------
    >>> _ = pyro.param("loc", torch.tensor(1.5))
    >>> state = param_store_state()
    >>> pyro.clear_param_store()
    >>> restore_param_store(state)
    >>> pyro.param("loc")
    tensor(1.5000, requires_grad=True)
    """
    store = pyro.get_param_store()
    existing = dict(store.named_parameters())
    new_values, new_cons = {}, {}
    for name, value in state["values"].items():
        if name in existing and existing[name].shape == value.shape:
            with torch.no_grad():
                existing[name].copy_(value)
        else:
            new_values[name] = value.to(device).requires_grad_(True)
            new_cons[name] = decode_constraint(state["constraints"][name])
    if new_values:
        store.set_state({"params": new_values, "constraints": new_cons})


def model_state(model: torch.nn.Module) -> dict[str, Any]:
    """The stored form of a module: class name, JSON config (if any) and state_dict.

    Examples
    --------
    >>> state = model_state(torch.nn.Linear(2, 1))
    >>> state["class"], state["custom"], sorted(state["state_dict"])
    ('Linear', True, ['bias', 'weight'])
    """
    config = model.config if isinstance(model, HasConfig) else None
    if config is not None:
        config = dict(config)
        json.dumps(config)  # fail early on non-JSON config
    custom = config is None or bool(config.get("custom"))
    return {
        "class": type(model).__name__,
        "config": config,
        "custom": custom,
        "state_dict": dict(model.state_dict()),
    }


def load_model_state(
    state: dict[str, Any], model: torch.nn.Module | None, *, source: str = "the checkpoint"
) -> torch.nn.Module:
    """Rebuild (or fill ``model``) from :func:`model_state` output.

    A pvae model is first built on PyTorch's ``meta`` device (no memory) and its
    parameter names, shapes and dtypes compared with the stored tensors, so a config that
    asks for a bigger network than the file holds is refused before anything is
    allocated. Each stored tensor must have the dtype of the model's (no silent casts).

    Examples
    --------
    >>> net = torch.nn.Linear(2, 1)
    >>> twin = load_model_state(model_state(net), torch.nn.Linear(2, 1))
    >>> bool(torch.equal(twin.weight, net.weight))
    True
    >>> load_model_state(model_state(net.half()), torch.nn.Linear(2, 1))
    Traceback (most recent call last):
    ...
    ValueError: `model` does not match the checkpoint's Linear: the stored `state_dict.weight` ...
    """
    stored = state["state_dict"]
    if model is None:
        if state["custom"]:
            raise ValueError(
                f"{source} holds a custom {state['class']} that pvae cannot rebuild "
                "from its config. Build one with the same architecture and pass it: "
                "load(path, model=template)."
            )
        from pvae.models import MODELS  # lazy: models import this module's callers

        if state["class"] not in MODELS:
            raise ValueError(
                f"{source}: field `class` {state['class']!r} is not one of pvae's "
                f"models {sorted(MODELS)}. Pass a template: load(path, model=template)."
            )
        with torch.device("meta"):  # the network the config asks for, without its memory
            probe = _build(MODELS[state["class"]], state["config"], source)
        _match(probe, stored, f"{source}: the network its `config` describes does not match:")
        model = _build(MODELS[state["class"]], state["config"], source)
    else:
        _match(model, stored, f"`model` does not match the checkpoint's {state['class']}:")
    try:
        model.load_state_dict(stored)
    except RuntimeError as err:
        raise ValueError(
            f"`model` does not match the checkpoint's {state['class']}: {err}. Build the "
            "template with the same constructor arguments as the saved model."
        ) from None
    return model


def _build(cls: Any, config: dict[str, Any], source: str) -> torch.nn.Module:
    try:
        return cls(**config)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{source}: field `config` does not build a {cls.__name__}: {err}"
        ) from None


def _match(model: torch.nn.Module, stored: dict[str, torch.Tensor], what: str) -> None:
    """The stored tensors have the names, shapes and dtypes of ``model``'s state_dict."""
    expected = model.state_dict()
    missing, extra = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
    if missing or extra:
        raise ValueError(
            f"{what} the stored `state_dict` does not fit a {type(model).__name__} "
            f"(missing {missing[:3]}, unexpected {extra[:3]}); the model has "
            f"{_size(expected.values())} numbers and the file holds {_size(stored.values())}. "
            "Build the template with the same constructor arguments as the saved model."
        )
    for name, want in expected.items():
        got = stored[name]
        if got.dtype != want.dtype:
            raise ValueError(
                f"{what} the stored `state_dict.{name}` is a {got.dtype} tensor, but the model "
                f"holds {want.dtype}; pvae does not cast weights silently. Convert and "
                "re-save them yourself if that is what you want."
            )
        if got.shape != want.shape:
            raise ValueError(
                f"{what} the stored `state_dict.{name}` has shape {tuple(got.shape)}, but the "
                f"model has {tuple(want.shape)} ({_size(expected.values())} "
                f"numbers in all; the file holds {_size(stored.values())})."
            )


def _size(tensors: Any) -> int:
    return sum(t.numel() for t in tensors)
