r"""Training: :func:`fit`, one SVI loop for pvae's models and for any Pyro model/guide pair.

Each step draws a minibatch, estimates the negative ELBO and its gradient, and updates
the parameters of the model :math:`p_\theta(x, z)` and the guide :math:`q_\phi(z \mid x)`:

.. math::

    \mathrm{ELBO}(\theta, \phi) = \mathbb{E}_{q_\phi(z \mid x)}
        \left[\log p_\theta(x \mid z)\right]
        - \mathrm{KL}\left(q_\phi(z \mid x) \,\|\, p(z)\right) \le \log p_\theta(x).

:func:`fit` is a short loop over the step object :class:`~pvae.training.step.SVIStep`
(one checked update at a time); its pieces live in their own modules: the batches
(:mod:`~pvae.training.inputs`), the history's evaluation columns
(:mod:`~pvae.training.metrics`, :mod:`~pvae.training.history`), progress, the monitored
number and schedules (:mod:`~pvae.training.callbacks`), checkpoints and resuming
(:mod:`~pvae.training.resume`), data parallelism (:mod:`~pvae.training.distributed`).

References
----------
1. Kingma, D. P. and Welling, M. (2014). Auto-Encoding Variational Bayes. ICLR.
2. Hoffman, M. D., Blei, D. M., Wang, C. and Paisley, J. (2013). Stochastic Variational
   Inference. JMLR 14.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import pyro
import torch
from pyro.infer import ELBO

from pvae._checks import boolean, callable_arg, optional, positive_int, torch_device
from pvae._checks import seed as check_seed
from pvae._seed import seeded
from pvae.models.protocol import HasELBOTerms, model_and_guide, objective
from pvae.training.callbacks import Monitor, Progress, is_main_process, run_callbacks, scheduled
from pvae.training.distributed import all_reduce_mean, init_distributed
from pvae.training.elbos import uses_fixed_shapes
from pvae.training.epoch import EpochPosition, commit_checked, run_epoch, save_interrupted
from pvae.training.history import HistoryRow
from pvae.training.inputs import training_inputs
from pvae.training.interrupts import deferred_interrupts
from pvae.training.metrics import EpochMetrics, accepts, check_columns
from pvae.training.result import FitResult
from pvae.training.resume import Checkpointer, CheckpointWriteError, resume
from pvae.training.step import SVIStep, TrainingDivergedError

__all__ = ["FitResult", "TrainingDivergedError", "fit"]


def _with_size(fn: Callable, size: int) -> Callable:
    """Pass the data-set size to functions that accept ``num_examples`` (plate scaling)."""
    return partial(fn, num_examples=size) if accepts(fn, "num_examples") else fn


def _row(
    epoch: int, mean: float, columns: dict[str, float], metrics: EpochMetrics, beta: bool
) -> HistoryRow:
    """An epoch's row: the step mean as ``train_elbo`` (or ``train_objective``, where the
    trained objective is not the ELBO, or ``train_loss``), then the evaluation columns."""
    row = HistoryRow(epoch=epoch)
    if metrics.kind == "squared_error":
        row["train_loss"] = mean
    elif not (beta or metrics.differs):
        row["train_elbo"] = -mean
    else:
        if "train_reconstruction" in columns:
            row["train_elbo"] = columns["train_reconstruction"] - columns["train_kl_prior"]
        row["train_objective"] = -mean
    row.update(columns)
    return row


def fit(
    model: Any,
    data: Any,
    *,
    guide: Callable | None = None,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    elbo: str | ELBO = "trace",
    num_particles: int = 1,
    optimizer: Any = None,
    clip_norm: float | None = None,
    lr_schedule: Callable[[int], float] | None = None,
    beta_schedule: Callable[[int], float] | None = None,
    val_data: Any = None,
    early_stopping: int | None = None,
    seed: int | None = None,
    device: str | torch.device | None = None,
    progress: bool | None = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 1,
    resume_from: str | Path | None = None,
    callbacks: Sequence[Callable[[int, Any, dict], dict | None]] = (),
    shuffle: bool | None = None,
) -> FitResult:
    r"""Fit a model/guide pair by stochastic variational inference on minibatches.

    Parameters
    ----------
    model : object or callable
        A pvae model (anything with ``.model`` and ``.guide`` methods), or a Pyro model
        function when ``guide`` is given.
    data : tensor, ndarray, tuple or list, Dataset or DataLoader
        Training data (:func:`pvae.data.as_batches`); each batch tuple is passed as
        ``model(*batch)``. A list of single values (Pyro's SVI tutorials) is stacked.
    guide : callable, optional
        The Pyro guide, for a custom model function.
    epochs : int
        Total number of passes over the data (also when resuming).
    batch_size : int
        Examples per step.
    lr : float
        Learning rate (Adam by default); positive and finite.
    elbo : {"trace", "meanfield", "jit", "analytic", "enum", "iwae"} or pyro.infer.ELBO
        ``"trace"``: :class:`~pyro.infer.Trace_ELBO`; ``"meanfield"``:
        :class:`~pyro.infer.TraceMeanField_ELBO`; ``"jit"``: :class:`~pyro.infer.JitTrace_ELBO`
        (drops the last incomplete batch: a traced graph has fixed shapes); ``"analytic"``:
        :class:`~pvae.training.elbos.AnalyticELBO`, for pvae models with ``elbo_terms``;
        ``"enum"``: :class:`~pvae.training.elbos.EnumELBO` (``TraceEnum_ELBO``, discrete
        sites marked for enumeration summed out exactly, ``max_plate_nesting`` found);
        ``"iwae"``: :class:`~pvae.training.importance_bound.IWAE_ELBO`, the
        importance-weighted bound with ``num_particles`` draws per example. A model with an
        ``auxiliary_loss`` method (:class:`~pvae.models.SemiSupervisedVAE`) has it added.
    num_particles : int
        Samples per ELBO estimate (of a named estimator; ``"iwae"``'s :math:`K`).
    optimizer : torch.optim.Optimizer subclass, callable, or pyro.optim.PyroOptim, optional
        Default one ``torch.optim.Adam`` over all parameters. A class is built with ``lr``;
        a callable receives the parameter list; a ``PyroOptim`` is used as Pyro's SVI
        would. The last two keep their own learning rate (``lr_schedule`` still applies).
    clip_norm : float, optional
        Clip the global gradient norm to this value before each update.
    lr_schedule, beta_schedule : callable, optional
        ``epoch -> learning rate`` and ``epoch -> beta`` (KL annealing: sets ``model.beta``),
        applied at the start of each epoch (epochs count from 1).
    val_data : data, optional
        Held-out data, evaluated at the end of each epoch.
    early_stopping : int, optional
        Patience: stop after this many epochs without a better validation ELBO (training
        ELBO without ``val_data``).
    seed : int, optional
        Seeds Pyro, torch, NumPy and the batch order inside the call, and restores the
        caller's generators afterwards (:func:`pvae._seed.seeded`): same seed, same history.
    device : str or torch.device, optional
        Moves a module model and tensor data there; ``"auto"`` picks a GPU where there is
        one, and a GPU that is not there raises (:func:`pvae._checks.torch_device`).
    progress : bool, optional
        Progress on stderr with the epoch, ELBO and validation ELBO: a widget in a notebook,
        a tqdm bar on a terminal, one plain line every few seconds (and the time left) in a
        log or pipe (:mod:`pvae._progress`). ``False`` silences it.
    checkpoint_dir : str or path, optional
        Writes ``last.safetensors`` every ``checkpoint_every`` epochs, at the end and on
        Ctrl-C, and ``best.safetensors`` when the validation ELBO improves.
    checkpoint_every : int
        Epochs between checkpoints.
    resume_from : str or path, optional
        A fit checkpoint; training continues after its epoch with the same history.
    callbacks : sequence of callables
        ``cb(epoch, model, row) -> dict | None`` after each epoch; a returned dict is merged
        into that epoch's history row.
    shuffle : bool, optional
        Reshuffle the examples every epoch. Default: only when an epoch has more than one
        step, so a full batch keeps its order (guides with parameters per example, such as
        ``AutoNormal`` over a local plate, need it). A DataLoader keeps its own order.

    Returns
    -------
    FitResult

    Raises
    ------
    ValueError
        For invalid arguments.
    TrainingDivergedError
        When a loss or a gradient is NaN or infinite; names the epoch, the step (and the
        parameter), before the bad update, with the gradients cleared.

    Notes
    -----
    **History.** Nats per example, positive sense (:class:`FitResult`). ``train_elbo`` is
    the mean of the step estimates over the epoch when the trained objective is the ELBO;
    otherwise that mean is ``train_objective`` and ``train_elbo`` is
    ``train_reconstruction - train_kl_prior``. Those two are computed once per epoch,
    without gradients, on the first ``batch_size`` training examples (the whole training
    set when the ELBO does not factor over the examples), from ``elbo_terms`` for pvae
    models and from the importance-weight core for other pairs; the ``val_*`` columns
    likewise on ``val_data``.

    **Minibatches and global latents.** If the model function (and the guide) accepts a
    keyword ``num_examples``, fit passes the full data size :math:`N`; write
    ``with pyro.plate("data", num_examples, subsample_size=len(x))`` and Pyro scales the
    likelihood of a batch by :math:`N/B`. The history is then the full-data ELBO divided by
    :math:`N`.

    **Several processes.** Under ``torchrun --nproc_per_node=N`` each process trains on its
    shard of the data, ``batch_size`` is per process, gradients are averaged by parameter
    name before every update, the history covers all shards, and only rank 0 shows
    progress and writes checkpoints (:mod:`pvae.training.distributed`).

    Examples
    --------
    >>> import pyro.distributions as dist
    >>> def model(x):
    ...     loc = pyro.param("loc", torch.tensor(0.0))
    ...     with pyro.plate("data", len(x)):
    ...         pyro.sample("x", dist.Normal(loc, 1.0), obs=x)
    >>> def guide(x):
    ...     pass
    >>> res = fit(model, torch.full((64,), 3.0), guide=guide, epochs=40, lr=0.1, seed=0)
    >>> round(pyro.param("loc").item(), 1), res.stopped
    (3.0, 'completed')
    """
    model_fn, guide_fn = model_and_guide(model, guide)
    epochs, batch_size = positive_int("epochs", epochs), positive_int("batch_size", batch_size)
    checkpoint_every = positive_int("checkpoint_every", checkpoint_every, example=1)
    early_stopping = optional(positive_int, "early_stopping", early_stopping, example=5)
    seed, shuffle = check_seed("seed", seed), optional(boolean, "shuffle", shuffle)
    progress = optional(boolean, "progress", progress)
    device = optional(torch_device, "device", device)
    for name, fn in (("lr_schedule", lr_schedule), ("beta_schedule", beta_schedule)):
        optional(callable_arg, name, fn)
    callbacks = [callable_arg(f"callbacks[{i}]", cb) for i, cb in enumerate(callbacks)]
    terms = isinstance(model, HasELBOTerms) and objective(model) == "elbo"
    if beta_schedule is not None and not isinstance(model, HasELBOTerms):
        raise ValueError(
            "`beta_schedule` sets `model.beta`, but this model has no `beta` attribute (nor "
            "`elbo_terms`). Anneal a custom model inside its own code instead."
        )
    context = init_distributed(device if device is not None else "cpu")  # torchrun or no-op
    if context.is_distributed and device is not None:
        device = context.device  # "cuda" means this rank's GPU
    module = model if isinstance(model, torch.nn.Module) else None
    with seeded(None if seed is None else seed + context.rank):  # ranks: their own noise
        data_seed = seed if seed is not None else int(torch.randint(2**31 - 1, ()).item())
        if device is not None:
            device = torch.device(device)
            if module is not None:
                module.to(device)
        inputs = training_inputs(
            data,
            batch_size=batch_size,
            shuffle=shuffle,
            seed=data_seed,
            device=device,
            context=context,
            val_data=val_data,
        )
        n = inputs.num_examples
        pair = (
            (model, None) if guide is None else (_with_size(model_fn, n), _with_size(guide_fn, n))
        )
        step = SVIStep(
            *pair,
            elbo=elbo,
            num_particles=num_particles,
            optimizer=optimizer,
            lr=lr,
            clip_norm=clip_norm,
            context=context,
        )
        if uses_fixed_shapes(step.elbo) and n < batch_size:
            raise ValueError(
                f'`elbo="jit"` drops incomplete batches, but `batch_size`={batch_size} exceeds '
                f"the {n} examples. Use a smaller `batch_size`."
            )
        metrics = EpochMetrics(
            model, model_fn, guide_fn, inputs.held, inputs.whole, step.elbo, device
        )
        metrics.minibatched = len(inputs.batches) > 1
        if inputs.val is not None:
            metrics.check(inputs.val)
        beta = terms and (beta_schedule is not None or model.beta != 1.0)  # a beta-VAE
        val = ["val_elbo", "val_objective", "val_loss"] if inputs.val is not None else []
        monitor = Monitor([*val, "train_elbo", "train_objective", "train_loss"], early_stopping)
        ckpt = Checkpointer(checkpoint_dir, module, inputs.batches, step=step, monitor=monitor)
        history: list[HistoryRow] = []
        start = 1
        if resume_from is not None:
            back = resume(resume_from, module, device=device, batches=inputs.batches)
            history, start = back.history, back.start
            monitor.load(back.best)
            if back.optimizer is not None:
                step.load_state_dict(back.optimizer)
        bar = Progress(progress, total=epochs, initial=start - 1)
        stopped, failure, pos = "completed", None, None
        if resume_from is not None and back.position is not None:
            pos = EpochPosition.from_state(back.position)  # inside an interrupted epoch
        with deferred_interrupts() as interrupts:
            try:
                for epoch in range(start, epochs + 1):
                    t0 = time.perf_counter()
                    if lr_schedule is not None:
                        step.set_lr(scheduled("lr_schedule", lr_schedule, epoch))
                    if beta_schedule is not None:
                        model.beta = scheduled("beta_schedule", beta_schedule, epoch)
                    if hasattr(inputs.batches, "set_epoch"):  # a new shard permutation
                        inputs.batches.set_epoch(epoch)
                    if pos is not None and pos.epoch == epoch:
                        pos.rewind(inputs.batches)
                    else:
                        batch = pos.batch if pos is not None else None
                        pos = EpochPosition.start(epoch, inputs.batches)
                        pos.batch = batch
                    mean = run_epoch(step, inputs, pos, device, ckpt, interrupts)
                    columns = {**metrics.train(), **(metrics.val(inputs.val) if val else {})}
                    values = all_reduce_mean(list(columns.values()))
                    columns = dict(zip(columns, values, strict=True))
                    check_columns(columns, epoch, step.lr, ckpt)
                    row = _row(epoch, mean, columns, metrics, beta)
                    if lr_schedule is not None:
                        row["lr"] = step.lr
                    if beta:
                        row["beta"] = float(model.beta)
                    row["seconds"] = time.perf_counter() - t0
                    run_callbacks(callbacks, epoch, model, row)
                    history.append(row)
                    if monitor.update(epoch, row) and val:
                        ckpt.stage("best", epoch, history)  # written once a step checks it
                    if epoch % checkpoint_every == 0 or epoch == epochs or monitor.stop:
                        ckpt.stage("last", epoch, history)
                    bar.update(row)
                    if monitor.stop:
                        stopped = "early_stopping"
                        break
                    interrupts.check()
                commit_checked(ckpt, step, pos)  # the last update's state: checked, then written
            except KeyboardInterrupt:
                stopped = "interrupted"
                done = history[-1]["epoch"] if history else start - 1
                forced = interrupts.forced
                try:
                    saved = save_interrupted(
                        ckpt,
                        step,
                        pos,
                        history,
                        done,
                        alone=not (forced or context.is_distributed),
                    )
                except CheckpointWriteError as err:
                    failure, saved = err, f"the checkpoint could not be written: {err}"
                if is_main_process():
                    again = (
                        f"; resume with fit(..., resume_from={str(ckpt.last)!r})"
                        if ckpt.last
                        else ""
                    )
                    print(
                        f"pvae.fit interrupted after {done} epochs; {saved}{again}",
                        file=sys.stderr,
                    )
            except CheckpointWriteError as err:
                failure = err
            finally:
                bar.close()
    if module is not None:
        params = {k: v.detach().clone() for k, v in module.state_dict().items()}
    else:
        params = {k: pyro.param(k).detach().clone() for k in step.params}
    best = int(monitor.best_epoch)
    if failure is not None:
        stopped = "checkpoint_failed" if stopped == "completed" else stopped
    result = FitResult(
        history, best, params, stopped, ckpt.last, metrics.per_example, metrics.note
    )
    if failure is not None:
        done = history[-1]["epoch"] if history else start - 1
        failure.result = result
        failure.advice = (
            f"Training stopped after {done} completed epochs; nothing is lost: the "
            "exception's `.result` is the FitResult so far, and the model (or Pyro's param "
            f"store) holds its parameters. {ckpt.where()} Free some space or pass another "
            "`checkpoint_dir`, then resume from the last good checkpoint."
        )
        raise failure
    return result
