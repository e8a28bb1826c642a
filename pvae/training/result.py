r"""What :func:`pvae.fit` returns: :class:`FitResult`, the history and the final state."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch

from pvae import _display

__all__ = ["FitResult"]


class FitResult(NamedTuple):
    r"""What :func:`fit` returns.

    Parameters
    ----------
    history : list of dict
        One row per epoch (:class:`~pvae.training.history.HistoryRow`), in nats per example:
        ``epoch``; ``train_elbo``, ``train_reconstruction``, ``train_kl_prior`` and, with
        ``val_data``, ``val_elbo``, ``val_reconstruction``, ``val_kl_prior`` -- always the
        model's ELBO and terms (:math:`\beta = 1`, masked, unscaled); ``train_objective``,
        the trained objective, where it differs from the ELBO (:math:`\beta \ne 1`, a
        ``beta_schedule``, ``poutine.scale`` in a custom pair); ``train_loss`` and
        ``val_loss`` instead for squared-error models; ``lr``/``beta`` when scheduled (or
        ``beta != 1``); ``seconds``; and whatever the callbacks add.
    best_epoch : int
        Epoch with the best validation (else training) ELBO.
    params : dict of str to torch.Tensor
        Final parameters (detached copies): the module's ``state_dict`` for a module,
        else the constrained values of the Pyro param store entries that were trained.
    stopped : str
        ``"completed"``, ``"early_stopping"``, ``"interrupted"`` (Ctrl-C), or
        ``"checkpoint_failed"`` (attached to the
        :class:`~pvae.training.resume.CheckpointWriteError` a failed write raises).
    checkpoint : pathlib.Path or None
        The last checkpoint written (``checkpoint_dir/last.safetensors``), if any.
    per_example : bool
        False when the ELBO columns are the joint ELBO of the data set divided by its
        number of examples (global latents, a guide that couples the examples).
    note : str
        Why, or why the history has no ELBO columns ("" when nothing needs saying).

    Examples
    --------
    >>> res = FitResult([{"epoch": 1, "train_elbo": -3.2}], 1, {}, "completed", None)
    >>> res.history[res.best_epoch - 1]["train_elbo"], res.per_example
    (-3.2, True)
    >>> res
    FitResult(1 epoch, stopped='completed', best_epoch=1, train_elbo=-3.2, nats per example)
    """

    history: list[dict[str, float]]
    best_epoch: int
    params: dict[str, torch.Tensor]
    stopped: str
    checkpoint: Path | None
    per_example: bool = True
    note: str = ""

    def __repr__(self) -> str:
        last = self.history[-1] if self.history else {}
        shown = [
            f"{k}={last[k]:.6g}" for k in ("train_elbo", "val_elbo", "train_loss") if k in last
        ]
        unit = "nats per example" if self.per_example else "joint nats / number of examples"
        epochs = f"{len(self.history)} epoch{'s' if len(self.history) != 1 else ''}"
        return (
            f"FitResult({epochs}, stopped={self.stopped!r}, best_epoch={self.best_epoch}, "
            f"{', '.join(shown + [unit])})"
        )

    def _repr_html_(self) -> str:
        last = self.history[-1] if self.history else {}
        fields = {"epochs": len(self.history), "stopped": self.stopped}
        fields["best_epoch"] = self.best_epoch
        fields.update({k: last[k] for k in ("train_elbo", "val_elbo", "train_loss") if k in last})
        curves = []
        for key in ("train_elbo", "val_elbo", "train_loss", "val_loss"):
            spark = _display.sparkline([row.get(key) for row in self.history])
            if spark:
                curves.append(f"{key} per epoch: {spark}")
        keys = [k for k in ("epoch", "train_elbo", "val_elbo", "train_loss", "val_loss",
                            "train_kl_prior", "seconds") if k in last]  # fmt: skip
        tail = self.history[-5:]
        rows = [[row.get(k) for k in keys] for row in tail]
        table = _display.html_table(keys, rows) if keys else ""
        more = len(self.history) - len(tail)
        notes = [
            f"last {len(tail)} of {len(self.history)} epochs ({more} more in .history)"
            if more
            else "",
            "nats per example" if self.per_example else "joint nats / number of examples",
            self.note,
        ]
        return _display.html_record(
            "FitResult", fields, tables=[table], notes=notes, extra="<br>".join(curves)
        )
