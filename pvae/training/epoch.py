r"""One epoch of :func:`pvae.fit`, and where training stands inside it.

:func:`run_epoch` is one pass over the batches, one checked step each
(:meth:`~pvae.training.step.SVIStep.update`). The first step after the end of an epoch
writes the checkpoints staged there, once it has found their state's loss and gradients
finite and before it changes the parameters (:mod:`pvae.training.resume`); after each
step, a held Ctrl-C becomes a
:class:`KeyboardInterrupt` (:mod:`pvae.training.interrupts`). :class:`EpochPosition`
records the steps taken, the running sum of the losses and the batch generator as the
epoch began: what a Ctrl-C checkpoint stores so that a resumed run continues *inside* the
interrupted epoch, exactly where it stopped.
"""

from __future__ import annotations

from typing import Any

import torch

from pvae.training.distributed import all_reduce_sum
from pvae.training.elbos import uses_fixed_shapes
from pvae.training.metrics import accepts
from pvae.training.rng import forked_rng
from pvae.training.step import TrainingDivergedError, divergence_message

__all__ = ["EpochPosition", "run_epoch"]


class EpochPosition:
    """Where training stands inside an epoch.

    Parameters
    ----------
    epoch : int
        The epoch (from 1).
    batches : torch.Tensor or None
        The state of the batches' shuffling generator as the epoch began.
    steps : int
        Batches of the epoch already done.
    total : float
        Running sum of the step losses (as :func:`run_epoch` weighs them).
    count : int
        Examples seen in the epoch.

    Examples
    --------
    >>> pos = EpochPosition(3, None, steps=2, total=1.5, count=20)
    >>> EpochPosition.from_state(pos.state()).state() == pos.state()
    True
    """

    def __init__(
        self,
        epoch: int,
        batches: torch.Tensor | None,
        *,
        steps: int = 0,
        total: float = 0.0,
        count: int = 0,
    ) -> None:
        self.epoch, self.batches = epoch, batches
        self.steps, self.total, self.count = steps, total, count
        #: The last batch a step ran on (for the check of the state after it).
        self.batch: tuple | None = None

    @classmethod
    def start(cls, epoch: int, batches: Any) -> EpochPosition:
        """The position at the start of ``epoch``, recording the batches' generator."""
        generator = getattr(batches, "generator", None)
        state = generator.get_state() if isinstance(generator, torch.Generator) else None
        return cls(epoch, state)

    def state(self) -> dict[str, Any]:
        """The stored form (a checkpoint's ``position``)."""
        return {
            "epoch": self.epoch,
            "steps": self.steps,
            "total": self.total,
            "count": self.count,
            "batches": self.batches,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> EpochPosition:
        """The position :meth:`state` stored."""
        return cls(
            state["epoch"],
            state["batches"],
            steps=state["steps"],
            total=float(state["total"]),
            count=state["count"],
        )

    def rewind(self, batches: Any) -> None:
        """Put the batches' generator back to where it was as the epoch began."""
        generator = getattr(batches, "generator", None)
        if self.batches is not None and isinstance(generator, torch.Generator):
            generator.set_state(self.batches)


def run_epoch(
    step: Any, inputs: Any, pos: EpochPosition, device: Any, ckpt: Any, interrupts: Any
) -> float:
    """One pass over the batches from ``pos``; the mean loss per example (all ranks).

    The first ``pos.steps`` batches (done before an interruption) are drawn but not
    trained on, leaving every global generator as it was.
    """
    num_steps = len(inputs.batches)
    scaled = accepts(step.model_fn, "num_examples")
    ragged = uses_fixed_shapes(step.elbo)  # a JIT-traced graph has fixed shapes
    size = inputs.batches.batch_size
    step.on_checked = ckpt.commit  # a step found the staged state good: write it
    batches = iter(inputs.batches)
    with forked_rng():  # a resumed epoch: skip what was done, drawing only the order
        for _ in range(pos.steps):
            next(batches)
    for index, batch in enumerate(batches, pos.steps + 1):
        batch = tuple(t.to(device) for t in batch) if inputs.move else batch
        b = batch[0].shape[0]
        if ragged and b != size:
            pos.steps = index
            continue
        try:
            loss = step.update(*batch)
        except TrainingDivergedError as err:
            ckpt.discard()  # the staged state is the one that just failed its check
            where = f"epoch {pos.epoch}, step {index} of {num_steps}"
            message = divergence_message(err.loss, err.parameter, where, step.lr)
            raise TrainingDivergedError(
                f"{message} {ckpt.where()}", loss=err.loss, parameter=err.parameter, step=err.step
            ) from None
        pos.total += loss * b / inputs.num_examples if scaled else loss
        pos.count += b
        pos.steps, pos.batch = index, batch
        interrupts.check()
    total, count = all_reduce_sum([pos.total, pos.count])
    return total / count


def commit_checked(ckpt: Any, step: Any, pos: EpochPosition | None) -> None:
    """Check the current state (no step has yet), then write what is staged.

    Called on every rank (the check averages gradients over them) when training ends; a
    state whose loss or gradients are not finite is not written.

    Raises
    ------
    TrainingDivergedError
        If the check fails; the message names the last good checkpoint.
    """
    if ckpt.directory is None or pos is None or pos.batch is None:
        ckpt.discard()
        return
    try:
        step.check(*pos.batch)
    except TrainingDivergedError as err:
        ckpt.discard()
        where = f"the state after epoch {pos.epoch}, step {pos.steps} (the last update)"
        message = divergence_message(err.loss, err.parameter, where, step.lr)
        raise TrainingDivergedError(
            f"{message} That state was not written. {ckpt.where()}",
            loss=err.loss,
            parameter=err.parameter,
            step=err.step,
        ) from None
    ckpt.commit()


def save_interrupted(
    ckpt: Any, step: Any, pos: EpochPosition | None, history: list, done: int, *, alone: bool
) -> str:
    """Write the state at a Ctrl-C (an interrupted epoch with its position); say what ran.

    ``alone``: a single process (under ``torchrun`` the ranks stop at different steps, so
    only checkpoints of completed epochs are kept and the interrupted epoch is redone).
    """
    if not alone or ckpt.directory is None or pos is None or pos.batch is None:
        ckpt.discard()
        return "no new checkpoint was written"
    inside = pos.epoch == done + 1
    ckpt.stage("last", done, history, partial=inside, position=pos.state() if inside else None)
    commit_checked(ckpt, step, pos)
    at = f"epoch {pos.epoch}, step {pos.steps}" if inside else f"the end of epoch {done}"
    return f"checkpoint of {at} saved to {ckpt.last}"
