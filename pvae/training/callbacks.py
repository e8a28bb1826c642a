r"""The small pieces of the :func:`pvae.fit` loop: progress, the monitored number, schedules.

- :class:`Progress` -- a tqdm bar over epochs (the ELBO and validation ELBO as postfix),
  on rank 0 only;
- :class:`Monitor` -- the number that picks the best epoch and stops early: the validation
  ELBO, else the training ELBO (a loss for squared-error models);
- :func:`scheduled` -- the value of a schedule ``epoch -> value``, checked;
- :func:`run_callbacks` -- the user's ``cb(epoch, model, row) -> dict | None``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import torch

from pvae._checks import nonnegative_float, positive_float
from pvae._progress import ProgressBar

__all__ = ["Monitor", "Progress", "is_main_process", "run_callbacks", "scheduled"]


def is_main_process() -> bool:
    """True on rank 0 of a ``torch.distributed`` job and in every single-process run.

    Examples
    --------
    >>> is_main_process()
    True
    """
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


class Progress:
    """Progress over epochs (:class:`pvae._progress.ProgressBar`): the ELBO and validation ELBO.

    A notebook widget in Jupyter, a tqdm bar on a terminal, and in a log or pipe one plain line
    every few seconds with the epoch, the ELBO and the time left; on rank 0 only.

    Parameters
    ----------
    enabled : bool or None
        ``False``: silent. ``True`` or ``None`` (the default): shown, in the look that suits
        ``file``.
    total, initial : int
        Epochs in all, and done before (a resumed run).
    file : text stream, optional
        Where it goes (default ``sys.stderr``).

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> bar = Progress(True, total=2, file=out)
    >>> bar.update({"train_elbo": -3.25, "val_elbo": -3.5})
    >>> bar.close()
    >>> out.getvalue().startswith("fit: epoch 1/2 elbo=-3.25 val=-3.5 | ")
    True
    """

    def __init__(
        self, enabled: bool | None, total: int, initial: int = 0, *, file: TextIO | None = None
    ) -> None:
        self.bar = ProgressBar(
            enabled, total, desc="fit", unit="epoch", initial=initial, file=file
        )

    def update(self, row: dict[str, float]) -> None:
        """One epoch done; show its training and validation numbers."""
        post = {}
        for key in ("elbo", "loss", "objective"):
            if f"train_{key}" in row:
                post[key] = float(row[f"train_{key}"])
                break
        for key in ("val_elbo", "val_loss", "val_objective"):
            if key in row:
                post["val"] = float(row[key])
                break
        self.bar.update(**post)

    def close(self) -> None:
        self.bar.close()


class Monitor:
    """The monitored history column: best epoch, best value, epochs without improvement.

    Parameters
    ----------
    keys : sequence of str
        Candidate columns, the first one present in a row is used.
    patience : int, optional
        Stop after this many epochs without a better value (``None``: never).

    Examples
    --------
    >>> m = Monitor(["val_elbo", "train_elbo"], patience=2)
    >>> [m.update(e, {"train_elbo": v}) for e, v in enumerate([-3.0, -2.0, -2.5, -2.1], 1)]
    [True, True, False, False]
    >>> m.best_epoch, m.stop
    (2, True)
    """

    def __init__(self, keys: Sequence[str], patience: int | None = None) -> None:
        self.keys = tuple(keys)
        self.patience = patience
        self.best_epoch, self.bad = 0, 0
        self.best_value = math.nan

    def update(self, epoch: int, row: dict[str, float]) -> bool:
        """Record ``row``; True when it is the best so far."""
        key = next(k for k in self.keys if k in row)
        value = float(row[key])
        higher = not key.endswith("loss")
        if math.isnan(self.best_value):
            self.best_value = -math.inf if higher else math.inf
        if value > self.best_value if higher else value < self.best_value:
            self.best_epoch, self.best_value, self.bad = epoch, value, 0
            return True
        self.bad += 1
        return False

    @property
    def stop(self) -> bool:
        """The patience ran out."""
        return self.patience is not None and self.bad >= self.patience

    def state(self) -> list[Any]:
        """``[best_epoch, best_value, bad]``, as a checkpoint stores it."""
        return [self.best_epoch, self.best_value, self.bad]

    def load(self, state: Sequence[Any]) -> None:
        self.best_epoch, self.best_value, self.bad = int(state[0]), float(state[1]), int(state[2])


def scheduled(name: str, schedule: Callable[[int], float], epoch: int) -> float:
    """``schedule(epoch)``, checked: a positive finite ``lr``, a finite ``beta >= 0``.

    Examples
    --------
    >>> scheduled("lr_schedule", lambda epoch: 0.1 / epoch, 4)
    0.025
    """
    value = schedule(epoch)
    if name == "beta_schedule":
        return nonnegative_float(f"beta_schedule({epoch})", value, example=1.0)
    return positive_float(f"lr_schedule({epoch})", value, example=1e-3)


def run_callbacks(callbacks: Sequence[Callable], epoch: int, model: Any, row: dict) -> None:
    """Call ``cb(epoch, model, row)`` for each callback; merge a returned dict into ``row``.

    Examples
    --------
    >>> row = {"epoch": 1}
    >>> run_callbacks([lambda e, m, r: {"twice": 2 * e}], 1, None, row)
    >>> row
    {'epoch': 1, 'twice': 2}
    """
    for callback in callbacks:
        extra = callback(epoch, model, row)
        if extra:
            row.update(extra)
