r"""Data-parallel training on ``torch.distributed``, launched with ``torchrun``.

Every process (a *rank*) holds a full copy of the model and guide, trains on its own
shard of the data, and averages gradients with the other ranks before each optimizer
step, so all replicas take the same step and stay identical. With :math:`R` ranks each
drawing a batch of :math:`B` examples, one step estimates the ELBO gradient from
:math:`R B` examples:

.. math::
    g = \frac{1}{R} \sum_{r=1}^{R} \nabla_\phi \widehat{\mathcal{L}}_r(\phi),

where :math:`\widehat{\mathcal{L}}_r` is rank :math:`r`'s minibatch loss (Pyro's negative
ELBO estimate).

Pyro needs two things done differently from a plain PyTorch
``DistributedDataParallel`` (DDP) model:

1. ``SVI.step`` calls the model and guide directly, so a DDP wrapper's ``forward`` (where
   DDP hooks its gradient synchronisation) never runs and gradients are never averaged.
2. ``SVI.step`` collects parameters in a ``set``, whose iteration order depends on memory
   addresses and differs between processes; all-reducing gradients in that order adds
   different parameters into each other.

:func:`average_gradients` therefore sorts parameters by *name* (Pyro param-store names,
which every rank shares), flattens their gradients into one buffer, all-reduces it once
per step and divides by the world size. It works for any parameter in Pyro's param store
(``pyro.param``, ``PyroModule``, ``pyro.module``), needs no wrapper ``forward``, and costs
one collective per step.

Launch with ``torchrun --nproc_per_node=N ...``; without it every function here is a
no-op and training is plain single-process training.
"""

from __future__ import annotations

import atexit
import collections
import datetime
import math
import os
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from pvae.data import TensorBatches

__all__ = [
    "DEFAULT_TIMEOUT",
    "DistributedBatches",
    "DistributedContext",
    "DistributedError",
    "all_reduce_mean",
    "all_reduce_sum",
    "average_gradients",
    "broadcast_parameters",
    "current_context",
    "init_distributed",
    "shard_batches",
    "shard_indices",
]

#: Seconds a collective waits for a silent peer before failing (``PVAE_DIST_TIMEOUT``
#: overrides it). A peer that *exits* is noticed at once: its socket closes.
DEFAULT_TIMEOUT = 120.0

_TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class DistributedError(RuntimeError):
    """A collective failed: another rank exited, crashed or stopped answering."""


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in the process group.

    Attributes
    ----------
    rank : int
        Global index of this process, ``0 <= rank < world_size``.
    world_size : int
        Number of processes training together (1: not distributed).
    local_rank : int
        Index of this process on its machine (picks the GPU).
    device : torch.device
        Device this rank trains on.
    backend : str or None
        ``"gloo"`` or ``"nccl"``; ``None`` when not distributed.

    Examples
    --------
    >>> ctx = DistributedContext()
    >>> ctx.is_main, ctx.is_distributed, ctx.world_size
    (True, False, 1)
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that prints and writes files."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        """More than one process trains together."""
        return self.world_size > 1


def _env_int(name: str, default: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None:
        if default is None:
            raise ValueError(
                f"`{name}` must be set in the environment when WORLD_SIZE > 1, got nothing. "
                "Launch with `torchrun --nproc_per_node=N ...`, which sets it."
            )
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(
            f"`{name}` in the environment must be an integer, got {value!r}."
        ) from None


def _resolve_device(device: Any, local_rank: int) -> torch.device:
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


def current_context(device: Any = None) -> DistributedContext:
    """The context of the process group this process already joined, else single-process.

    Parameters
    ----------
    device : str or torch.device, optional
        Device to record; default ``cuda:LOCAL_RANK`` under NCCL, else CPU.

    Returns
    -------
    DistributedContext

    Examples
    --------
    >>> current_context().world_size
    1
    """
    if not (dist.is_available() and dist.is_initialized()):
        return DistributedContext(device=torch.device(device if device is not None else "cpu"))
    local_rank = _env_int("LOCAL_RANK", 0)
    backend = str(dist.get_backend())
    if device is None:
        device = "cuda" if backend == "nccl" else "cpu"
    return DistributedContext(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=local_rank,
        device=_resolve_device(device, local_rank),
        backend=backend,
    )


def init_distributed(
    device: Any = None, *, backend: str | None = None, timeout: float | None = None
) -> DistributedContext:
    """Join the process group that ``torchrun`` describes in the environment.

    Reads ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``.
    Without ``WORLD_SIZE`` (or with ``WORLD_SIZE=1``) nothing is initialised and a
    single-process context is returned. Calling it again returns the existing group.

    Parameters
    ----------
    device : str or torch.device, optional
        ``None`` picks ``cuda:LOCAL_RANK`` when CUDA is available, else CPU; ``"cuda"``
        becomes ``cuda:LOCAL_RANK``.
    backend : str, optional
        ``"gloo"`` (CPU) or ``"nccl"`` (CUDA); default chosen from the device.
    timeout : float, optional
        Seconds a collective waits for a silent peer before raising; default
        ``PVAE_DIST_TIMEOUT`` from the environment, else :data:`DEFAULT_TIMEOUT`.

    Returns
    -------
    DistributedContext

    Raises
    ------
    ValueError
        If the environment is incomplete or ``timeout`` is not positive.
    DistributedError
        If the process group cannot be formed within ``timeout``.

    Examples
    --------
    Outside ``torchrun`` this is a no-op:

    >>> ctx = init_distributed(device="cpu")
    >>> ctx.rank, ctx.world_size, ctx.backend
    (0, 1, None)
    """
    world_size = _env_int("WORLD_SIZE", 1)
    if world_size < 1:
        raise ValueError(f"`WORLD_SIZE` in the environment must be >= 1, got {world_size}.")
    if world_size == 1 or dist.is_initialized():
        return current_context(device)
    if timeout is None:
        timeout = float(os.environ.get("PVAE_DIST_TIMEOUT", DEFAULT_TIMEOUT))
    if not timeout > 0:
        raise ValueError(f"`timeout` must be a positive number of seconds, got {timeout!r}.")
    for name in _TORCHRUN_VARIABLES:
        if name not in os.environ:
            raise ValueError(
                f"`{name}` must be set in the environment when WORLD_SIZE={world_size}, "
                "got nothing. Launch with `torchrun --nproc_per_node=N ...`, which sets it."
            )
    rank, local_rank = _env_int("RANK"), _env_int("LOCAL_RANK")
    device = _resolve_device(device, local_rank)
    if backend is None:
        backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    with _collective("joining the process group"):
        dist.init_process_group(
            backend,
            rank=rank,
            world_size=world_size,
            timeout=datetime.timedelta(seconds=timeout),
            device_id=device if device.type == "cuda" else None,
        )
    atexit.register(_destroy)
    return current_context(device)


def _release_buffers(seconds: float = 2.0) -> None:
    """Wait until gloo's worker threads have dropped the latest collectives' buffers."""
    deadline = time.monotonic() + seconds
    while any(b._use_count() > 1 for b in _recent_buffers) and time.monotonic() < deadline:
        time.sleep(0.001)  # lets a worker take the GIL, which it needs to free its work
    _recent_buffers.clear()


def _destroy() -> None:
    """At exit: leave the process group cleanly, before the interpreter shuts down."""
    if dist.is_initialized():
        if not _failed:  # after a failure the buffers may never be released: do not wait
            _release_buffers()
        dist.destroy_process_group()


# Buffers of the latest collectives. Gloo's worker thread drops its reference to a buffer
# after the caller has returned, and needs the GIL to do so; if the interpreter is shutting
# down by then, the process aborts ("terminate called without an active exception").
# `_destroy` waits for these references to go before leaving the process group.
_recent_buffers: collections.deque[torch.Tensor] = collections.deque(maxlen=4)
_failed = False  # a collective failed in this process


@contextmanager
def _collective(what: str, buffer: torch.Tensor | None = None) -> Iterator[None]:
    """Turn a backend failure into one clear error naming the rank and the operation."""
    if buffer is not None:
        _recent_buffers.append(buffer)
    try:
        yield
    except (RuntimeError, dist.DistError) as error:  # gloo/NCCL raise RuntimeError subclasses
        global _failed
        _failed = True
        rank = dist.get_rank() if dist.is_initialized() else _env_int("RANK", 0)
        raise DistributedError(
            f"rank {rank} failed while {what}: another rank exited, crashed or stopped "
            "answering (or the rendezvous address is wrong). Look at the other ranks' output "
            "for the first error; torchrun names the rank that failed first. Backend said: "
            f"{str(error).splitlines()[0] if str(error) else type(error).__name__}"
        ) from error


# ----------------------------------------------------------------------------- data


def _shard_length(num_examples: int, world_size: int, drop_last: bool) -> int:
    if drop_last and num_examples % world_size:
        return math.ceil((num_examples - world_size) / world_size)
    return math.ceil(num_examples / world_size)


def shard_indices(
    num_examples: int,
    *,
    rank: int = 0,
    world_size: int = 1,
    epoch: int = 0,
    seed: int = 0,
    shuffle: bool = True,
    drop_last: bool = False,
) -> torch.Tensor:
    """Indices of one rank's shard, exactly as :class:`torch.utils.data.DistributedSampler`.

    The permutation depends on ``seed + epoch`` only, so it is the same on every rank and
    changes every epoch. Without ``drop_last`` the shards are padded with repeated
    indices to equal length, so every rank takes the same number of steps.

    Parameters
    ----------
    num_examples : int
        Size of the whole data set.
    rank, world_size : int
        This rank and the number of ranks.
    epoch, seed : int
        The permutation is drawn from a generator seeded with ``seed + epoch``.
    shuffle : bool
        Permute before sharding.
    drop_last : bool
        Drop the tail that does not divide evenly instead of padding.

    Returns
    -------
    torch.Tensor
        1-D int64 indices into the data set.

    Examples
    --------
    >>> shard_indices(5, rank=1, world_size=2, shuffle=False).tolist()
    [1, 3, 0]
    """
    total = _shard_length(num_examples, world_size, drop_last) * world_size
    if shuffle:
        generator = torch.Generator().manual_seed(seed + epoch)
        order = torch.randperm(num_examples, generator=generator)
    else:
        order = torch.arange(num_examples)
    if total > num_examples:
        order = order.repeat(math.ceil(total / num_examples))
    return order[rank:total:world_size]


class DistributedBatches(TensorBatches):
    """This rank's minibatches of in-memory tensors: a sharded :class:`~pvae.data.TensorBatches`.

    One index operation per tensor per epoch (no per-example ``DataLoader``). Each pass
    uses the current epoch's permutation, then advances the epoch, so iterating again gives
    a new order even without :meth:`set_epoch`; calling ``set_epoch(e)`` before a pass
    pins it to epoch ``e`` (``DistributedSampler`` semantics).

    Parameters
    ----------
    tensors : sequence of torch.Tensor
        Tensors sharing their first (data) dimension: the *whole* data set.
    batch_size : int, optional
        Examples per batch *per rank*; a step sees ``batch_size * world_size`` examples.
    context : DistributedContext, optional
        Rank and world size; default :func:`current_context`.
    shuffle : bool
        Permute every epoch.
    seed : int
        Base seed of the permutation (the same on every rank).
    drop_last : bool
        Drop the tail instead of padding the shards with repeated examples.

    Attributes
    ----------
    num_examples : int
        Size of the whole data set (all ranks together).
    epoch : int
        Epoch of the next pass.

    Examples
    --------
    >>> ctx = DistributedContext(rank=1, world_size=2)
    >>> batches = DistributedBatches([torch.arange(6.0)], batch_size=2, context=ctx)
    >>> [b[0].tolist() for b in batches]
    [[1.0, 3.0], [5.0]]
    >>> len(batches), batches.num_examples
    (2, 6)
    """

    def __init__(
        self,
        tensors: Sequence[torch.Tensor],
        batch_size: int | None = None,
        *,
        context: DistributedContext | None = None,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        super().__init__(tensors, batch_size, shuffle=shuffle)  # validates the tensors
        self.context = context if context is not None else current_context()
        self.seed = int(seed)
        self.drop_last = drop_last
        self.epoch = 0
        if batch_size is None:
            self.batch_size = max(1, self._shard_size())

    def _shard_size(self) -> int:
        return _shard_length(self.num_examples, self.context.world_size, self.drop_last)

    def _indices(self) -> torch.Tensor:
        return shard_indices(
            self.num_examples,
            rank=self.context.rank,
            world_size=self.context.world_size,
            epoch=self.epoch,
            seed=self.seed,
            shuffle=self.shuffle,
            drop_last=self.drop_last,
        )

    def set_epoch(self, epoch: int) -> None:
        """Use epoch ``epoch``'s permutation for the next pass."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return -(-self._shard_size() // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        indices = self._indices()
        self.epoch += 1
        shard = tuple(t[indices] for t in self.tensors)
        for start in range(0, len(indices), self.batch_size):
            yield tuple(t[start : start + self.batch_size] for t in shard)


class _ShardedLoader:
    """A DataLoader over a DistributedSampler that advances the sampler's epoch itself."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader
        self.sampler: DistributedSampler = loader.sampler  # type: ignore[assignment]
        self.num_examples = len(loader.dataset)  # type: ignore[arg-type]
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        self.sampler.set_epoch(self.epoch)
        self.epoch += 1
        return iter(self.loader)

    def __getattr__(self, name: str) -> Any:  # dataset, batch_size, ... of the DataLoader
        if name == "loader":
            raise AttributeError(name)
        return getattr(self.loader, name)


def _same_seed(seed: int, context: DistributedContext) -> int:
    """Rank 0's seed on every rank (ranks that drew their own seeds would shard wrongly)."""
    if not dist.is_initialized():
        return seed
    value = torch.tensor([seed], dtype=torch.int64, device=_collective_device(context))
    with _collective("agreeing on the shuffling seed", value):
        dist.broadcast(value, src=0)
    return int(value.item())


def shard_batches(
    batches: TensorBatches | DataLoader,
    context: DistributedContext | None = None,
    *,
    seed: int | None = None,
) -> TensorBatches | DataLoader | _ShardedLoader:
    """Give this rank its shard of the data, keeping batch size and shuffling.

    A :class:`~pvae.data.TensorBatches` becomes :class:`DistributedBatches`; a
    ``DataLoader`` is rebuilt over a :class:`~torch.utils.data.DistributedSampler` with the
    same batch size, collate function and workers. Both advance their epoch on every pass
    and accept ``set_epoch``. Rank 0's seed is used on every rank. Outside a process group
    the input is returned unchanged.

    Parameters
    ----------
    batches : TensorBatches or DataLoader
        The whole data set's batches, as :func:`pvae.data.as_batches` makes them (it
        turns a ``Dataset`` into a ``DataLoader``).
    context : DistributedContext, optional
        Default :func:`current_context`.
    seed : int, optional
        Base seed of the permutation; default the seed of the batches' own generator.

    Returns
    -------
    DistributedBatches, a sharded DataLoader, or the input when not distributed

    Raises
    ------
    ValueError
        For other containers.

    Examples
    --------
    >>> whole = TensorBatches([torch.arange(8.0)], batch_size=2, shuffle=True, seed=0)
    >>> mine = shard_batches(whole, DistributedContext(rank=0, world_size=2))
    >>> len(mine), mine.batch_size, mine.num_examples
    (2, 2, 8)
    """
    context = context if context is not None else current_context()
    if not context.is_distributed:
        return batches
    if isinstance(batches, TensorBatches):
        own = batches.seed if isinstance(batches, DistributedBatches) else None
        if seed is None:
            seed = own if own is not None else batches.generator.initial_seed()
        return DistributedBatches(
            batches.tensors,
            batches.batch_size,
            context=context,
            shuffle=batches.shuffle,
            seed=_same_seed(seed, context),
        )
    if not isinstance(batches, DataLoader) or batches.batch_size is None:
        raise ValueError(
            "`batches` must be a pvae.data.TensorBatches or a torch DataLoader with a "
            f"`batch_size`, got {type(batches).__name__}. Pass your data (a Dataset too) "
            "through pvae.data.as_batches first."
        )
    shuffle = isinstance(batches.sampler, RandomSampler)
    if seed is None:
        generator = batches.sampler.generator if shuffle else None
        seed = generator.initial_seed() if generator is not None else 0
    sampler = DistributedSampler(
        batches.dataset,
        num_replicas=context.world_size,
        rank=context.rank,
        shuffle=shuffle,
        seed=_same_seed(seed, context),
        drop_last=batches.drop_last,
    )
    loader = DataLoader(
        batches.dataset,
        batch_size=batches.batch_size,
        sampler=sampler,
        num_workers=batches.num_workers,
        collate_fn=batches.collate_fn,
        pin_memory=batches.pin_memory,
        drop_last=batches.drop_last,
    )
    return _ShardedLoader(loader)


# ----------------------------------------------------------------------------- gradients

_checked_layouts: set[str] = set()


def _active(context: DistributedContext | None) -> DistributedContext | None:
    """The context when more than one rank trains, else None (cheap: no CUDA queries)."""
    if context is None:
        if not (dist.is_available() and dist.is_initialized()):
            return None
        context = current_context()
    return context if context.is_distributed else None


def _collective_device(context: DistributedContext) -> torch.device:
    return context.device if context.backend == "nccl" else torch.device("cpu")


def _layout(params: list[tuple[str, torch.Tensor]]) -> str:
    return ";".join(f"{name}:{tuple(p.shape)}" for name, p in params)


def _check_layout(params: list[tuple[str, torch.Tensor]], context: DistributedContext) -> None:
    """Fail on every rank at once if the ranks hold different parameters."""
    layout = _layout(params)
    key = zlib.crc32(layout.encode())
    bounds = torch.tensor([key, -key], dtype=torch.int64, device=_collective_device(context))
    with _collective("checking that all ranks hold the same parameters", bounds):
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
    context = _active(context)
    if context is None:
        return
    params = sorted(named_parameters, key=lambda item: item[0])
    _check_layout(params, context)
    _checked_layouts.add(_layout(params))
    if not params:
        return
    flat = torch.cat([p.detach().reshape(-1) for _, p in params])
    with _collective("broadcasting parameters from rank 0", flat):
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
    context = _active(context)
    if context is None:
        return
    params = sorted(named_parameters, key=lambda item: item[0])
    if _layout(params) not in _checked_layouts:
        broadcast_parameters(params, context)
    if not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for _, p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    with _collective("averaging gradients", flat):
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
    context = _active(context)
    if context is None:
        return tuple(float(v) for v in values)
    total = torch.tensor(
        [float(v) for v in values], dtype=torch.float64, device=_collective_device(context)
    )
    with _collective("summing metrics over the ranks", total):
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
    context = _active(context)
    sums = all_reduce_sum(values, context)
    return sums if context is None else tuple(v / context.world_size for v in sums)
