r"""Gradient averaging and metric reductions over the ranks, by parameter *name*.

``SVI.step`` collects parameters in a ``set``, whose order depends on memory addresses and
differs between processes; all-reducing gradients in that order would add different
parameters into each other. :func:`average_gradients` sorts by name (Pyro param-store
names, which every rank shares), flattens the gradients into one buffer and all-reduces it
once per step. Outside a process group every function here is a no-op.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence

import torch
import torch.distributed as dist

from pvae.training.distributed.context import (
    DistributedContext,
    DistributedError,
    active_context,
    collective,
    collective_device,
)

__all__ = ["all_reduce_mean", "all_reduce_sum", "average_gradients", "broadcast_parameters"]

_checked_layouts: set[str] = set()


def _layout(params: list[tuple[str, torch.Tensor]]) -> str:
    return ";".join(f"{name}:{tuple(p.shape)}" for name, p in params)


def _check_layout(params: list[tuple[str, torch.Tensor]], context: DistributedContext) -> None:
    """Fail on every rank at once if the ranks hold different parameters."""
    layout = _layout(params)
    key = zlib.crc32(layout.encode())
    bounds = torch.tensor([key, -key], dtype=torch.int64, device=collective_device(context))
    with collective("checking that all ranks hold the same parameters", bounds):
        dist.all_reduce(bounds, op=dist.ReduceOp.MAX)
    if bounds.tolist() != [key, -key]:
        raise DistributedError(
            f"ranks hold different parameters (rank {context.rank} has {len(params)}: "
            f"{layout[:200]}). Every rank must build the same model and guide; look for "
            "rank-dependent code or parameter shapes that depend on the data."
        )


def broadcast_parameters(
    named_parameters: Iterable[tuple[str, torch.Tensor]],
    context: DistributedContext | None = None,
) -> None:
    """Copy rank 0's parameter values to every rank, in name order, in place.

    Also checks that every rank holds the same parameter names and shapes.

    Parameters
    ----------
    named_parameters : iterable of (str, torch.Tensor)
        For example ``pyro.get_param_store().named_parameters()``.
    context : DistributedContext, optional
        Default :func:`current_context`. With one process this does nothing.

    Raises
    ------
    DistributedError
        If the ranks hold different parameters or a peer fails.

    Examples
    --------
    >>> import pyro
    >>> loc = pyro.param("loc", torch.zeros(2))
    >>> broadcast_parameters(pyro.get_param_store().named_parameters())  # 1 process: no-op
    """
    context = active_context(context)
    if context is None:
        return
    params = sorted(named_parameters, key=lambda item: item[0])
    _check_layout(params, context)
    _checked_layouts.add(_layout(params))
    if not params:
        return
    flat = torch.cat([p.detach().reshape(-1) for _, p in params])
    with collective("broadcasting parameters from rank 0", flat):
        dist.broadcast(flat, src=0)
    with torch.no_grad():
        for (_, p), value in zip(params, flat.split([p.numel() for _, p in params]), strict=True):
            p.copy_(value.view_as(p))


def average_gradients(
    named_parameters: Iterable[tuple[str, torch.Tensor]],
    context: DistributedContext | None = None,
) -> None:
    r"""Replace every gradient by its mean over the ranks, in place.

    Parameters are ordered by name, their gradients flattened into one buffer (a missing
    gradient counts as zero) and all-reduced once. The first time a set of parameters is
    seen, :func:`broadcast_parameters` runs first: the ranks check that they hold the same
    names and shapes, and take rank 0's values, so replicas are identical even when each
    rank initialised its parameters with its own random numbers (that first step's
    gradients were then taken at each rank's own values: seed the model identically, or call
    :func:`broadcast_parameters` before training, for an exact first step).

    .. math:: g_\phi \leftarrow \frac{1}{R} \sum_{r=1}^{R} g_\phi^{(r)}

    Parameters
    ----------
    named_parameters : iterable of (str, torch.Tensor)
        Leaf tensors with ``.grad`` set, e.g. ``pyro.get_param_store().named_parameters()``
        after ``loss.backward()``. Any order: they are sorted by name.
    context : DistributedContext, optional
        Default :func:`current_context`. With one process this does nothing.

    Raises
    ------
    DistributedError
        If the ranks hold different parameters, or a peer exits or stops answering.

    Examples
    --------
    >>> import pyro
    >>> loc = pyro.param("loc", torch.zeros(2))
    >>> (loc - 1.0).pow(2).sum().backward()
    >>> average_gradients(pyro.get_param_store().named_parameters())  # 1 process: no-op
    >>> loc.grad.tolist()
    [-2.0, -2.0]
    """
    context = active_context(context)
    if context is None:
        return
    params = sorted(named_parameters, key=lambda item: item[0])
    if _layout(params) not in _checked_layouts:
        broadcast_parameters(params, context)
    if not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for _, p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    with collective("averaging gradients", flat):
        dist.all_reduce(flat)
    flat.div_(context.world_size)
    for (_, p), grad in zip(params, flat.split([p.numel() for _, p in params]), strict=True):
        if p.grad is None:
            p.grad = grad.view_as(p).clone()
        else:
            p.grad.copy_(grad.view_as(p))


def all_reduce_sum(
    values: Sequence[float], context: DistributedContext | None = None
) -> tuple[float, ...]:
    """Sum a few numbers over the ranks in float64, e.g. an epoch's loss total and count.

    Parameters
    ----------
    values : sequence of float
        This rank's numbers; every rank passes as many.
    context : DistributedContext, optional
        Default :func:`current_context`.

    Returns
    -------
    tuple of float
        The sums, identical on every rank (the input itself with one process).

    Examples
    --------
    >>> all_reduce_sum([1.5, 3.0])
    (1.5, 3.0)
    """
    context = active_context(context)
    if context is None:
        return tuple(float(v) for v in values)
    total = torch.tensor(
        [float(v) for v in values], dtype=torch.float64, device=collective_device(context)
    )
    with collective("summing metrics over the ranks", total):
        dist.all_reduce(total)
    return tuple(total.tolist())


def all_reduce_mean(
    values: Sequence[float], context: DistributedContext | None = None
) -> tuple[float, ...]:
    """Average a few numbers over the ranks, e.g. per-rank validation ELBOs.

    Every rank gets the same result, so decisions taken from it (early stopping, the
    best epoch) agree across ranks.

    Examples
    --------
    >>> all_reduce_mean([-95.5])
    (-95.5,)
    """
    context = active_context(context)
    sums = all_reduce_sum(values, context)
    return sums if context is None else tuple(v / context.world_size for v in sums)
