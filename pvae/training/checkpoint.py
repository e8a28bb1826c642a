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
import warnings
from pathlib import Path
from typing import Any

import pyro
import torch
from pyro.params.param_store import ParamStoreDict
from safetensors.torch import save as _st_save

from pvae.training.codec import decode, encode
from pvae.training.safefile import (
    FileFormatError,
    build_tensor,
    content_digest,
    read_file,
    tensor_record,
)
from pvae.training.schema import SchemaError, check_state
from pvae.training.states import (
    load_model_state,
    model_state,
    param_store_state,
    restore_param_store,
)
from pvae.training.tempfiles import remove_stale, temp_prefix

__all__ = [
    "UnverifiedCheckpointWarning",
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
_VERSION = 2  # 2: a content hash (pvae_sha256); 1: pvae <= 0.2, no hash


class UnverifiedCheckpointWarning(UserWarning):
    """A checkpoint written by pvae 0.2 or older, without a content hash, was loaded.

    Such a file cannot be checked for damage; re-save it (``pvae.save(pvae.load(path),
    path)``, or let a resumed ``fit`` write a new one) to add the hash.
    """


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
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"`kind` must be a non-empty string, got {kind!r}.")
    if not path.name or (path.exists() and not path.is_file()):
        raise ValueError(
            f"`path` {str(path)!r} is not a file name (a folder, a device or a pipe); pvae "
            "writes checkpoints to regular files only, e.g. `path='model.safetensors'`."
        )
    tensors: dict[str, torch.Tensor] = {}
    tree = encode(state, tensors)
    header = {"format": _FORMAT, "version": _VERSION, "kind": kind, "state": tree}
    meta = json.dumps(header, allow_nan=False)
    digest = content_digest(meta, {k: tensor_record(t) for k, t in tensors.items()})
    blob = _st_save(tensors, metadata={"pvae": meta, "pvae_sha256": digest})
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)  # temporary files of earlier writes that were killed mid-way
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent)
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


def _refuse(path: Path, head: bytes, why: str = "") -> None:
    if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":
        what = "a pickle (torch.save or Pyro ParamStore.save) file"
    else:
        what = f"not a pvae checkpoint ({why})" if why else "not a pvae checkpoint"
    raise ValueError(
        f"`path` {str(path)!r} is {what}. pvae reads only safetensors checkpoints written by "
        "pvae.save or pvae.fit and never unpickles: a pickle can run arbitrary code when "
        "loaded. If you trust the file, read it yourself with "
        "torch.load(path, weights_only=True) and save the tensors with pvae.save."
    )


def read_state(
    path: str | os.PathLike, *, allow_nonfinite: bool = False
) -> tuple[str, dict[str, Any]]:
    """Read a file written by :func:`write_state`; return ``(kind, state)``.

    Every check runs before anything is built: a regular file whose size the header
    predicts (:func:`~pvae.training.safefile.read_file`), the content hash, the header's
    schema and, for ``"model"``, ``"param_store"`` and ``"fit"`` files, every field's type,
    range and tensor dtype, and finite weights (:func:`~pvae.training.schema.check_state`).

    Parameters
    ----------
    path : str or path-like
        The file.
    allow_nonfinite : bool
        Accept NaN or infinite weights (to inspect a diverged run); refused by default.

    Raises
    ------
    ValueError
        If the file is a pickle, is not a regular file, is damaged (its content hash does
        not match), or anything else than a valid pvae checkpoint; the message names the
        file and the field.
    FileNotFoundError
        If there is no such file.

    Warns
    -----
    UnverifiedCheckpointWarning
        For a file written by pvae 0.2 or older (no content hash to check).

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
    if not isinstance(allow_nonfinite, bool):
        raise ValueError(f"`allow_nonfinite` must be True or False, got {allow_nonfinite!r}.")
    try:
        raw = read_file(path)
    except FileFormatError as err:
        _refuse(path, _head(path), str(err))
    text = raw.metadata.get("pvae")
    try:
        header = json.loads(text) if text is not None else None
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != _FORMAT:
        _refuse(path, _head(path))
    version, kind = header.get("version"), header.get("kind")
    _verify(path, raw, text, version)
    if type(version) is not int or version < 1:
        raise ValueError(f"`path` {str(path)!r}: field `version` is malformed ({version!r}).")
    if version > _VERSION:
        raise ValueError(
            f"`path` {str(path)!r} was written by a newer pvae (format {version}); "
            "upgrade pvae to read it."
        )
    if not isinstance(kind, str) or "state" not in header:
        raise ValueError(f"`path` {str(path)!r}: field `kind` or `state` is malformed.")
    tensors = {name: build_tensor(record) for name, record in raw.tensors.items()}
    try:
        state = decode(header["state"], tensors)
        check_state(kind, state, allow_nonfinite=allow_nonfinite)
    except (SchemaError, ValueError) as err:
        raise ValueError(f"`path` {str(path)!r}: {err}") from None
    return kind, state


def _head(path: Path) -> bytes:
    with open(path, "rb") as f:  # a regular file: read_file checked it
        return f.read(8)


def _verify(path: Path, raw: Any, text: str, version: Any) -> None:
    """Check the content hash, or warn that a version-1 file (pvae <= 0.2) has none."""
    stored = raw.metadata.get("pvae_sha256")
    if stored is None and version != 1:
        raise ValueError(
            f"`path` {str(path)!r} is damaged: it has no content hash (pvae_sha256), which "
            f"every file of format {_VERSION} carries."
        )
    if stored is None:
        warnings.warn(
            f"{str(path)!r} was written by pvae 0.2 or older and has no content hash, so "
            "damage cannot be detected; re-save it (pvae.save(pvae.load(path), path)) to "
            "add one.",
            UnverifiedCheckpointWarning,
            stacklevel=3,
        )
        return
    if stored != content_digest(text, raw.tensors):
        raise ValueError(
            f"`path` {str(path)!r} is damaged: its content hash (pvae_sha256) does not "
            "match its header and tensors (a flipped bit, or an edit). Use another "
            "checkpoint, e.g. an earlier copy or best.safetensors."
        )


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


def load(
    path: str | os.PathLike,
    *,
    model: torch.nn.Module | None = None,
    allow_nonfinite: bool = False,
) -> Any:
    """Load a file written by :func:`save` or by ``fit(checkpoint_dir=...)``.

    Parameters
    ----------
    path : str or path-like
        A pvae ``.safetensors`` checkpoint.
    model : torch.nn.Module, optional
        Template to load the weights into, required for custom modules; pvae models are
        rebuilt from their stored ``config`` when it is omitted.
    allow_nonfinite : bool
        Accept NaN or infinite weights (refused by default: a diverged run's state).

    Returns
    -------
    torch.nn.Module or ParamStoreDict
        The model for model files and for fit checkpoints of a module; for a param-store
        file (or a fit checkpoint of plain Pyro functions) the parameters are put into
        Pyro's param store, which is returned.

    Raises
    ------
    ValueError
        If the file is a pickle, not a regular file, damaged (content hash), not a valid
        pvae checkpoint (a field of the wrong type or range, a tensor of the wrong dtype
        or size, non-finite weights), or ``model`` does not match. Nothing is built or
        changed before every check has passed.

    Examples
    --------
    >>> import tempfile, os
    >>> _ = pyro.param("loc", torch.tensor(1.5))
    >>> path = save(pyro.get_param_store(), os.path.join(tempfile.mkdtemp(), "p.safetensors"))
    >>> pyro.clear_param_store()
    >>> load(path)["loc"]
    tensor(1.5000, requires_grad=True)
    """
    kind, state = read_state(path, allow_nonfinite=allow_nonfinite)
    source = f"`path` {str(as_path(path))!r}"
    if kind == "model":
        return load_model_state(state, model, source=source)
    if kind == "param_store":
        restore_param_store(state)
        return pyro.get_param_store()
    if kind == "fit":
        if state["model"] is not None:
            model = load_model_state(state["model"], model, source=source)
        restore_param_store(state["param_store"])
        return model if state["model"] is not None else pyro.get_param_store()
    raise ValueError(f"`path` holds a checkpoint of unknown kind {kind!r}.")
