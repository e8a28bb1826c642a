r"""The optimizer adapter: a torch optimizer or a ``pyro.optim.PyroOptim`` behind one interface.

:func:`pvae.fit` and :class:`~pvae.training.step.SVIStep` default to **one**
``torch.optim.Adam`` over all parameters (Pyro's ``pyro.optim.Adam`` builds one optimizer
per parameter, which costs time every step), and accept a ``torch.optim`` class, a factory
taking the parameter list, or a ``PyroOptim`` instance. :class:`OptimizerAdapter` gives them
one interface: ``step`` (update, then clear the gradients), ``add`` (parameters created
after the first step), ``set_lr`` (schedules), and ``state_dict``/``load_state_dict``
(checkpoints, by parameter *name*).
"""

from __future__ import annotations

from typing import Any

import pyro
import torch
from pyro.optim import PyroOptim

__all__ = ["OptimizerAdapter", "check_optimizer", "resumed_optimizer"]


def check_optimizer(spec: Any) -> Any:
    """``spec`` if it is ``None``, a ``PyroOptim``, or callable (a class or a factory).

    Examples
    --------
    >>> check_optimizer(torch.optim.SGD) is torch.optim.SGD
    True
    """
    if spec is None or isinstance(spec, PyroOptim) or callable(spec):
        return spec
    raise ValueError(
        "`optimizer` must be None (Adam), a torch.optim.Optimizer subclass, a callable "
        f"taking the parameter list, or a pyro.optim.PyroOptim, got {spec!r} "
        f"({type(spec).__name__}). Pass e.g. `optimizer=torch.optim.SGD`."
    )


class OptimizerAdapter:
    """One interface over a torch optimizer and a ``pyro.optim.PyroOptim``.

    Parameters
    ----------
    spec : None, torch.optim.Optimizer subclass, callable, or pyro.optim.PyroOptim
        ``None``: one ``torch.optim.Adam`` over all parameters; a class: built with
        ``lr``; a callable: ``spec(list_of_params)`` (keeps its own learning rate); a
        ``PyroOptim``: used as ``pyro.infer.SVI`` uses it (one optimizer per parameter).
    params : dict of str to torch.Tensor
        The parameters (leaf tensors), by name.
    lr : float
        Learning rate of a default or class-built optimizer.

    Examples
    --------
    >>> w = torch.zeros(2, requires_grad=True)
    >>> opt = OptimizerAdapter(torch.optim.SGD, {"w": w}, lr=0.5)
    >>> (w - 1.0).pow(2).sum().backward()   # gradient -2 per entry
    >>> opt.step()
    >>> w.tolist(), w.grad
    ([1.0, 1.0], None)
    """

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
        """Update every parameter from its gradient, then clear the gradients."""
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
        """Set the learning rate of every parameter group (also PyroOptim's optimizers)."""
        if self.torch is not None:
            groups = [self.torch]
        else:
            self._lr = lr
            groups = self.pyro.optim_objs.values()
        for opt in groups:
            for group in opt.param_groups:
                group["lr"] = lr

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state, with the parameters' names, shapes and groups."""
        state = {"names": list(self.params), "shapes": self._shapes()}
        if self.torch is not None:
            state["groups"] = [len(g["params"]) for g in self.torch.param_groups]
            return {**state, "torch": self.torch.state_dict()}
        return {**state, "pyro": self.pyro.get_state()}

    def _shapes(self) -> list[list[int]]:
        return [list(p.shape) for p in self.params.values()]

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; refuses a state written for other parameters."""
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


def resumed_optimizer(
    spec: Any, state: dict[str, Any], touched: dict[str, torch.Tensor], lr: float
) -> OptimizerAdapter:
    """The optimizer of a checkpoint, over its parameters in its order and groups.

    ``touched`` are the parameters the resumed run found; those the checkpoint does not
    name are added as a new group.

    Parameters created mid-training sit in later groups and need not be touched by the
    first resumed step, so the first step's trace cannot rebuild the layout on its own.
    """
    names = state.get("names")
    store = dict(pyro.get_param_store().named_parameters())
    if names is None or not set(names) <= set(store):  # an older checkpoint: by trace order
        opt = OptimizerAdapter(spec, touched, lr)
        opt.load_state_dict(state)
        return opt
    groups, start = [], 0
    for size in state.get("groups") or [len(names)]:
        groups.append({k: store[k] for k in names[start : start + size]})
        start += size
    opt = OptimizerAdapter(spec, groups[0], lr)
    for group in groups[1:]:
        opt.add(group)
    opt.load_state_dict(state)
    new = {k: v for k, v in touched.items() if k not in opt.params}
    if new:
        opt.add(new)
    return opt
