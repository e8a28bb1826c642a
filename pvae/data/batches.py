r"""Tensors and minibatches: everything pvae trains on passes through :func:`as_batches`.

:func:`as_batches` accepts a tensor, a NumPy array, a tuple of them (``(x, y)``), a Python
list of single values (Pyro's SVI tutorials write data as a list of 0-d tensors), a
:class:`torch.utils.data.Dataset` or a :class:`torch.utils.data.DataLoader`, and yields
tuples of tensors that are passed to a model as ``model(*batch)``.
:class:`TensorBatches` is its fast path for in-memory tensors.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from pvae import _checks

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
        Target dtype; floating and boolean input default to ``torch.get_default_dtype()``.

    Returns
    -------
    torch.Tensor
        Floating and boolean input in ``dtype`` (default: ``torch.get_default_dtype()``;
        booleans become 0 and 1, as arithmetic on them needs), integers as they are.

    Raises
    ------
    ValueError
        If the input is not numeric (complex numbers included) or holds NaN.

    Examples
    --------
    >>> as_tensor([[0.0, 1.0]]).shape
    torch.Size([1, 2])
    >>> as_tensor(torch.tensor([True, False]))
    tensor([1., 0.])
    """
    source = source_tensor(data, name=name)
    tensor = source
    if dtype is not None:
        tensor = tensor.to(dtype)
    elif (tensor.is_floating_point() or tensor.dtype == torch.bool) and (
        tensor.dtype != torch.get_default_dtype()
    ):
        tensor = tensor.to(torch.get_default_dtype())
    if tensor.dtype != source.dtype and tensor.is_floating_point() and tensor.numel():
        overflow = torch.isinf(tensor) & ~torch.isinf(source)
        if overflow.any():  # 1e300 would silently become inf in float32
            raise ValueError(
                f"`{name}` holds {int(overflow.sum())} finite value(s) beyond the range of "
                f"{tensor.dtype} (|x| <= {torch.finfo(tensor.dtype).max:.4g}), which would "
                f"become inf. Rescale the data, or set `torch.set_default_dtype(torch.float64)`."
            )
    return tensor


def source_tensor(data: Any, *, name: str = "data") -> torch.Tensor:
    """``data`` as a tensor of its own dtype (a NumPy float64 stays float64), with the
    refusals of :func:`as_tensor`: non-numeric, complex or NaN input.

    Checks of values (ranges, supports) read this, not :func:`as_tensor`'s conversion, in
    which ``1e-300`` becomes ``0.0`` in float32.

    Examples
    --------
    >>> source_tensor(np.array([1e-300])).dtype
    torch.float64
    """
    tensor = _read(data, name)
    if tensor.is_floating_point() and torch.isnan(tensor).any():
        count = int(torch.isnan(tensor).sum())
        raise ValueError(f"`{name}` contains {count} NaN value(s); remove or impute them first.")
    return tensor


def _read(data: Any, name: str) -> torch.Tensor:
    """``data`` as a real tensor of its own dtype, or a ``ValueError`` naming ``name``."""
    if isinstance(data, torch.Tensor):
        tensor = data
    else:
        try:
            array = np.asarray(data)
        except (ValueError, TypeError, RuntimeError) as err:  # ragged lists, odd tensors
            raise ValueError(
                f"`{name}` must be a rectangular array of numbers, got a ragged or unreadable "
                f"{type(data).__name__} ({err}). Give every row the same length, or pass a "
                "tensor."
            ) from None
        if array.dtype == object or not (
            np.issubdtype(array.dtype, np.number) or array.dtype == bool
        ):
            raise ValueError(
                f"`{name}` must be numeric (a tensor or an array of numbers), "
                f"got an array of dtype {array.dtype}."
            )
        if not np.iscomplexobj(array):
            tensor = _from_numpy(array, name)
        else:
            tensor = None
    if tensor is None or tensor.is_complex():
        raise ValueError(
            f"`{name}` must hold real numbers, got a complex "
            f"{'array' if tensor is None else 'tensor'}. Pass its real part or its modulus "
            "(`x.real`, `x.abs()`)."
        )
    return tensor


def _from_numpy(array: np.ndarray, name: str) -> torch.Tensor:
    """A tensor holding ``array``'s values (native byte order, C order, 0-d kept 0-d)."""
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    if not (array.flags.c_contiguous and array.flags.writeable):
        array = array.copy(order="C")
    try:
        return torch.from_numpy(array)
    except TypeError:  # a NumPy dtype torch has no counterpart of (float128, uint64 ...)
        raise ValueError(
            f"`{name}` has NumPy dtype {array.dtype}, which torch cannot hold. Convert it, "
            f"e.g. `{name}.astype(numpy.float64)`."
        ) from None


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
        if isinstance(tensors, torch.Tensor) or not isinstance(tensors, Sequence):
            raise TypeError(
                f"`tensors` must be a sequence of tensors, got {type(tensors).__name__}. "
                "Pass e.g. `[x]` or `(x, y)`."
            )
        if len(tensors) == 0:
            raise ValueError("`tensors` must hold at least one tensor, got none.")
        for i, t in enumerate(tensors):
            if not isinstance(t, torch.Tensor):
                raise TypeError(
                    f"`tensors[{i}]` must be a torch.Tensor, got {type(t).__name__}. Convert "
                    "it with `pvae.data.as_tensor`."
                )
        n = tensors[0].shape[0] if tensors[0].dim() else 0
        for i, t in enumerate(tensors):
            if t.dim() == 0 or t.shape[0] != n:
                raise ValueError(
                    f"every tensor of `data` (`tensors`) must share the first (data) dimension "
                    f"{n}; tensor {i} has shape {tuple(t.shape)}."
                )
        if n == 0:
            raise ValueError(
                f"`data` (`tensors`) must hold at least one example, got a first dimension of "
                f"0 (shape {tuple(tensors[0].shape)})."
            )
        for i, t in enumerate(tensors):
            if t.numel() == 0:
                raise ValueError(
                    f"the examples of `data` (`tensors`) must hold values, got tensor {i} of "
                    f"shape {tuple(t.shape)}: {n} example(s) of {tuple(t.shape[1:])}, with "
                    "no values each."
                )
        batch_size = _checks.optional(_checks.positive_int, "batch_size", batch_size, example=128)
        shuffle = _checks.boolean("shuffle", shuffle)
        seed = _checks.seed("seed", seed)
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


def _is_single_value(item: Any) -> bool:
    """A Python number, a NumPy scalar, or a 0-d tensor or array: one example."""
    if isinstance(item, (torch.Tensor, np.ndarray)):
        return item.ndim == 0
    return isinstance(item, (numbers.Number, np.generic))


def _is_array(item: Any) -> bool:
    return isinstance(item, (torch.Tensor, np.ndarray)) and item.ndim > 0


def _sequence_tensors(data: Sequence[Any]) -> list[torch.Tensor]:
    """The tensors of a list or tuple: single values are stacked, arrays are components."""
    kind = type(data).__name__
    if len(data) == 0:
        raise ValueError(
            f"`data` must hold at least one example, got an empty {kind}. Pass a tensor of "
            "shape [N, ...], a tuple of them, or a list of single values."
        )
    if all(_is_single_value(item) for item in data):  # Pyro's SVI Part I: [tensor(1.0), ...]
        # each in its own dtype (a Python float as float64): as_tensor then sees 1e300
        values = [_read(item, f"data[{i}]") for i, item in enumerate(data)]
        dtype = values[0].dtype
        for value in values[1:]:
            dtype = torch.promote_types(dtype, value.dtype)
        return [as_tensor(torch.stack([v.to(dtype) for v in values]), name="data")]
    if isinstance(data, tuple) or all(_is_array(item) for item in data):  # (x, y)
        for i, item in enumerate(data):
            if _is_single_value(item):
                raise ValueError(
                    f"`data[{i}]` is a single value, but a tuple's items are components such "
                    "as `(x, y)`, each with a first (data) dimension. Pass a list of single "
                    "values for examples, or give every component the same length."
                )
        return [as_tensor(item, name=f"data[{i}]") for i, item in enumerate(data)]
    if isinstance(data, list) and all(
        isinstance(item, (list, tuple)) or _is_single_value(item) for item in data
    ):  # nested Python lists: one array, rows are examples
        return [as_tensor(data, name="data")]
    single = next((i for i, item in enumerate(data) if _is_single_value(item)), None)
    other = next(
        (i for i, item in enumerate(data) if not _is_single_value(item) and not _is_array(item)),
        None,
    )
    if other is not None:
        what = f"data[{other}] is a {type(data[other]).__name__}"
    else:
        array = next(i for i, item in enumerate(data) if _is_array(item))
        what = (
            f"data[{single}] is a single value and data[{array}] an array of shape "
            f"{tuple(data[array].shape)}"
        )
    raise ValueError(
        f"`data` is a {kind} that mixes kinds of items ({what}). Pass a list of single values "
        "(examples, stacked into one tensor), a tuple of arrays sharing their first dimension "
        "(such as `(x, y)`), or one tensor of shape [N, ...]."
    )


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
    data : tensor, ndarray, tuple or list, Dataset or DataLoader
        A tensor or array gives one-element batches ``(x,)``; a tuple (or list) of arrays
        ``(x, y)`` gives ``(x_batch, y_batch)``; a list of single values (numbers or 0-d
        tensors, as Pyro's SVI tutorials write data) is stacked into one tensor of
        examples, and so is a nested list of numbers; a Dataset is wrapped in a DataLoader;
        a DataLoader is used as it is (its own batch size and order win).
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
        For unsupported or empty containers, lists that mix single values and arrays, NaN
        or complex values, mismatched lengths, and a bad ``batch_size``, ``shuffle`` (only
        ``True``/``False``) or ``seed``.

    Examples
    --------
    >>> x = np.zeros((10, 3), dtype=np.float32)
    >>> [tuple(b[0].shape) for b in as_batches(x, batch_size=4)]
    [(4, 3), (4, 3), (2, 3)]
    >>> data = [torch.tensor(1.0)] * 3 + [torch.tensor(0.0)] * 2   # Pyro's SVI Part I
    >>> next(iter(as_batches(data)))
    (tensor([1., 1., 1., 0., 0.]),)
    """
    batch_size = _checks.optional(_checks.positive_int, "batch_size", batch_size, example=128)
    shuffle = _checks.boolean("shuffle", shuffle)
    seed = _checks.seed("seed", seed)
    if isinstance(data, DataLoader):
        return data
    if isinstance(data, Dataset):
        generator = None
        if seed is not None:
            generator = torch.Generator().manual_seed(seed)
        try:
            size = len(data)  # type: ignore[arg-type]
        except TypeError:
            size = None  # a Dataset without a length: the batch size must say
        if size == 0:
            raise ValueError("`data` must hold at least one example, got an empty Dataset.")
        if size is None and batch_size is None:
            raise ValueError(
                f"`batch_size` must be given for a Dataset without a length "
                f"({type(data).__name__}), got None. Pass e.g. `batch_size=128`."
            )
        if size is not None:  # a batch never holds more than the data set (2**63 breaks islice)
            batch_size = min(batch_size or size, size)
        return DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator)
    if isinstance(data, (tuple, list)):
        tensors = _sequence_tensors(data)
    elif isinstance(data, (torch.Tensor, np.ndarray)):
        if data.ndim == 0:
            raise ValueError(
                "`data` must have a first (data) dimension, got a single value (0-d). "
                "Pass a tensor of shape [N, ...], e.g. `x.reshape(1)` for one example."
            )
        tensors = [as_tensor(data)]
    else:
        raise ValueError(
            "`data` must be a tensor, a NumPy array, a tuple of them, a list of single "
            f"values, a torch Dataset or a DataLoader, got {type(data).__name__}."
        )
    return TensorBatches(tensors, batch_size, shuffle=shuffle, seed=seed)
