r"""Fit checkpoints: what :func:`pvae.fit` writes, and what ``resume_from`` restores.

A fit checkpoint (kind ``"fit"`` of :mod:`pvae.training.checkpoint`) holds everything a
run needs to continue as if it had never stopped:

- ``model``: the module's ``state_dict`` and ``config`` (``None`` for plain functions);
- ``param_store``: param-store entries that are not module parameters (a custom guide's);
- ``optimizer``: the step object's optimizer state, by parameter name;
- ``epoch`` (the last completed epoch), ``partial`` (written on Ctrl-C inside an epoch),
  ``position`` (where in that interrupted epoch: steps taken, the running loss sum, and
  the batch generator as the epoch began), ``history``, ``best`` (the monitor's state) and
  ``rng`` (every generator, :mod:`pvae.training.rng`).

**The last good checkpoint is good.** A state is first *staged* (copied in memory,
:meth:`Checkpointer.stage`) and written (:meth:`Checkpointer.commit`) only once a step has
computed a finite loss and finite gradients *at that state*: the next step of training,
or, after the last one, an explicit check (:meth:`~pvae.training.step.SVIStep.check`). A
state whose loss or gradients are NaN or infinite is therefore never written, and the
file an error names as the last good checkpoint resumes without diverging at once.

Files are written by rank 0 only. A failed write (a full disk, say) raises
:class:`CheckpointWriteError`, an :class:`OSError` naming the file.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, NamedTuple

import torch

from pvae.training.callbacks import is_main_process
from pvae.training.checkpoint import (
    load_model_state,
    model_state,
    param_store_state,
    read_state,
    restore_param_store,
    write_state,
)
from pvae.training.codec import decode, encode
from pvae.training.history import HistoryRow
from pvae.training.rng import rng_state, set_rng_state

__all__ = ["CheckpointWriteError", "Checkpointer", "Resumed", "resume"]


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (a full disk, a read-only folder, ...).

    An :class:`OSError` with the ``errno``, ``strerror`` and ``filename`` of the failed
    write. :func:`pvae.fit` stops training there and attaches what was done: ``result``
    is the :class:`~pvae.training.result.FitResult` so far (history and parameters; the
    model and Pyro's param store hold the same state), ``stopped="checkpoint_failed"``.

    Examples
    --------
    >>> import errno
    >>> err = CheckpointWriteError(errno.ENOSPC, "No space left on device", "run/last")
    >>> isinstance(err, OSError), err.filename, err.result
    (True, 'run/last', None)
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        #: The :class:`~pvae.training.result.FitResult` so far (set by :func:`pvae.fit`).
        self.result: Any = None
        #: What was done and how to continue (set by :func:`pvae.fit`).
        self.advice = ""

    def __str__(self) -> str:
        done = f" {self.advice}" if self.advice else ""
        return (
            f"could not write the checkpoint {self.filename}: [Errno {self.errno}] "
            f"{self.strerror}.{done}"
        )


class Resumed(NamedTuple):
    """What a fit checkpoint restores (the parameters and generators are restored in place)."""

    #: The history so far.
    history: list[HistoryRow]
    #: The epoch to run next.
    start: int
    #: The monitor's ``[best_epoch, best_value, bad]``.
    best: list[Any]
    #: The step object's state (:meth:`~pvae.training.step.SVIStep.state_dict`).
    optimizer: dict[str, Any] | None
    #: Where in an interrupted epoch to continue (``None``: at the start of ``start``).
    position: dict[str, Any] | None = None


class Checkpointer:
    """Writes ``last.safetensors`` and ``best.safetensors`` of a run into a folder.

    Parameters
    ----------
    directory : str or path, optional
        The folder; ``None`` writes nothing.
    module : torch.nn.Module, optional
        The model, when it is a module (its ``state_dict`` and ``config`` are stored).
    batches : optional
        The training batches (their shuffling generator is stored).
    step, monitor : optional
        The step object and the monitor, whose states are stored.

    Examples
    --------
    >>> import tempfile
    >>> ckpt = Checkpointer(tempfile.mkdtemp(), torch.nn.Linear(2, 1))
    >>> ckpt.stage("last", 3, history=[])      # a copy in memory, not yet checked
    >>> ckpt.last, ckpt.pending
    (None, True)
    >>> [p.name for p in ckpt.commit()]        # once a step has checked that state
    ['last.safetensors']
    >>> read_state(ckpt.last)[1]["epoch"]
    3
    """

    def __init__(
        self,
        directory: str | os.PathLike | None,
        module: torch.nn.Module | None = None,
        batches: Any = None,
        *,
        step: Any = None,
        monitor: Any = None,
    ) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.module, self.batches, self.step, self.monitor = module, batches, step, monitor
        #: The last ``last.safetensors`` written, if any.
        self.last: Path | None = None
        self._staged: dict[str, dict[str, Any]] = {}

    @property
    def pending(self) -> bool:
        """A staged state waits for its check."""
        return bool(self._staged)

    def stage(
        self,
        name: str,
        epoch: int,
        history: list[dict],
        *,
        partial: bool = False,
        position: dict[str, Any] | None = None,
    ) -> None:
        """Copy the current state in memory, to write as ``<name>.safetensors`` on commit.

        The optimizer state comes from ``step.state_dict()`` and the monitor's from
        ``monitor.state()``, where they were given. Does nothing without a folder or
        outside rank 0.
        """
        if self.directory is None or not is_main_process():
            return
        module = self.module
        state = {
            "epoch": epoch,
            "partial": partial,
            "position": position,
            "history": [dict(row) for row in history],
            "model": model_state(module) if module is not None else None,
            "param_store": param_store_state(
                exclude=list(module.parameters()) if module is not None else ()
            ),
            "optimizer": self.step.state_dict() if self.step is not None else None,
            "rng": rng_state(self.batches),
            "best": self.monitor.state() if self.monitor is not None else [0, math.nan, 0],
        }
        table: dict[str, torch.Tensor] = {}
        self._staged[name] = decode(encode(state, table), table)  # copies every tensor

    def commit(self) -> list[Path]:
        """Write the staged states (their loss and gradients were found finite).

        Raises
        ------
        CheckpointWriteError
            If a file cannot be written; the previous file is left intact.
        """
        written = []
        for name in list(self._staged):
            path = self.directory / f"{name}.safetensors"
            try:
                write_state(path, self._staged.pop(name), kind="fit")
            except OSError as err:
                self._staged.clear()
                raise CheckpointWriteError(
                    err.errno, err.strerror or str(err), str(err.filename or path)
                ) from err
            if name == "last":
                self.last = path
            written.append(path)
        return written

    def discard(self) -> None:
        """Forget the staged states (their check failed)."""
        self._staged.clear()

    def where(self) -> str:
        """A sentence saying where the last good checkpoint is, for error messages."""
        if self.last is not None:
            return f"The last good checkpoint is {self.last}."
        if self.directory is not None:
            return "No checkpoint had passed its check yet, so none was written."
        return "No checkpoint was written; pass `checkpoint_dir` to keep one."


def resume(
    path: str | os.PathLike,
    module: torch.nn.Module | None,
    *,
    device: Any = None,
    batches: Any = None,
) -> Resumed:
    """Restore a fit checkpoint: parameters and generators in place, the rest returned.

    Raises
    ------
    ValueError
        If the file is not a fit checkpoint, or holds a module when none is given.

    Examples
    --------
    >>> import tempfile
    >>> net = torch.nn.Linear(2, 1)
    >>> history = [{"epoch": 1, "kl": 0.5}, {"epoch": 2}]        # written by pvae 0.1
    >>> ckpt = Checkpointer(tempfile.mkdtemp(), net)
    >>> ckpt.stage("last", 2, history)
    >>> path = ckpt.commit()[0]
    >>> back = resume(path, torch.nn.Linear(2, 1))
    >>> back.start, back.history[0]
    (3, {'epoch': 1, 'train_kl_prior': 0.5})
    """
    kind, state = read_state(path)
    if kind == "fit" and state["partial"] and state.get("position") is None:
        raise ValueError(
            f"`resume_from` {str(path)!r} holds an epoch interrupted by Ctrl-C without the "
            "position inside it (written by pvae 0.2 or older); resuming would redo that "
            "epoch's first steps on top of their own updates. Resume from a checkpoint of "
            "a completed epoch, or load the weights with pvae.load and start a new fit."
        )
    if kind != "fit":
        raise ValueError(
            f"`resume_from` must be a fit checkpoint (written by fit(checkpoint_dir=...)), "
            f"got a {kind!r} file. Load a model file with pvae.load instead."
        )
    if state["model"] is not None:
        if module is None:
            raise ValueError(
                "`resume_from` holds a module model; pass that model (the same class and "
                "configuration) to fit."
            )
        load_model_state(state["model"], module)
    restore_param_store(state["param_store"], device)
    set_rng_state(state["rng"], batches)
    return Resumed(
        history=[HistoryRow.from_dict(row) for row in state["history"]],
        start=int(state["epoch"]) + 1,
        best=list(state["best"]),
        optimizer=state["optimizer"],
        position=state.get("position"),
    )
