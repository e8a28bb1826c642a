r"""Data: bundled and local datasets, and adapters from arrays to minibatches.

Everything pvae trains on passes through :func:`as_batches`, which accepts a tensor, a
NumPy array, a tuple of them (``(x, y)``), a :class:`torch.utils.data.Dataset` or a
:class:`torch.utils.data.DataLoader`, and yields tuples of tensors that are passed to a
model as ``model(*batch)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

__all__ = ["TensorBatches", "as_batches", "as_tensor"]


def as_tensor(data: Any, *, name: str = "data", dtype: torch.dtype | None = None) -> torch.Tensor:
    """Convert an array-like to a tensor, refusing NaN and non-numeric input.

    Parameters
    ----------
    data : torch.Tensor or numpy.ndarray or sequence
        The values.
    name : str
        The argument name used in error messages.
    dtype : torch.dtype, optional
        Target dtype; floating input defaults to ``torch.get_default_dtype()``.

    Returns
    -------
    torch.Tensor

    Raises
    ------
    ValueError
        If the input is not numeric or holds NaN.

    Examples
    --------
    >>> as_tensor([[0.0, 1.0]]).shape
    torch.Size([1, 2])
    """
    if isinstance(data, torch.Tensor):
        tensor = data
    else:
        array = np.asarray(data)
        if array.dtype == object or not (
            np.issubdtype(array.dtype, np.number) or array.dtype == bool
        ):
            raise ValueError(
                f"`{name}` must be numeric (a tensor or an array of numbers), "
                f"got an array of dtype {array.dtype}."
            )
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    if dtype is not None:
        tensor = tensor.to(dtype)
    elif tensor.is_floating_point() and tensor.dtype != torch.get_default_dtype():
        tensor = tensor.to(torch.get_default_dtype())
    if tensor.is_floating_point() and torch.isnan(tensor).any():
        count = int(torch.isnan(tensor).sum())
        raise ValueError(f"`{name}` contains {count} NaN value(s); remove or impute them first.")
    return tensor


class TensorBatches:
    """Minibatches of in-memory tensors, shuffled with a seeded generator.

    A light replacement for ``DataLoader(TensorDataset(...))``: a batch is one index
    operation per tensor instead of one per example, which matters in a tight SVI loop.

    Parameters
    ----------
    tensors : sequence of torch.Tensor
        Tensors sharing their first (data) dimension.
    batch_size : int, optional
        Examples per batch; ``None`` means the whole data set in one batch.
    shuffle : bool
        Draw a new permutation each pass.
    seed : int, optional
        Seed of the shuffling generator (same seed, same batch order).

    Examples
    --------
    >>> batches = TensorBatches([torch.arange(5.0)], batch_size=2)
    >>> [b[0].tolist() for b in batches]
    [[0.0, 1.0], [2.0, 3.0], [4.0]]
    >>> len(batches), batches.num_examples
    (3, 5)
    """

    def __init__(
        self,
        tensors: Sequence[torch.Tensor],
        batch_size: int | None = None,
        *,
        shuffle: bool = False,
        seed: int | None = None,
    ) -> None:
        if len(tensors) == 0:
            raise ValueError("`tensors` must hold at least one tensor, got none.")
        n = tensors[0].shape[0]
        for i, t in enumerate(tensors):
            if t.dim() == 0 or t.shape[0] != n:
                raise ValueError(
                    f"every tensor must share the first (data) dimension {n}; "
                    f"tensor {i} has shape {tuple(t.shape)}."
                )
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(
                f"`batch_size` must be a positive integer or None, got {batch_size!r}."
            )
        self.tensors = tuple(tensors)
        self.num_examples = int(n)
        self.batch_size = self.num_examples if batch_size is None else batch_size
        self.shuffle = shuffle
        self.generator = torch.Generator()
        if seed is not None:
            self.generator.manual_seed(seed)

    def __len__(self) -> int:
        return -(-self.num_examples // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        if self.shuffle:
            order = torch.randperm(self.num_examples, generator=self.generator)
            tensors = tuple(t[order] for t in self.tensors)
        else:
            tensors = self.tensors
        for start in range(0, self.num_examples, self.batch_size):
            yield tuple(t[start : start + self.batch_size] for t in tensors)


def as_batches(
    data: Any,
    *,
    batch_size: int | None = None,
    shuffle: bool = False,
    seed: int | None = None,
) -> TensorBatches | DataLoader:
    """Turn any supported data container into an iterable of tuple batches.

    Parameters
    ----------
    data : torch.Tensor, numpy.ndarray, tuple of them, Dataset or DataLoader
        A tensor or array gives one-element batches ``(x,)``; a tuple ``(x, y)`` gives
        ``(x_batch, y_batch)``; a Dataset is wrapped in a DataLoader; a DataLoader is
        used as it is (its own batch size and order win).
    batch_size : int, optional
        Examples per batch (``None``: all at once).
    shuffle : bool
        Reshuffle every pass.
    seed : int, optional
        Seed for the shuffle order.

    Returns
    -------
    TensorBatches or torch.utils.data.DataLoader
        Iterating yields tuples of tensors.

    Raises
    ------
    ValueError
        For unsupported containers, NaN values, or mismatched lengths.

    Examples
    --------
    >>> x = np.zeros((10, 3), dtype=np.float32)
    >>> batches = as_batches(x, batch_size=4)
    >>> [tuple(b[0].shape) for b in batches]
    [(4, 3), (4, 3), (2, 3)]
    """
    if isinstance(data, DataLoader):
        return data
    if isinstance(data, Dataset):
        generator = None
        if seed is not None:
            generator = torch.Generator().manual_seed(seed)
        return DataLoader(
            data,
            batch_size=batch_size or len(data),  # type: ignore[arg-type]
            shuffle=shuffle,
            generator=generator,
        )
    if isinstance(data, (tuple, list)) and len(data) > 0 and not np.isscalar(data[0]):
        tensors = [as_tensor(d, name=f"data[{i}]") for i, d in enumerate(data)]
    elif isinstance(data, (torch.Tensor, np.ndarray)):
        tensors = [as_tensor(data)]
    else:
        raise ValueError(
            "`data` must be a tensor, a NumPy array, a tuple of them, a torch Dataset or a "
            f"DataLoader, got {type(data).__name__}."
        )
    return TensorBatches(tensors, batch_size, shuffle=shuffle, seed=seed)
