r"""What :func:`pvae.fit` feeds the step object: the batches, and the examples it evaluates.

:func:`training_inputs` turns ``data`` (anything :func:`pvae.data.as_batches` takes) into

- the training batches, shuffled every epoch only when an epoch has more than one step
  (``shuffle=None``): a full batch is never reshuffled, so a guide with parameters per
  example (``AutoNormal`` over a local plate) keeps seeing each example at its own index;
- on the device, and this rank's shard under ``torchrun``;
- the *held* examples (the first ``batch_size``, in their stored order) and, lazily, the
  whole training set, on which the history's ``train_*`` columns are computed;
- the validation batches.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from pyro import poutine
from pyro.util import check_site_shape
from torch.utils.data import DataLoader

from pvae import _traces
from pvae.data import TensorBatches, as_batches
from pvae.training.distributed import DistributedContext, shard_batches

__all__ = ["TrainingInputs", "first_run", "num_examples", "training_inputs"]


class TrainingInputs(NamedTuple):
    """The batches of one fit (see :func:`training_inputs`)."""

    #: Training batches: TensorBatches, a DataLoader, or this rank's shard of them.
    batches: Any
    #: Examples in the whole training set (all ranks).
    num_examples: int
    #: Whether the batches are reshuffled every epoch.
    shuffle: bool
    #: The first ``batch_size`` training examples, in order (a tuple of tensors, not moved).
    held: tuple[torch.Tensor, ...]
    #: ``() -> tuple of tensors``: the whole training set in one batch.
    whole: Callable[[], tuple[torch.Tensor, ...]]
    #: Validation batches, or ``None``.
    val: Any
    #: Whether each batch must be moved to the device (the container does not).
    move: bool


def num_examples(batches: Any) -> int:
    """The size of the data set behind ``batches`` (all shards together).

    Examples
    --------
    >>> num_examples(TensorBatches([torch.zeros(5)], batch_size=2))
    5
    """
    if isinstance(batches, TensorBatches):
        return int(batches.num_examples)
    return len(batches.dataset)


def training_inputs(
    data: Any,
    *,
    batch_size: int,
    shuffle: bool | None,
    seed: int,
    device: Any = None,
    context: DistributedContext | None = None,
    val_data: Any = None,
) -> TrainingInputs:
    """The batches :func:`pvae.fit` trains and evaluates on (see the module docstring).

    Raises
    ------
    ValueError
        For unsupported data, or ``shuffle`` given with a DataLoader (it keeps its order).

    Examples
    --------
    >>> x = torch.arange(6.0)
    >>> one = training_inputs(x, batch_size=8, shuffle=None, seed=0)   # one batch
    >>> one.shuffle, [b[0].tolist() for b in one.batches] == [x.tolist()]
    (False, True)
    >>> training_inputs(x, batch_size=4, shuffle=None, seed=0).shuffle
    True
    """
    world = context.world_size if context is not None else 1
    if isinstance(data, DataLoader) and shuffle is not None:
        raise ValueError(
            f"`shuffle`={shuffle!r} cannot reorder a DataLoader, which keeps its own "
            "order. Build the DataLoader with `shuffle=`, or pass the Dataset itself."
        )
    batches = as_batches(data, batch_size=batch_size, shuffle=bool(shuffle), seed=seed)
    if shuffle is None and not isinstance(data, DataLoader):
        shuffle = num_examples(batches) > batch_size * world  # more than one step per epoch
        if shuffle and isinstance(batches, TensorBatches):
            batches.shuffle = True  # its generator is seeded already
        elif shuffle:  # a Dataset: a DataLoader with a RandomSampler
            batches = as_batches(data, batch_size=batch_size, shuffle=True, seed=seed)
    shuffle = bool(shuffle)
    if device is not None and isinstance(batches, TensorBatches):
        tensors = [t.to(device) for t in batches.tensors]
        batches = TensorBatches(tensors, batch_size, shuffle=shuffle, seed=seed)
    n = num_examples(batches)
    batches = shard_batches(batches, context)  # this rank's shard (unchanged in 1 process)
    move = device is not None and not isinstance(batches, TensorBatches)
    held = next(iter(as_batches(data, batch_size=batch_size)))

    def whole() -> tuple[torch.Tensor, ...]:
        if isinstance(data, DataLoader):
            return tuple(torch.cat(column) for column in zip(*data, strict=True))
        return next(iter(as_batches(data)))

    val = None
    if val_data is not None:
        val = shard_batches(as_batches(val_data, batch_size=batch_size), context)
    return TrainingInputs(batches, n, shuffle, held, whole, val, move)


def first_run(guide: Callable, model: Callable, args: tuple, kwargs: dict) -> None:
    """Run ``guide`` and ``model`` replayed on it once on a batch (``fit``'s first contact).

    Each site's log-density shape is checked as Pyro's ELBOs check it. A shape or type
    error there is the data not fitting the model: it is raised as a
    ``ValueError`` that names ``data`` and the batch's shapes, with Pyro's message kept.
    """
    try:
        guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(
            *args, **kwargs
        )
        for trace in (guide_trace, model_trace):
            trace.compute_log_prob()
            for site in trace.nodes.values():
                if site["type"] == "sample":
                    check_site_shape(site, max_plate_nesting=math.inf)  # as the ELBOs check
    except _traces.SHAPE_ERRORS as err:
        shapes = [
            tuple(a.shape) if isinstance(a, torch.Tensor) else type(a).__name__ for a in args
        ]
        raise ValueError(
            f"the model and guide cannot run on a batch of `data` (batch shapes {shapes}): "
            f"{type(err).__name__}: {err}"
        ) from err
