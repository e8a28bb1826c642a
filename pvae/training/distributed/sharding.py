r"""Each rank's shard of the data, exactly as :class:`~torch.utils.data.DistributedSampler`.

Shards follow :class:`torch.utils.data.DistributedSampler` exactly: one permutation per
epoch drawn from ``seed + epoch`` (the same on every rank), padded with repeated examples
so that every rank takes the same number of steps. The union of the ranks' step-``k``
batches of size :math:`B` is the step-``k`` batch of one process with batch :math:`R B`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from pvae.data import TensorBatches
from pvae.training.distributed.context import (
    DistributedContext,
    collective,
    collective_device,
    current_context,
)

__all__ = ["DistributedBatches", "ShardedLoader", "shard_batches", "shard_indices"]


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


class ShardedLoader:
    """A DataLoader over a DistributedSampler that advances the sampler's epoch itself.

    What :func:`shard_batches` makes of a ``DataLoader``; each pass uses the next epoch's
    permutation (``set_epoch`` pins it).

    Examples
    --------
    >>> from torch.utils.data import TensorDataset
    >>> data = TensorDataset(torch.arange(6.0))
    >>> sampler = DistributedSampler(data, num_replicas=2, rank=1, shuffle=False)
    >>> loader = ShardedLoader(DataLoader(data, batch_size=2, sampler=sampler))
    >>> [b[0].tolist() for b in loader], loader.num_examples
    ([[1.0, 3.0], [5.0]], 6)
    """

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
    value = torch.tensor([seed], dtype=torch.int64, device=collective_device(context))
    with collective("agreeing on the shuffling seed", value):
        dist.broadcast(value, src=0)
    return int(value.item())


def shard_batches(
    batches: TensorBatches | DataLoader,
    context: DistributedContext | None = None,
    *,
    seed: int | None = None,
) -> TensorBatches | DataLoader | ShardedLoader:
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
    return ShardedLoader(loader)
