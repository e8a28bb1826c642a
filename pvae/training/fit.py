r"""Training: :func:`fit`, one SVI loop for pvae's models and for any Pyro model/guide pair.

Each step draws a minibatch, estimates the negative ELBO and its gradient, and updates
the parameters of the model :math:`p_\theta(x, z)` and the guide :math:`q_\phi(z \mid x)`:

.. math::

    \mathrm{ELBO}(\theta, \phi) = \mathbb{E}_{q_\phi(z \mid x)}
        \left[\log p_\theta(x \mid z)\right]
        - \mathrm{KL}\left(q_\phi(z \mid x) \,\|\, p(z)\right) \le \log p_\theta(x).

The loop is split into small private pieces (:func:`_collect_params`,
:func:`_average_gradients`, :func:`_is_main_process`) so that a data-parallel version
can all-reduce gradients by parameter name and let only rank 0 write, without a rewrite.

References
----------
1. Kingma, D. P. and Welling, M. (2014). Auto-Encoding Variational Bayes. ICLR.
2. Hoffman, M. D., Blei, D. M., Wang, C. and Paisley, J. (2013). Stochastic Variational
   Inference. JMLR 14.
"""

from __future__ import annotations

import inspect
import math
import random
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyro
import pyro.poutine as poutine
import torch
from pyro.infer import ELBO, JitTrace_ELBO, Trace_ELBO, TraceMeanField_ELBO
from pyro.optim import PyroOptim

from pvae.data import TensorBatches, as_batches
from pvae.training.checkpoint import (
    _load_model_state,
    _model_state,
    _param_store_state,
    _restore_param_store,
    read_state,
    write_state,
)
from pvae.training.distributed import (
    all_reduce_mean,
    all_reduce_sum,
    average_gradients,
    init_distributed,
    shard_batches,
)

__all__ = ["FitResult", "TrainingDivergedError", "fit"]

_ELBOS = {"trace": Trace_ELBO, "meanfield": TraceMeanField_ELBO, "jit": JitTrace_ELBO}


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    Parameters
    ----------
    history : list of dict
        One row per epoch: ``epoch``, ``train_elbo`` (``train_loss`` for squared-error
        models), ``reconstruction`` and ``kl`` where the model has ``elbo_terms``,
        ``val_elbo`` (``val_loss``), ``val_reconstruction`` and ``val_kl`` with
        ``val_data``, ``lr``/``beta`` when scheduled, ``seconds``, and whatever the callbacks
        add. Nats per example.
    best_epoch : int
        Epoch with the best validation (else training) objective.
    params : dict of str to torch.Tensor
        Final parameters (detached copies): the module's ``state_dict`` for a module,
        else the constrained values of the Pyro param store entries that were trained.
    stopped : str
        ``"completed"``, ``"early_stopping"`` or ``"interrupted"``.
    checkpoint : pathlib.Path or None
        The last checkpoint written (``checkpoint_dir/last.safetensors``), if any.

    Examples
    --------
    >>> res = FitResult([{"epoch": 1, "train_elbo": -3.2}], 1, {}, "completed", None)
    >>> res.history[res.best_epoch - 1]["train_elbo"]
    -3.2
    """

    history: list[dict[str, float]]
    best_epoch: int
    params: dict[str, torch.Tensor]
    stopped: str
    checkpoint: Path | None


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite; raised by :func:`fit` before the bad update.

    A subclass of :class:`FloatingPointError`; the message names the epoch and step.

    Examples
    --------
    >>> issubclass(TrainingDivergedError, FloatingPointError)
    True
    """


# ----------------------------------------------------------------------------- pieces
def _is_main_process() -> bool:
    """True on rank 0 of a ``torch.distributed`` job and in every single-process run."""
    dist = torch.distributed
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def _average_gradients(params: dict[str, torch.Tensor], context: Any = None) -> None:
    """Average gradients across processes, by parameter name (one process: nothing to do)."""
    average_gradients(params.items(), context)


def _collect_params(step: Callable[[], float]) -> tuple[float, dict[str, torch.Tensor]]:
    """Run ``step`` once, recording which param-store entries it touched (in trace order)."""
    with poutine.trace(param_only=True) as capture:
        loss = step()
    params = {name: site["value"].unconstrained() for name, site in capture.trace.nodes.items()}
    return loss, params


class _Optimizer:
    """One interface over a torch optimizer and a ``pyro.optim.PyroOptim``."""

    def __init__(self, spec: Any, params: dict[str, torch.Tensor], lr: float) -> None:
        self.params = params
        self._lr: float | None = None  # a scheduled rate for PyroOptim's per-parameter optims
        self.pyro = spec if isinstance(spec, PyroOptim) else None
        if self.pyro is not None:  # keeps its own learning rate
            self.torch = None
        elif spec is None:
            self.torch = torch.optim.Adam(list(params.values()), lr=lr)
        elif isinstance(spec, type) and issubclass(spec, torch.optim.Optimizer):
            self.torch = spec(list(params.values()), lr=lr)
        else:  # a factory: keeps its own learning rate
            self.torch = spec(list(params.values()))

    def step(self) -> None:
        if self.torch is not None:
            self.torch.step()
            self.torch.zero_grad(set_to_none=True)
        else:
            params = list(self.params.values())
            if self._lr is not None and len(self.pyro.optim_objs) < len(params):
                self._build_pyro_optims(params)
            self.pyro(params)
            for p in params:
                p.grad = None

    def _build_pyro_optims(self, params: list[torch.Tensor]) -> None:
        """Have PyroOptim build its optims for new parameters, then give them the scheduled rate.

        PyroOptim builds (and restores) an optim the first time it sees a parameter and
        steps it at once; called without gradients, torch optimizers skip the step.
        """
        new = [p for p in params if p not in self.pyro.optim_objs]
        grads = [p.grad for p in new]
        for p in new:
            p.grad = None
        self.pyro(new)
        for p, grad in zip(new, grads, strict=True):
            p.grad = grad
        self.set_lr(self._lr)

    def add(self, new: dict[str, torch.Tensor]) -> None:
        """Train parameters created after the first step, at the current learning rate."""
        self.params.update(new)
        if self.torch is not None:
            lr = self.torch.param_groups[-1]["lr"]
            self.torch.add_param_group({"params": list(new.values()), "lr": lr})

    def set_lr(self, lr: float) -> None:
        if self.torch is not None:
            groups = [self.torch]
        else:
            self._lr = lr
            groups = self.pyro.optim_objs.values()
        for opt in groups:
            for group in opt.param_groups:
                group["lr"] = lr

    def state_dict(self) -> dict[str, Any]:
        state = {"names": list(self.params), "shapes": self._shapes()}
        if self.torch is not None:
            state["groups"] = [len(g["params"]) for g in self.torch.param_groups]
            return {**state, "torch": self.torch.state_dict()}
        return {**state, "pyro": self.pyro.get_state()}

    def _shapes(self) -> list[list[int]]:
        return [list(p.shape) for p in self.params.values()]

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if [list(s) for s in state["shapes"]] != self._shapes():
            raise ValueError(
                f"`resume_from` was written for {len(state['shapes'])} parameters of shapes "
                f"{state['shapes'][:3]}..., but this model has {len(self.params)} of shapes "
                f"{self._shapes()[:3]}...; resume with the same model, guide and `elbo`."
            )
        if self.torch is not None:
            self.torch.load_state_dict(state["torch"])
        else:
            self.pyro.set_state(state["pyro"])


def _resumed_optimizer(
    spec: Any, state: dict[str, Any], touched: dict[str, torch.Tensor], lr: float
) -> _Optimizer:
    """The optimizer of a checkpoint, over its parameters in its order and groups.

    Parameters created mid-training sit in later groups and need not be touched by the
    first resumed step, so the first step's trace cannot rebuild the layout on its own.
    """
    names = state.get("names")
    store = dict(pyro.get_param_store().named_parameters())
    if names is None or not set(names) <= set(store):  # an older checkpoint: by trace order
        opt = _Optimizer(spec, touched, lr)
        opt.load_state_dict(state)
        return opt
    groups, start = [], 0
    for size in state.get("groups") or [len(names)]:
        groups.append({k: store[k] for k in names[start : start + size]})
        start += size
    opt = _Optimizer(spec, groups[0], lr)
    for group in groups[1:]:
        opt.add(group)
    opt.load_state_dict(state)
    new = {k: v for k, v in touched.items() if k not in opt.params}
    if new:
        opt.add(new)
    return opt


def _resolve_pair(model: Any, guide: Any) -> tuple[Callable, Callable, torch.nn.Module | None]:
    module = model if isinstance(model, torch.nn.Module) else None
    if guide is not None:
        if not callable(model) or not callable(guide):
            raise ValueError("`model` and `guide` must be callables (Pyro model and guide).")
        return model, guide, module
    if callable(getattr(model, "model", None)) and callable(getattr(model, "guide", None)):
        return model.model, model.guide, module
    raise ValueError(
        f"`model` must have `.model` and `.guide` methods (a pvae model), got "
        f"{type(model).__name__}. For your own Pyro functions pass `guide=`."
    )


def _accepts(fn: Callable, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _num_examples(batches: Any) -> int:
    if isinstance(batches, TensorBatches):
        return batches.num_examples
    return len(batches.dataset)


def _to(batch: Sequence[torch.Tensor], device: Any) -> tuple[torch.Tensor, ...]:
    return tuple(t.to(device) for t in batch)


def _rng_state(batches: Any) -> dict[str, Any]:
    gen = getattr(batches, "generator", None)
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [np_state[0], np_state[1].astype(np.int64), *np_state[2:]],
        "batches": gen.get_state() if isinstance(gen, torch.Generator) else None,
    }


def _set_rng_state(state: dict[str, Any], batches: Any) -> None:
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    if state["batches"] is not None and isinstance(
        getattr(batches, "generator", None), torch.Generator
    ):
        batches.generator.set_state(state["batches"])


def _check_positive(name: str, value: Any, kind: type = int) -> None:
    if not isinstance(value, kind) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"`{name}` must be a positive {kind.__name__}, got {value!r}.")


def _terms_per_example(model: Any, batches: Iterable, device: Any) -> tuple[float, float]:
    """Mean reconstruction and KL (nats per example) of a model with ``elbo_terms``."""
    rec = kl = 0.0
    count = 0
    with torch.no_grad():
        for batch in batches:
            terms = model.elbo_terms(*_to(batch, device))
            rec += terms.reconstruction.sum().item()
            kl += terms.kl.sum().item()
            count += batch[0].shape[0]
    return rec / count, kl / count


def _pyro_loss_per_example(
    estimator: ELBO, model_fn: Callable, guide_fn: Callable, batches: Any, device: Any
) -> float:
    """Pyro loss per example over ``batches`` (plate scaling handled by the caller's fns)."""
    total, count = 0.0, 0
    n = _num_examples(batches)
    scaled = isinstance(model_fn, partial) and "num_examples" in model_fn.keywords
    for batch in batches:
        b = batch[0].shape[0]
        total += estimator.loss(model_fn, guide_fn, *_to(batch, device)) * (b / n if scaled else 1)
        count += b
    return total / count


def _with_size(fn: Callable, size: int) -> Callable:
    """Pass the data-set size to functions that accept ``num_examples`` (plate scaling)."""
    return partial(fn, num_examples=size) if _accepts(fn, "num_examples") else fn


def _make_loss_and_grads(
    model: Any, model_fn: Callable, guide_fn: Callable, elbo: Any, num_particles: int
) -> tuple[Callable[..., float], ELBO | None]:
    """Build the step's ``batch -> loss`` function, which also leaves the gradients."""
    if isinstance(elbo, str) and elbo == "analytic":

        def analytic(*batch: torch.Tensor) -> float:
            loss = None
            for _ in range(num_particles):
                terms = model.elbo_terms(*batch)
                kl = terms.kl if model.beta == 1.0 else model.beta * terms.kl
                particle = (kl - terms.reconstruction).sum()
                loss = particle if loss is None else loss + particle
            if num_particles > 1:
                loss = loss / num_particles
            loss.backward()
            return loss.item()

        return analytic, None
    if isinstance(elbo, ELBO):
        estimator = elbo
    else:
        extra = {"ignore_jit_warnings": True} if elbo == "jit" else {}
        estimator = _ELBOS[elbo](num_particles=num_particles, **extra)

    def pyro_loss_and_grads(*batch: torch.Tensor) -> float:
        return estimator.loss_and_grads(model_fn, guide_fn, *batch)

    return pyro_loss_and_grads, estimator


def _epoch_stats(
    model: Any,
    model_fn: Callable,
    guide_fn: Callable,
    estimator: ELBO | None,
    key: str,
    val_batches: Any,
    held: Any,
    device: Any,
) -> dict[str, float]:
    """Once per epoch, no gradients: ELBO terms on a held training batch and on validation."""
    row = {}
    if key == "elbo" and callable(getattr(model, "elbo_terms", None)):
        row["reconstruction"], row["kl"] = _terms_per_example(model, held, device)
        if val_batches is not None:
            rec, kl = _terms_per_example(model, val_batches, device)
            row["val_reconstruction"], row["val_kl"], row["val_elbo"] = rec, kl, rec - kl
    elif val_batches is not None:
        size = _num_examples(val_batches)
        loss = _pyro_loss_per_example(
            estimator or TraceMeanField_ELBO(),
            _with_size(model_fn, size),
            _with_size(guide_fn, size),
            val_batches,
            device,
        )
        row[f"val_{key}"] = loss if key == "loss" else -loss
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
) -> FitResult:
    r"""Fit a model/guide pair by stochastic variational inference on minibatches.

    Parameters
    ----------
    model : object or callable
        A pvae model (anything with ``.model`` and ``.guide`` methods), or a Pyro model
        function when ``guide`` is given.
    data : tensor, ndarray, tuple of them, Dataset or DataLoader
        Training data; each batch tuple is passed as ``model(*batch)``. Batches are
        reshuffled every epoch (a DataLoader keeps its own order), so a guide with
        parameters per data point must receive the example indices in the tuple, e.g.
        ``(x, torch.arange(len(x)))``.
    guide : callable, optional
        The Pyro guide, for a custom model function.
    epochs : int
        Total number of passes over the data (also when resuming).
    batch_size : int
        Examples per step.
    lr : float
        Learning rate (Adam by default).
    elbo : {"trace", "meanfield", "jit", "analytic"} or pyro.infer.ELBO
        ``"trace"``: :class:`~pyro.infer.Trace_ELBO`; ``"meanfield"``:
        :class:`~pyro.infer.TraceMeanField_ELBO` (analytic KL where available); ``"jit"``:
        :class:`~pyro.infer.JitTrace_ELBO` (drops the last incomplete batch: a traced
        graph has fixed shapes); ``"analytic"``: pvae's fast path for models with
        ``elbo_terms`` (one reparameterised sample and the analytic KL, as
        TraceMeanField_ELBO, without Pyro's tracing; plain ``torch.optim``).
    num_particles : int
        Samples per ELBO estimate.
    optimizer : torch.optim.Optimizer subclass, callable, or pyro.optim.PyroOptim, optional
        Default ``torch.optim.Adam`` (one optimizer over all parameters). A class is built
        with ``lr``; a callable receives the parameter list; a ``PyroOptim`` instance
        (``pyro.optim.Adam({"lr": 1e-3})``) is used as Pyro's SVI would. The last two keep
        their own learning rate (``lr`` is ignored; ``lr_schedule`` still applies).
    clip_norm : float, optional
        Clip the global gradient norm before each update.
    lr_schedule : callable, optional
        ``epoch -> learning rate`` (epochs count from 1), applied at the start of each epoch.
    beta_schedule : callable, optional
        ``epoch -> beta`` for KL annealing; sets ``model.beta`` at the start of each epoch.
    val_data : data, optional
        Held-out data, evaluated at the end of each epoch.
    early_stopping : int, optional
        Patience: stop after this many epochs without a better validation ELBO (training
        ELBO without ``val_data``).
    seed : int, optional
        Seeds Pyro, torch, NumPy and the batch order: same seed, same history on CPU.
    device : str or torch.device, optional
        Moves a module model and tensor data there.
    progress : bool, optional
        A tqdm bar (epoch, ELBO, validation ELBO); default on only when stderr is a terminal.
    checkpoint_dir : str or path, optional
        Writes ``last.safetensors`` every ``checkpoint_every`` epochs, at the end and on
        Ctrl-C, and ``best.safetensors`` when the monitored ELBO improves.
    checkpoint_every : int
        Epochs between checkpoints.
    resume_from : str or path, optional
        A fit checkpoint; training continues after its epoch with the same history.
    callbacks : sequence of callables
        ``cb(epoch, model, row) -> dict | None`` after each epoch; a returned dict is merged
        into that epoch's history row.

    Returns
    -------
    FitResult

    Raises
    ------
    ValueError
        For invalid arguments.
    TrainingDivergedError
        When a loss is NaN or infinite; names the epoch and step, before the bad update.

    Notes
    -----
    **Minibatches and global latents.** A per-example (local) latent needs no scaling. For
    a global latent, the likelihood of a batch of :math:`B` examples must be scaled by
    :math:`N/B` for the ELBO estimate to be unbiased. If the model function (and the
    guide) accepts a keyword ``num_examples``, fit passes the full data size :math:`N`;
    write ``with pyro.plate("data", num_examples, subsample_size=len(x))`` and Pyro
    scales the plate. The history is then the full-data ELBO divided by :math:`N`.

    **History.** ``train_elbo`` is the mean of the step estimates over the epoch (with
    ``beta != 1`` the :math:`\beta`-weighted objective); ``reconstruction`` and ``kl`` are
    computed once per epoch without gradients on the first ``batch_size`` training
    examples, and ``val_elbo``, ``val_reconstruction``, ``val_kl`` on ``val_data``.

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
    _check_positive("epochs", epochs)
    _check_positive("batch_size", batch_size)
    _check_positive("num_particles", num_particles)
    _check_positive("checkpoint_every", checkpoint_every)
    if not isinstance(lr, (int, float)) or lr <= 0:
        raise ValueError(f"`lr` must be a positive number, got {lr!r}.")
    if clip_norm is not None and (not isinstance(clip_norm, (int, float)) or clip_norm <= 0):
        raise ValueError(f"`clip_norm` must be a positive number or None, got {clip_norm!r}.")
    if early_stopping is not None:
        _check_positive("early_stopping", early_stopping)
    model_fn, guide_fn, module = _resolve_pair(model, guide)
    key = "loss" if getattr(model, "objective", "elbo") == "squared_error" else "elbo"
    sign = 1.0 if key == "loss" else -1.0
    has_terms = key == "elbo" and callable(getattr(model, "elbo_terms", None))
    analytic = isinstance(elbo, str) and elbo == "analytic"
    if analytic and (module is None or not callable(getattr(model, "elbo_terms", None))):
        raise ValueError(
            '`elbo="analytic"` needs a torch.nn.Module model with an `elbo_terms` method '
            f'(pvae\'s VAE), got {type(model).__name__}. Use `elbo="meanfield"` instead.'
        )
    if not analytic and not isinstance(elbo, ELBO) and elbo not in _ELBOS:
        raise ValueError(
            '`elbo` must be "trace", "meanfield", "jit", "analytic" or a pyro.infer.ELBO, '
            f"got {elbo!r}."
        )
    if beta_schedule is not None and not hasattr(model, "beta"):
        raise ValueError(
            "`beta_schedule` sets `model.beta`, but this model has no `beta` attribute."
        )
    context = init_distributed(device if device is not None else "cpu")  # torchrun or no-op
    if context.is_distributed and device is not None:
        device = context.device  # "cuda" means this rank's GPU
    if seed is not None:
        pyro.set_rng_seed(seed + context.rank)  # ranks draw independent Monte Carlo noise
    data_seed = seed if seed is not None else int(torch.randint(2**31 - 1, ()).item())
    batches = as_batches(data, batch_size=batch_size, shuffle=True, seed=data_seed)
    if device is not None:
        device = torch.device(device)
        if module is not None:
            module.to(device)
        if isinstance(batches, TensorBatches):
            tensors = [t.to(device) for t in batches.tensors]
            batches = TensorBatches(tensors, batch_size, shuffle=True, seed=data_seed)
    batches = shard_batches(batches, context)  # this rank's shard (unchanged in 1 process)
    move = device is not None and not isinstance(batches, TensorBatches)
    n = _num_examples(batches)
    drop_last = type(elbo).__name__.startswith("Jit") or elbo == "jit"
    if drop_last and n < batch_size:
        raise ValueError(
            f'`elbo="jit"` drops incomplete batches, but `batch_size`={batch_size} exceeds '
            f"the {n} examples. Use a smaller `batch_size`."
        )
    scaled = _accepts(model_fn, "num_examples")

    loss_and_grads, estimator = _make_loss_and_grads(
        model, _with_size(model_fn, n), _with_size(guide_fn, n), elbo, num_particles
    )
    val_batches = held = None
    if val_data is not None:
        val_batches = shard_batches(as_batches(val_data, batch_size=batch_size), context)
    if has_terms:
        held = [next(iter(as_batches(data, batch_size=batch_size)))]

    history: list[dict[str, float]] = []
    start, best_epoch, bad = 1, 0, 0
    best_value = -math.inf if key == "elbo" else math.inf
    pending = None
    if resume_from is not None:
        kind, state = read_state(resume_from)
        if kind != "fit":
            raise ValueError(f"`resume_from` must be a fit checkpoint, got a {kind!r} file.")
        if state["model"] is not None:
            if module is None:
                raise ValueError("`resume_from` holds a module model; pass that model.")
            _load_model_state(state["model"], module)
        _restore_param_store(state["param_store"], device)
        history = list(state["history"])
        start = state["epoch"] + 1
        best_epoch, best_value, bad = state["best"]
        pending = state["optimizer"]
        _set_rng_state(state["rng"], batches)

    opt: _Optimizer | None = None
    store = pyro.get_param_store()
    known: set[str] = set()  # param-store names seen since the first step
    n_store = -1
    if analytic:
        opt = _Optimizer(optimizer, dict(module.named_parameters()), lr)
        for p in opt.params.values():
            p.grad = None
        if pending is not None:
            opt.load_state_dict(pending)

    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    last_ckpt: Path | None = None

    def save_checkpoint(name: str, epoch: int, partial_epoch: bool) -> Path | None:
        if ckpt_dir is None or not _is_main_process():
            return None
        state = {
            "epoch": epoch,
            "partial": partial_epoch,
            "history": history,
            "model": _model_state(module) if module is not None else None,
            "param_store": _param_store_state(
                exclude=list(module.parameters()) if module is not None else ()
            ),
            "optimizer": opt.state_dict() if opt is not None else pending,
            "rng": _rng_state(batches),
            "best": [best_epoch, best_value, bad],
        }
        return write_state(ckpt_dir / f"{name}.safetensors", state, kind="fit")

    show = (sys.stderr.isatty() if progress is None else progress) and _is_main_process()
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, initial=start - 1, desc="fit", unit="epoch")
    current_lr = lr
    stopped = "completed"
    epoch = start - 1
    try:
        for epoch in range(start, epochs + 1):
            t0 = time.perf_counter()
            if lr_schedule is not None:
                current_lr = float(lr_schedule(epoch))
                if opt is not None:
                    opt.set_lr(current_lr)
            if beta_schedule is not None:
                model.beta = float(beta_schedule(epoch))
            if hasattr(batches, "set_epoch"):  # a new shard permutation, also after resume
                batches.set_epoch(epoch)
            total, count, num_steps = 0.0, 0, len(batches)
            for step, batch in enumerate(batches, 1):
                if move:
                    batch = _to(batch, device)
                b = batch[0].shape[0]
                if drop_last and b != batch_size:
                    continue
                if opt is None:  # first Pyro step: find the parameters it touches
                    with warnings.catch_warnings():  # torch 2.13 deprecates jit.trace
                        warnings.filterwarnings("ignore", "`torch.jit.trace` is deprecated")
                        loss, params = _collect_params(lambda: loss_and_grads(*batch))  # noqa: B023
                    if not params:  # an ELBO that hides its param sites: take them all
                        owner = module if module is not None else store
                        params = dict(owner.named_parameters())
                    if pending is None:
                        opt = _Optimizer(optimizer, params, current_lr)
                    else:
                        opt = _resumed_optimizer(optimizer, pending, params, current_lr)
                    if lr_schedule is not None:
                        opt.set_lr(current_lr)
                    known, n_store = set(store.keys()), len(store)
                else:
                    loss = loss_and_grads(*batch)
                if not math.isfinite(loss):
                    where = (
                        f"The last good checkpoint is {last_ckpt}."
                        if last_ckpt is not None
                        else "No checkpoint was written; pass `checkpoint_dir` to keep one."
                    )
                    raise TrainingDivergedError(
                        f"the loss became {loss} at epoch {epoch}, step {step} of {num_steps}; "
                        "the parameters were not updated. Lower `lr` (now "
                        f"{current_lr:g}), set `clip_norm` (e.g. 10.0), or check the data for "
                        f"extreme values. {where}"
                    )
                if not analytic and len(store) != n_store:  # a param created by this step
                    new = {k: v for k, v in store.named_parameters() if k not in known}
                    known.update(new)
                    n_store = len(store)
                    if new:
                        opt.add(new)
                _average_gradients(opt.params, context)
                if clip_norm is not None:
                    torch.nn.utils.clip_grad_norm_(list(opt.params.values()), clip_norm)
                opt.step()
                total += loss * b / n if scaled else loss
                count += b
            total, count = all_reduce_sum([total, count])  # over all ranks' shards
            row: dict[str, float] = {"epoch": epoch, f"train_{key}": sign * total / count}
            if has_terms or val_batches is not None:
                row.update(
                    _epoch_stats(
                        model, model_fn, guide_fn, estimator, key, val_batches, held, device
                    )
                )
            shared = [k for k in ("reconstruction", "kl", f"val_{key}") if k in row]
            row.update(zip(shared, all_reduce_mean([row[k] for k in shared]), strict=True))
            if lr_schedule is not None:
                row["lr"] = current_lr
            if beta_schedule is not None:
                row["beta"] = float(model.beta)
            row["seconds"] = time.perf_counter() - t0
            for callback in callbacks:
                extra_row = callback(epoch, model, row)
                if extra_row:
                    row.update(extra_row)
            history.append(row)
            value = row[f"val_{key}" if val_batches is not None else f"train_{key}"]
            if value > best_value if key == "elbo" else value < best_value:
                best_epoch, best_value, bad = epoch, value, 0
                if val_batches is not None:
                    save_checkpoint("best", epoch, False)
            else:
                bad += 1
            stop = early_stopping is not None and bad >= early_stopping
            if epoch % checkpoint_every == 0 or epoch == epochs or stop:
                last_ckpt = save_checkpoint("last", epoch, False) or last_ckpt
            if bar is not None:
                post = {key: f"{row[f'train_{key}']:.4g}"}
                if f"val_{key}" in row:
                    post["val"] = f"{row[f'val_{key}']:.4g}"
                bar.set_postfix(post, refresh=False)
                bar.update()
            if stop:
                stopped = "early_stopping"
                break
    except KeyboardInterrupt:
        stopped = "interrupted"
        done = history[-1]["epoch"] if history else start - 1
        last_ckpt = save_checkpoint("last", done, True) or last_ckpt
        if _is_main_process() and last_ckpt is not None:
            print(f"pvae.fit interrupted; checkpoint saved to {last_ckpt}", file=sys.stderr)
    finally:
        if bar is not None:
            bar.close()
    if module is not None:
        params = {k: v.detach().clone() for k, v in module.state_dict().items()}
    else:
        names = list(opt.params) if opt is not None else []
        params = {k: pyro.param(k).detach().clone() for k in names}
    return FitResult(history, int(best_epoch), params, stopped, last_ckpt)
