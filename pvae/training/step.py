r"""The step object: one SVI update at a time, checked, as NumPyro's ``SVI.init/update``.

:class:`SVIStep` holds an estimator (a :class:`pyro.infer.ELBO`), an optimizer and the
parameters it trains. ``init(*data)`` creates the parameters (one run of the guide and the
model, which leaves the random state as it found it) and builds the optimizer;
``update(*data)`` takes one step:

1. the loss and its gradients (``elbo.loss_and_grads``);
2. a finite loss, or :class:`TrainingDivergedError`;
3. gradients averaged over the ranks of a ``torchrun`` job (by parameter name);
4. finite gradients, or :class:`TrainingDivergedError` naming the parameter;
5. the global gradient norm clipped to ``clip_norm``;
6. ``on_checked()``, if set (the state is now known good: fit writes checkpoints here);
7. the optimizer step, and the gradients cleared.

A :class:`TrainingDivergedError` is raised *before* the update, after clearing every
gradient, so the parameters hold their last good values and a retry (with a lower ``lr``)
starts clean. :func:`pvae.fit` is a loop over :meth:`SVIStep.update`.

References
----------
1. Hoffman, M. D., Blei, D. M., Wang, C. and Paisley, J. (2013). Stochastic Variational
   Inference. JMLR 14.
2. Pascanu, R., Mikolov, T. and Bengio, Y. (2013). On the difficulty of training recurrent
   neural networks (gradient-norm clipping). ICML.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import pyro
import torch
from pyro import poutine
from pyro.infer import ELBO

from pvae._checks import learning_rate, optional, positive_float, positive_int
from pvae.models.protocol import HasELBOTerms, model_and_guide
from pvae.training.distributed import DistributedContext, average_gradients, broadcast_parameters
from pvae.training.elbos import AuxiliaryLossELBO, make_elbo, uses_fixed_shapes
from pvae.training.gradients import clip_to, total_norm
from pvae.training.inputs import first_run
from pvae.training.optim import OptimizerAdapter, check_optimizer, resumed_optimizer
from pvae.training.rng import forked_rng

__all__ = ["SVIStep", "TrainingDivergedError", "divergence_message"]


class TrainingDivergedError(FloatingPointError):
    """The loss or a gradient became NaN or infinite; raised before the bad update.

    A subclass of :class:`FloatingPointError`. The message says where (the epoch and step
    under :func:`pvae.fit`) and what to try; the gradients are cleared when it is raised.

    Attributes
    ----------
    loss : float
        The loss of the step.
    parameter : str or None
        The first parameter with a non-finite gradient (``None``: the loss itself).
    step : int or None
        The step of the :class:`SVIStep` (1 for its first update).

    Examples
    --------
    >>> issubclass(TrainingDivergedError, FloatingPointError)
    True
    """

    def __init__(
        self,
        message: str,
        *,
        loss: float = math.nan,
        parameter: str | None = None,
        step: int | None = None,
    ) -> None:
        super().__init__(message)
        self.loss, self.parameter, self.step = loss, parameter, step


def divergence_message(loss: float, parameter: str | None, where: str, lr: float | None) -> str:
    """The message of a :class:`TrainingDivergedError`: what, where, and what to try.

    Examples
    --------
    >>> divergence_message(float("nan"), None, "step 3", 0.1)[:34]
    'the loss became nan at step 3; the'
    """
    rate = "the learning rate" if lr is None else f"`lr` (now {lr:g})"
    if parameter is None:
        what = f"the loss became {loss} at {where}"
        fix = f"Lower {rate}, set `clip_norm` (e.g. 10.0), or check the data for extreme values."
    else:
        what = (
            f"the gradient of `{parameter}` became non-finite at {where}, while the loss "
            f"was finite ({loss:.6g})"
        )
        fix = (
            f"Lower {rate}, or look for an operation with an infinite derivative at the "
            "current values (sqrt or log at 0, a fractional power of 0)."
        )
    return f"{what}; the parameters were not updated and their gradients were cleared. {fix}"


class SVIStep:
    r"""One checked SVI update at a time, for a pvae model or a Pyro model/guide pair.

    Parameters
    ----------
    model : object or callable
        A pvae model (with ``.model`` and ``.guide`` methods), or a Pyro model function
        when ``guide`` is given.
    guide : callable, optional
        The Pyro guide of a model function.
    elbo : {"trace", "meanfield", "jit", "analytic", "enum", "iwae"} or pyro.infer.ELBO
        The estimator (:func:`~pvae.training.elbos.make_elbo`); ``"analytic"`` is
        :class:`~pvae.training.elbos.AnalyticELBO` and needs a pvae model with
        ``elbo_terms``. A model's ``auxiliary_loss(*data)`` is added (``AuxiliaryLossELBO``).
    num_particles : int
        Particles of a named estimator.
    optimizer : None, torch.optim.Optimizer subclass, callable, or pyro.optim.PyroOptim
        See :class:`~pvae.training.optim.OptimizerAdapter`; default one ``torch.optim.Adam``.
    lr : float
        Learning rate (positive, finite) of the default or a class-built optimizer.
    clip_norm : float, optional
        Clip the global gradient norm to this value before each update.
    context : DistributedContext, optional
        Average gradients over the ranks of this ``torchrun`` job (default: the current
        process group, if any).

    Attributes
    ----------
    elbo : pyro.infer.ELBO
        The estimator.
    optimizer : OptimizerAdapter or None
        Built by :meth:`init`.
    num_steps : int
        Updates taken.
    grad_norm : float or None
        The global gradient norm of the last update, before clipping.

    Examples
    --------
    A Normal mean by maximum likelihood, with plain gradient descent:

    >>> import pyro.distributions as dist
    >>> def model(x):
    ...     loc = pyro.param("loc", torch.tensor(0.0))
    ...     with pyro.plate("data", len(x)):
    ...         pyro.sample("x", dist.Normal(loc, 1.0), obs=x)
    >>> step = SVIStep(model, lambda x: None, optimizer=torch.optim.SGD, lr=0.1)
    >>> x = torch.tensor([1.0, 3.0])
    >>> sorted(step.init(x))
    ['loc']
    >>> loss = step.update(x)        # the gradient of the loss in loc is -(1 + 3) = -4
    >>> round(pyro.param("loc").item(), 6), step.grad_norm
    (0.4, 4.0)
    >>> losses = step.run(100, x)
    >>> round(pyro.param("loc").item(), 4)
    2.0
    """

    def __init__(
        self,
        model: Any,
        guide: Callable | None = None,
        *,
        elbo: str | ELBO = "trace",
        num_particles: int = 1,
        optimizer: Any = None,
        lr: float = 1e-3,
        clip_norm: float | None = None,
        context: DistributedContext | None = None,
    ) -> None:
        self.model_fn, self.guide_fn = model_and_guide(model, guide)
        self.module = model if isinstance(model, torch.nn.Module) else None
        pvae_model = guide is None and self.module is not None and isinstance(model, HasELBOTerms)
        if isinstance(elbo, str) and elbo == "analytic" and not pvae_model:
            raise ValueError(
                '`elbo="analytic"` needs a torch.nn.Module model with an `elbo_terms` method '
                f'(pvae\'s VAE), got {type(model).__name__}. Use `elbo="meanfield"` instead.'
            )
        self.elbo = make_elbo(elbo, num_particles)
        extra = getattr(model, "auxiliary_loss", None) if guide is None else None
        self.elbo = AuxiliaryLossELBO(self.elbo, extra) if callable(extra) else self.elbo
        self._jit = uses_fixed_shapes(self.elbo)
        self._spec = check_optimizer(optimizer)
        self._lr = learning_rate(lr)
        self._lr_set = False  # set_lr was called: every optimizer follows it
        self.clip_norm = optional(positive_float, "clip_norm", clip_norm, example=10.0)
        self.context = context
        self.optimizer: OptimizerAdapter | None = None
        self.num_steps = 0
        self.grad_norm: float | None = None
        self._pending: dict[str, Any] | None = None
        self._known: set[str] = set()
        self._n_store = -1
        self._loss = math.nan
        #: Called by :meth:`update` once the loss and gradients passed their checks, before
        #: the parameters change (:func:`pvae.fit` writes its staged checkpoints there).
        self.on_checked: Callable[[], Any] | None = None

    # ------------------------------------------------------------------------- state
    @property
    def params(self) -> dict[str, torch.Tensor]:
        """The trained parameters (unconstrained leaf tensors), by name; empty before init."""
        return dict(self.optimizer.params) if self.optimizer is not None else {}

    @property
    def lr(self) -> float | None:
        """The learning rate; ``None`` for an optimizer that keeps its own, until set."""
        own = self._spec is not None and not isinstance(self._spec, type)
        return None if own and not self._lr_set else self._lr

    def set_lr(self, lr: float) -> None:
        """Use learning rate ``lr`` from the next update on (also for a ``PyroOptim``)."""
        self._lr = learning_rate(lr)
        self._lr_set = True
        if self.optimizer is not None:
            self.optimizer.set_lr(self._lr)

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state (by parameter name) and the step count, for checkpoints."""
        if self.optimizer is None:
            return dict(self._pending or {}, num_steps=self.num_steps)
        return {**self.optimizer.state_dict(), "num_steps": self.num_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; before :meth:`init` it is applied there."""
        state = dict(state)
        self.num_steps = int(state.pop("num_steps", 0))
        if self.optimizer is None:
            self._pending = state
        else:
            self.optimizer.load_state_dict(state)

    # ------------------------------------------------------------------------- steps
    def init(self, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        """Create the parameters and build the optimizer; returns the parameters by name.

        Runs the guide and the model replayed on it once, without gradients, recording the
        parameters they touch; the random generators are left as they were, so the first
        :meth:`update` draws what it would have drawn without this call. Under ``torchrun``
        rank 0's values are copied to every rank. Called by the first :meth:`update`.
        """
        if self.optimizer is not None:
            return self.params
        store = pyro.get_param_store()
        with forked_rng(), torch.no_grad(), poutine.trace(param_only=True) as capture:
            first_run(self.guide_fn, self.model_fn, args, kwargs)
        params = {n: site["value"].unconstrained() for n, site in capture.trace.nodes.items()}
        if not params:  # parameters Pyro does not see: take the module's, or the store's
            owner = self.module if self.module is not None else store
            params = dict(owner.named_parameters())
        for p in params.values():
            p.grad = None
        broadcast_parameters(params.items(), self.context)  # identical replicas from step 1
        if self._pending is None:
            self.optimizer = OptimizerAdapter(self._spec, params, self._lr)
        else:
            self.optimizer = resumed_optimizer(self._spec, self._pending, params, self._lr)
            self._pending = None
        if self._lr_set:
            self.optimizer.set_lr(self._lr)
        self._known, self._n_store = set(store.keys()), len(store)
        return self.params

    def update(self, *args: Any, **kwargs: Any) -> float:
        """One checked step on the data ``args``; returns the loss (Pyro's sign: -ELBO).

        Raises
        ------
        TrainingDivergedError
            If the loss or a gradient is NaN or infinite; nothing is updated and every
            gradient is cleared.
        """
        self._checked_gradients(*args, **kwargs)
        if self.on_checked is not None:  # e.g. write the checkpoint of the checked state
            try:
                self.on_checked()
            except BaseException:
                for p in self.optimizer.params.values():
                    p.grad = None
                raise
        self.optimizer.step()
        self.num_steps += 1
        return self._loss

    def check(self, *args: Any, **kwargs: Any) -> float:
        """The checks of :meth:`update` at the current parameters, without the update.

        Computes the loss and its gradients on ``args`` (leaving every random generator as
        it was), raises :class:`TrainingDivergedError` as :meth:`update` would, and clears
        the gradients. :func:`pvae.fit` calls it before writing a checkpoint of a state no
        step has checked yet (the parameters after the last update).

        Examples
        --------
        >>> def model():
        ...     pyro.factor("f", -(pyro.param("w", torch.tensor(3.0)) ** 2))
        >>> step = SVIStep(model, lambda: None, optimizer=torch.optim.SGD, lr=0.1)
        >>> step.check(), step.num_steps, pyro.param("w").item()
        (9.0, 0, 3.0)
        """
        norm = self.grad_norm  # the last update's, not the check's
        with forked_rng():
            self._checked_gradients(*args, **kwargs)
        for p in self.optimizer.params.values():
            p.grad = None
        self.grad_norm = norm
        return self._loss

    def _checked_gradients(self, *args: Any, **kwargs: Any) -> None:
        """Loss and gradients, averaged over ranks, checked finite and clipped."""
        if self.optimizer is None:
            self.init(*args, **kwargs)
        if self._jit:
            with warnings.catch_warnings():  # torch 2.13 deprecates torch.jit.trace
                warnings.filterwarnings("ignore", "`torch.jit.trace` is deprecated")
                loss = self.elbo.loss_and_grads(self.model_fn, self.guide_fn, *args, **kwargs)
        else:
            loss = self.elbo.loss_and_grads(self.model_fn, self.guide_fn, *args, **kwargs)
        loss = float(loss)
        self._add_new_params()
        if not math.isfinite(loss):
            self._diverged(loss, None)
        params = self.optimizer.params
        average_gradients(params.items(), self.context)
        grads = [p.grad for p in params.values() if p.grad is not None]
        if grads:
            total = total_norm(grads)
            if not torch.isfinite(total):
                bad = [n for n, p in params.items() if p.grad is not None]
                bad = [n for n in bad if not torch.isfinite(params[n].grad).all()]
                self._diverged(loss, bad[0] if bad else "the global gradient norm")
            self.grad_norm = float(total)
            if self.clip_norm is not None:
                clip_to([p for p in params.values() if p.grad is not None], self.clip_norm, total)
        self._loss = loss

    def run(self, num_steps: int, *args: Any, **kwargs: Any) -> list[float]:
        """``num_steps`` updates on the same data; returns their losses.

        Examples
        --------
        >>> import pyro.distributions as dist
        >>> def model():
        ...     pyro.factor("f", -(pyro.param("w", torch.tensor(3.0)) ** 2))
        >>> losses = SVIStep(model, lambda: None, optimizer=torch.optim.SGD, lr=0.1).run(200)
        >>> round(losses[0], 3), round(abs(pyro.param("w").item()), 3)
        (9.0, 0.0)
        """
        return [self.update(*args, **kwargs) for _ in range(positive_int("num_steps", num_steps))]

    def evaluate_loss(self, *args: Any, **kwargs: Any) -> float:
        """The estimator's loss on ``args`` without gradients or an update."""
        with torch.no_grad():
            return float(self.elbo.loss(self.model_fn, self.guide_fn, *args, **kwargs))

    # ------------------------------------------------------------------------- pieces
    def _add_new_params(self) -> None:
        """Train parameters first created by this step, at the current learning rate."""
        store = pyro.get_param_store()
        if len(store) == self._n_store:
            return
        new = {k: v for k, v in store.named_parameters() if k not in self._known}
        self._known.update(new)
        self._n_store = len(store)
        if new:
            self.optimizer.add(new)

    def _diverged(self, loss: float, parameter: str | None) -> None:
        """Clear every gradient, then raise :class:`TrainingDivergedError`."""
        store = (p for _, p in pyro.get_param_store().named_parameters())
        owners = [self.optimizer.params.values(), store]
        if self.module is not None:
            owners.append(self.module.parameters())
        for group in owners:
            for p in group:
                p.grad = None
        step = self.num_steps + 1
        raise TrainingDivergedError(
            divergence_message(loss, parameter, f"step {step}", self.lr),
            loss=loss,
            parameter=parameter,
            step=step,
        )

    def __repr__(self) -> str:
        opt = "Adam" if self._spec is None else getattr(self._spec, "__name__", type(self._spec))
        return (
            f"SVIStep(elbo={type(self.elbo).__name__}, optimizer={opt}, lr={self.lr}, "
            f"clip_norm={self.clip_norm}, num_steps={self.num_steps}, "
            f"params={len(self.params)})"
        )
