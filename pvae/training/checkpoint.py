r"""Safe checkpoints: tensors in safetensors, everything else in JSON, never a pickle.

A pvae checkpoint is **one** ``.safetensors`` file. Its tensors are stored in the
`safetensors <https://huggingface.co/docs/safetensors>`_ format, which holds raw numbers
and cannot run code; the configuration (model class and constructor arguments, epoch,
history, optimizer hyper-parameters, random-number-generator states) is JSON in the
file's ``__metadata__`` header under the key ``"pvae"``. A file is written atomically:
to a temporary file in the same folder, flushed with ``fsync``, then renamed over the
target with :func:`os.replace`, so a crash mid-write leaves the previous file intact.

Pickle files (``torch.save`` archives, Pyro's ``ParamStore.save``) are refused: loading a
pickle runs whatever code its author put in it.

Three kinds of file share the format:

* ``"model"``: a module's ``state_dict`` plus, for pvae models, the JSON ``config`` that
  rebuilds it through :data:`pvae.models.MODELS` (:func:`save` of an ``nn.Module``);
* ``"param_store"``: Pyro's global parameter store with each parameter's constraint
  (:func:`save` of ``pyro.get_param_store()``);
* ``"fit"``: a training checkpoint written by :func:`pvae.fit` (model, extra
  param-store entries, optimizer state, epoch, history and RNG states).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pyro
import pyro.distributions.constraints as constraints
import torch
from pyro.params.param_store import ParamStoreDict
from safetensors import SafetensorError
from safetensors.torch import load as _st_load
from safetensors.torch import save as _st_save

from pvae.models.protocol import HasConfig
from pvae.training.codec import decode, decode_constraint, encode, encode_constraint

__all__ = [
    "load",
    "load_model_state",
    "model_state",
    "param_store_state",
    "read_state",
    "restore_param_store",
    "save",
    "write_state",
]

_FORMAT = "pvae-checkpoint"
_VERSION = 1


# ----------------------------------------------------------------------------- states
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


# ----------------------------------------------------------------------------- files
def as_path(path: Any) -> Path:
    """``path`` as a :class:`pathlib.Path`, or a clear error for anything else."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(
            f"`path` must be a file path (str or os.PathLike), got {type(path).__name__}."
        )
    return Path(path)


def write_state(path: str | os.PathLike, state: dict[str, Any], *, kind: str) -> Path:
    """Write a tree of tensors and JSON values atomically to one safetensors file.

    Parameters
    ----------
    path : str or path-like
        Target file (conventionally ending in ``.safetensors``).
    state : dict
        Tensors, arrays, numbers, strings, ``None`` and lists/tuples/dicts of them.
    kind : str
        A label stored in the header (``"model"``, ``"param_store"``, ``"fit"``, ...).

    Returns
    -------
    pathlib.Path
        The path written.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "state.safetensors")
    >>> _ = write_state(path, {"w": torch.ones(2), "epoch": 3}, kind="demo")
    >>> read_state(path)
    ('demo', {'w': tensor([1., 1.]), 'epoch': 3})
    """
    path = as_path(path)
    tensors: dict[str, torch.Tensor] = {}
    tree = encode(state, tensors)
    header = {"format": _FORMAT, "version": _VERSION, "kind": kind, "state": tree}
    blob = _st_save(tensors, metadata={"pvae": json.dumps(header)})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes 0600; give the file open()'s usual mode
            os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        dir_fd = os.open(path.parent, os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _refuse(path: Path, head: bytes) -> None:
    if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":
        what = "a pickle (torch.save or Pyro ParamStore.save) file"
    else:
        what = "not a pvae checkpoint"
    raise ValueError(
        f"`path` {str(path)!r} is {what}. pvae reads only safetensors checkpoints written by "
        "pvae.save or pvae.fit and never unpickles: a pickle can run arbitrary code when "
        "loaded. If you trust the file, read it yourself with "
        "torch.load(path, weights_only=True) and save the tensors with pvae.save."
    )


def read_state(path: str | os.PathLike) -> tuple[str, dict[str, Any]]:
    """Read a file written by :func:`write_state`; return ``(kind, state)``.

    Raises
    ------
    ValueError
        If the file is a pickle or anything other than a pvae safetensors checkpoint.
    FileNotFoundError
        If there is no such file.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "bad.pt")
    >>> torch.save({"w": torch.ones(1)}, path)
    >>> read_state(path)
    Traceback (most recent call last):
    ...
    ValueError: `path` '...bad.pt' is a pickle (torch.save or Pyro ParamStore.save) file. ...
    """
    path = as_path(path)
    data = path.read_bytes()
    try:
        header = json.loads(_header_metadata(data)["pvae"])
        tensors = _st_load(data)
        if header.get("format") != _FORMAT:
            raise KeyError("format")
        version, kind = int(header["version"]), str(header["kind"])
        if version <= _VERSION:
            state = decode(header["state"], tensors)
    except (SafetensorError, KeyError, TypeError, ValueError, OverflowError, RuntimeError):
        _refuse(path, data[:8])
    if version > _VERSION:
        raise ValueError(
            f"`path` {str(path)!r} was written by a newer pvae (format {version}); "
            "upgrade pvae to read it."
        )
    return kind, state


def _header_metadata(data: bytes) -> dict[str, str]:
    """Parse a safetensors header (8-byte length + JSON) without touching tensor data."""
    n = int.from_bytes(data[:8], "little")
    if not 0 < n <= len(data) - 8:
        raise ValueError("bad header length")
    return json.loads(data[8 : 8 + n]).get("__metadata__") or {}


def save(obj: Any, path: str | os.PathLike) -> Path:
    """Save a model or Pyro's param store to a safe, atomically written file.

    Parameters
    ----------
    obj : torch.nn.Module or pyro.params.param_store.ParamStoreDict
        A pvae model (its ``config`` is stored so :func:`load` can rebuild it), any other
        ``nn.Module`` (reload it into a template with ``load(path, model=...)``), or
        ``pyro.get_param_store()``.
    path : str or path-like
        Target file, conventionally ``*.safetensors``.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        For other objects, or parameters with constraints pvae cannot store.

    Examples
    --------
    >>> import tempfile, os
    >>> net = torch.nn.Linear(2, 1)
    >>> path = save(net, os.path.join(tempfile.mkdtemp(), "net.safetensors"))
    >>> twin = load(path, model=torch.nn.Linear(2, 1))
    >>> bool(torch.equal(twin.weight, net.weight))
    True
    """
    if isinstance(obj, ParamStoreDict):
        return write_state(path, param_store_state(), kind="param_store")
    if isinstance(obj, torch.nn.Module):
        return write_state(path, model_state(obj), kind="model")
    raise ValueError(
        "`obj` must be a torch.nn.Module (e.g. a pvae model) or pyro.get_param_store(), "
        f"got {type(obj).__name__}. Training checkpoints are written by "
        "pvae.fit(checkpoint_dir=...)."
    )


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


def load_model_state(state: dict[str, Any], model: torch.nn.Module | None) -> torch.nn.Module:
    """Rebuild (or fill ``model``) from :func:`model_state` output.

    Examples
    --------
    >>> net = torch.nn.Linear(2, 1)
    >>> twin = load_model_state(model_state(net), torch.nn.Linear(2, 1))
    >>> bool(torch.equal(twin.weight, net.weight))
    True
    """
    if model is None:
        if state["custom"]:
            raise ValueError(
                f"the checkpoint holds a custom {state['class']} that pvae cannot rebuild "
                "from its config. Build one with the same architecture and pass it: "
                "load(path, model=template)."
            )
        from pvae.models import MODELS  # lazy: models import this module's callers

        if state["class"] not in MODELS:
            raise ValueError(
                f"the checkpoint's model class {state['class']!r} is not one of pvae's "
                f"models {sorted(MODELS)}. Pass a template: load(path, model=template)."
            )
        model = MODELS[state["class"]](**state["config"])
    try:
        model.load_state_dict(state["state_dict"])
    except RuntimeError as err:
        raise ValueError(
            f"`model` does not match the checkpoint's {state['class']}: {err}. Build the "
            "template with the same constructor arguments as the saved model."
        ) from None
    return model


def load(path: str | os.PathLike, *, model: torch.nn.Module | None = None) -> Any:
    """Load a file written by :func:`save` or by ``fit(checkpoint_dir=...)``.

    Parameters
    ----------
    path : str or path-like
        A pvae ``.safetensors`` checkpoint.
    model : torch.nn.Module, optional
        Template to load the weights into, required for custom modules; pvae models are
        rebuilt from their stored ``config`` when it is omitted.

    Returns
    -------
    torch.nn.Module or ParamStoreDict
        The model for model files and for fit checkpoints of a module; for a param-store
        file (or a fit checkpoint of plain Pyro functions) the parameters are put into
        Pyro's param store, which is returned.

    Raises
    ------
    ValueError
        If the file is a pickle or not a pvae checkpoint, or ``model`` does not match.

    Examples
    --------
    >>> import tempfile, os
    >>> _ = pyro.param("loc", torch.tensor(1.5))
    >>> path = save(pyro.get_param_store(), os.path.join(tempfile.mkdtemp(), "p.safetensors"))
    >>> pyro.clear_param_store()
    >>> load(path)["loc"]
    tensor(1.5000, requires_grad=True)
    """
    kind, state = read_state(path)
    if kind == "model":
        return load_model_state(state, model)
    if kind == "param_store":
        restore_param_store(state)
        return pyro.get_param_store()
    if kind == "fit":
        restore_param_store(state["param_store"])
        if state["model"] is not None:
            return load_model_state(state["model"], model)
        return pyro.get_param_store()
    raise ValueError(f"`path` holds a checkpoint of unknown kind {kind!r}.")
