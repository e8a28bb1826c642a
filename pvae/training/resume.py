r"""Fit checkpoints: what :func:`pvae.fit` writes, and what ``resume_from`` restores.

A fit checkpoint (kind ``"fit"`` of :mod:`pvae.training.checkpoint`) holds everything a
run needs to continue as if it had never stopped:

- ``model``: the module's ``state_dict`` and ``config`` (``None`` for plain functions);
- ``param_store``: param-store entries that are not module parameters (a custom guide's);
- ``optimizer``: the step object's optimizer state, by parameter name;
- ``epoch``, ``partial`` (written on Ctrl-C mid-epoch), ``history``, ``best`` (the
  monitor's state) and ``rng`` (every generator, :mod:`pvae.training.rng`).

Files are written by rank 0 only, and only between steps: a step that diverges raises
before its update, so every checkpoint holds parameters whose loss and gradients were
finite.
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
from pvae.training.history import HistoryRow
from pvae.training.rng import rng_state, set_rng_state

__all__ = ["Checkpointer", "Resumed", "resume"]


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
    >>> path = ckpt.save("last", 3, history=[])
    >>> path.name, read_state(path)[1]["epoch"]
    ('last.safetensors', 3)
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

    def save(
        self, name: str, epoch: int, history: list[dict], *, partial: bool = False
    ) -> Path | None:
        """Write ``<name>.safetensors`` (rank 0 only); returns its path, or ``None``.

        The optimizer state comes from ``step.state_dict()`` and the monitor's from
        ``monitor.state()``, where they were given.
        """
        if self.directory is None or not is_main_process():
            return None
        module = self.module
        state = {
            "epoch": epoch,
            "partial": partial,
            "history": [dict(row) for row in history],
            "model": model_state(module) if module is not None else None,
            "param_store": param_store_state(
                exclude=list(module.parameters()) if module is not None else ()
            ),
            "optimizer": self.step.state_dict() if self.step is not None else None,
            "rng": rng_state(self.batches),
            "best": self.monitor.state() if self.monitor is not None else [0, math.nan, 0],
        }
        path = write_state(self.directory / f"{name}.safetensors", state, kind="fit")
        if name == "last":
            self.last = path
        return path

    def where(self) -> str:
        """A sentence saying where the last good checkpoint is, for error messages."""
        if self.last is not None:
            return f"The last good checkpoint is {self.last}."
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
    >>> path = Checkpointer(tempfile.mkdtemp(), net).save("last", 2, history)
    >>> back = resume(path, torch.nn.Linear(2, 1))
    >>> back.start, back.history[0]
    (3, {'epoch': 1, 'train_kl_prior': 0.5})
    """
    kind, state = read_state(path)
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
    )
