r"""Data: bundled and local datasets, and adapters from arrays to minibatches.

Everything pvae trains on passes through :func:`as_batches`, which accepts a tensor, a
NumPy array, a tuple of them (``(x, y)``), a :class:`torch.utils.data.Dataset` or a
:class:`torch.utils.data.DataLoader`, and yields tuples of tensors that are passed to a
model as ``model(*batch)``.

Data sets come back as an :class:`ImageData` record (flattened images in ``[0, 1]``,
integer labels, a fixed train/test split):

* :func:`digits` -- scikit-learn's bundled 8x8 handwritten digits (no download);
* :func:`fashion_mnist` -- Fashion-MNIST from IDX files on disk (:func:`read_idx`);
* :func:`load_dataset` -- either of those by name, or a ``.npy``/``.npz``/``.csv`` file
  (:func:`load_array`).

Binary likelihoods need binary pixels: ``binarize="static"`` draws one Bernoulli sample
per pixel once (with a fixed seed); ``binarize="dynamic"`` draws a fresh one for every
minibatch (:class:`DynamicBinarized`). :func:`check_support` says whether data suit a
likelihood.
"""

from __future__ import annotations

import gzip
import math
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

__all__ = [
    "FASHION_MNIST_DIR",
    "DynamicBinarized",
    "ImageData",
    "TensorBatches",
    "as_batches",
    "as_tensor",
    "binarize",
    "check_support",
    "digits",
    "fashion_mnist",
    "load_array",
    "load_dataset",
    "read_idx",
]

#: Where Debian's ``dataset-fashion-mnist`` package installs the IDX files.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
DIGITS_NUM_TRAIN = 1500


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


# --------------------------------------------------------------------------- binarization


def binarize(x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Draw binary pixels :math:`b \sim \mathrm{Bernoulli}(x)`, one draw per entry.

    Used once with a fixed seed this is *static* binarization (Salakhutdinov & Murray,
    2008); applied to every minibatch afresh it is *dynamic* binarization
    (:class:`DynamicBinarized`), which acts as data augmentation.

    Parameters
    ----------
    x : torch.Tensor
        Intensities in :math:`[0, 1]`, read as probabilities of a pixel being on.
    generator : torch.Generator, optional
        Random source (default: torch's global generator).

    Returns
    -------
    torch.Tensor
        Zeros and ones, same shape and dtype as ``x``.

    Raises
    ------
    ValueError
        If ``x`` has values outside :math:`[0, 1]`.

    Examples
    --------
    >>> binarize(torch.tensor([0.0, 1.0, 1.0])).tolist()
    [0.0, 1.0, 1.0]
    """
    return torch.bernoulli(_unit_interval(x, "x"), generator=generator)


def _unit_interval(x: Any, name: str) -> torch.Tensor:
    x = as_tensor(x, name=name)
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(
            f"`{name}` must hold probabilities in [0, 1] to be binarized, got values in "
            f"[{float(x.min()):.4g}, {float(x.max()):.4g}]. Rescale it first (e.g. x / 255)."
        )
    return x


class DynamicBinarized(Dataset):
    """A Dataset that draws fresh binary pixels every time an example is read.

    Pass it to :func:`pvae.fit` (through :func:`as_batches`, which wraps a Dataset in
    a DataLoader): each minibatch is one vectorised Bernoulli draw from the grey-scale
    intensities, so every epoch sees a new binarization (dynamic binarization).

    Parameters
    ----------
    x : torch.Tensor
        Intensities in :math:`[0, 1]`, shape ``(N, D)``.
    y : torch.Tensor, optional
        Labels, shape ``(N,)``; when given, items are ``(x, y)`` pairs.

    Examples
    --------
    >>> ds = DynamicBinarized(torch.full((4, 3), 0.5))
    >>> len(ds), sorted(set(ds[0][0].tolist())) <= [0.0, 1.0]
    (4, True)
    >>> [tuple(b[0].shape) for b in as_batches(ds, batch_size=3)]
    [(3, 3), (1, 3)]
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
        x = _unit_interval(x, "x")
        if y is not None and len(y) != len(x):
            raise ValueError(f"`y` must have {len(x)} labels, one per row of `x`, got {len(y)}.")
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, ...]]:
        # DataLoader calls this once per batch: one Bernoulli draw for the whole batch.
        xb = torch.bernoulli(self.x[list(indices)])
        if self.y is None:
            return [(row,) for row in xb]
        return list(zip(xb, self.y[list(indices)], strict=True))


def check_support(data: Any, likelihood: str, *, name: str = "data") -> None:
    """Check that data lie where a likelihood puts its mass.

    ``"bernoulli"`` needs zeros and ones, ``"continuous_bernoulli"`` needs values in
    :math:`[0, 1]`, ``"gaussian"`` needs finite values. Grey-scale images under a Bernoulli
    likelihood are the classic mistake (the ELBO is then not a bound on anything).

    Parameters
    ----------
    data : torch.Tensor or numpy.ndarray
        The observations.
    likelihood : str
        ``"bernoulli"``, ``"continuous_bernoulli"`` or ``"gaussian"``.
    name : str
        Argument name used in the error message.

    Raises
    ------
    ValueError
        If a value is outside the support, naming how many and the fix.

    Examples
    --------
    >>> check_support(torch.tensor([0.0, 1.0]), "bernoulli")
    >>> check_support(torch.tensor([0.5]), "bernoulli")
    Traceback (most recent call last):
    ...
    ValueError: `data` must be binary (0 or 1) for likelihood='bernoulli', ...
    """
    x = as_tensor(data, name=name)
    if likelihood == "bernoulli":
        bad = int(((x != 0) & (x != 1)).sum())
        if bad:
            raise ValueError(
                f"`{name}` must be binary (0 or 1) for likelihood='bernoulli', got {bad} "
                f"value(s) that are not, in [{float(x.min()):.4g}, {float(x.max()):.4g}]. "
                "Binarize it (binarize='static' or 'dynamic'), or use "
                "likelihood='continuous_bernoulli' for intensities in [0, 1]."
            )
    elif likelihood == "continuous_bernoulli":
        bad = int(((x < 0) | (x > 1)).sum())
        if bad:
            raise ValueError(
                f"`{name}` must lie in [0, 1] for likelihood='continuous_bernoulli', got {bad} "
                f"value(s) outside, in [{float(x.min()):.4g}, {float(x.max()):.4g}]. "
                "Rescale it (e.g. x / 255), or use likelihood='gaussian'."
            )
    elif likelihood == "gaussian":
        bad = int((~torch.isfinite(x)).sum())
        if bad:
            raise ValueError(f"`{name}` must be finite for likelihood='gaussian', got {bad} inf.")
    else:
        raise ValueError(
            "`likelihood` must be 'bernoulli', 'continuous_bernoulli' or 'gaussian', "
            f"got {likelihood!r}."
        )


# --------------------------------------------------------------------------- data sets


@dataclass(frozen=True)
class ImageData:
    """A data set of flattened images with labels and a fixed train/test split.

    Attributes
    ----------
    x_train, x_test : torch.Tensor
        Images, shape ``(N, H * W)``, float32 in :math:`[0, 1]` (binary after static
        binarization). With ``binarize="dynamic"``, ``x_train`` keeps the grey-scale
        intensities (use :attr:`train` to train) and ``x_test`` is binarized once.
    y_train, y_test : torch.Tensor
        Integer labels (int64), shape ``(N,)``; ``None`` for unlabelled files.
    image_shape : tuple of int
        ``(H, W)``, to draw a row of ``x`` as an image.
    name : str
        Where the data came from.
    binarize : str or None
        ``None``, ``"static"`` or ``"dynamic"``.
    classes : tuple of str
        Label names, indexed by label.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor | None
    x_test: torch.Tensor
    y_test: torch.Tensor | None
    image_shape: tuple[int, int]
    name: str
    binarize: str | None = None
    classes: tuple[str, ...] = ()

    @property
    def x_dim(self) -> int:
        """Pixels per image, the ``x_dim`` of a model."""
        return int(self.x_train.shape[1])

    @property
    def train(self) -> torch.Tensor | DynamicBinarized:
        """What to pass to ``fit``: ``x_train``, or a :class:`DynamicBinarized` of it."""
        if self.binarize == "dynamic":
            return DynamicBinarized(self.x_train)
        return self.x_train

    def __repr__(self) -> str:
        return (
            f"ImageData(name={self.name!r}, train={tuple(self.x_train.shape)}, "
            f"test={tuple(self.x_test.shape)}, image_shape={self.image_shape}, "
            f"binarize={self.binarize!r})"
        )


def _finish(
    x_train: torch.Tensor,
    y_train: torch.Tensor | None,
    x_test: torch.Tensor,
    y_test: torch.Tensor | None,
    *,
    image_shape: tuple[int, int],
    name: str,
    binarize: str | None,
    seed: int,
    classes: tuple[str, ...] = (),
) -> ImageData:
    if binarize not in (None, "static", "dynamic"):
        raise ValueError(f"`binarize` must be None, 'static' or 'dynamic', got {binarize!r}.")
    if binarize is not None:
        generator = torch.Generator().manual_seed(seed)
        # the test set first, so that "static" and "dynamic" share the same binary test set
        x_test = torch.bernoulli(_unit_interval(x_test, name), generator=generator)
        if binarize == "static":
            x_train = torch.bernoulli(_unit_interval(x_train, name), generator=generator)
    return ImageData(x_train, y_train, x_test, y_test, image_shape, name, binarize, tuple(classes))


def digits(binarize: str | None = None, *, seed: int = 0) -> ImageData:
    """scikit-learn's bundled 8x8 handwritten digits, scaled to :math:`[0, 1]`.

    1797 images of the digits 0-9 (UCI "Optical Recognition of Handwritten Digits"), 16
    grey levels divided by 16. The split is fixed and needs no random numbers: the first
    1500 images (in scikit-learn's order) are the training set, the last 297 the test set;
    both hold every digit about equally often.

    Parameters
    ----------
    binarize : {None, "static", "dynamic"}
        ``None`` keeps intensities (for ``continuous_bernoulli``/``gaussian``);
        ``"static"`` binarizes both sets once; ``"dynamic"`` binarizes the test set once
        and the training set afresh every batch (see :attr:`ImageData.train`).
    seed : int
        Seed of the binarization draw.

    Returns
    -------
    ImageData

    Examples
    --------
    >>> d = digits()
    >>> d.x_train.shape, d.x_test.shape, d.image_shape
    (torch.Size([1500, 64]), torch.Size([297, 64]), (8, 8))
    >>> float(d.x_train.max()), d.y_train[:5].tolist()
    (1.0, [0, 1, 2, 3, 4])
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy((bunch.data / 16.0).astype(np.float32))
    y = torch.from_numpy(bunch.target.astype(np.int64))
    n = DIGITS_NUM_TRAIN
    return _finish(
        x[:n], y[:n], x[n:], y[n:], image_shape=(8, 8), name="digits",
        binarize=binarize, seed=seed, classes=tuple(str(i) for i in range(10)),
    )  # fmt: skip


_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), raw or gzip-compressed.

    The format: two zero bytes, a type code (``0x08`` unsigned byte, ``0x09`` signed
    byte, ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64), the number of
    dimensions, each dimension as a big-endian uint32, then the values, big-endian,
    row-major.

    Parameters
    ----------
    path : str or Path
        The file; gzip is detected from its first two bytes, not its name.

    Returns
    -------
    numpy.ndarray
        In native byte order, with the file's shape.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it is not an IDX file or is truncated.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "a-idx1-ubyte"
    >>> _ = p.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]))
    >>> read_idx(p).tolist()
    [7, 8, 9]
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such IDX file: {path}")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(
            f"{path} is not an IDX file: expected a header 00 00 <type> <ndim>, got "
            f"{raw[:4].hex(' ')}."
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path} is truncated: its header promises {ndim} dimensions.")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    count = math.prod(shape)
    if len(raw) - header != count * dtype.itemsize:
        raise ValueError(
            f"{path} is truncated or padded: shape {shape} needs {count * dtype.itemsize} "
            f"bytes of data, the file has {len(raw) - header}."
        )
    array = np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def _find_idx(root: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (root / name).is_file():
            return root / name
    raise FileNotFoundError(
        f"Fashion-MNIST file {stem}[.gz] not found in {root}. Install Debian's package "
        f"(`apt-get install dataset-fashion-mnist`, which puts the files in "
        f"{FASHION_MNIST_DIR}) or download the four IDX files from "
        "https://github.com/zalandoresearch/fashion-mnist and pass `root=` their folder."
    )


def fashion_mnist(
    root: str | Path | None = None, *, binarize: str | None = None, seed: int = 0
) -> ImageData:
    """Fashion-MNIST (Xiao et al., 2017): 28x28 grey images of 10 kinds of clothing.

    Reads the four IDX files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each raw or ``.gz``) from
    ``root``, or else from :data:`FASHION_MNIST_DIR`, where Debian's
    ``dataset-fashion-mnist`` package installs them. Nothing is downloaded. The split is
    the published one: 60,000 training and 10,000 test images. Pixels are divided by 255.

    Parameters
    ----------
    root : str or Path, optional
        Folder holding the IDX files.
    binarize : {None, "static", "dynamic"}
        As in :func:`digits`.
    seed : int
        Seed of the binarization draw.

    Returns
    -------
    ImageData

    Raises
    ------
    FileNotFoundError
        If a file is missing, saying how to get them.
    ValueError
        If the files disagree (image and label counts, image sizes).

    Examples
    --------
    >>> fashion_mnist("/nonexistent")
    Traceback (most recent call last):
    ...
    FileNotFoundError: Fashion-MNIST file train-images-idx3-ubyte[.gz] not found in ...
    """
    folder = FASHION_MNIST_DIR if root is None else Path(root)
    parts = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(_find_idx(folder, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(_find_idx(folder, f"{prefix}-labels-idx1-ubyte"))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"{folder}: {prefix} images must have shape (N, H, W) and labels (N,), "
                f"got {images.shape} and {labels.shape}."
            )
        parts[split] = (images, labels)
    shapes = {parts[s][0].shape[1:] for s in parts}
    if len(shapes) != 1:
        raise ValueError(f"{folder}: train and test images differ in size: {sorted(shapes)}.")
    (height, width) = shapes.pop()

    def to_tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, ...]:
        x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)
        return x, torch.from_numpy(labels.astype(np.int64))

    x_train, y_train = to_tensors(*parts["train"])
    x_test, y_test = to_tensors(*parts["test"])
    return _finish(
        x_train, y_train, x_test, y_test, image_shape=(height, width), name="fashion-mnist",
        binarize=binarize, seed=seed, classes=FASHION_MNIST_CLASSES,
    )  # fmt: skip


def load_array(path: str | Path, *, key: str | None = None) -> np.ndarray:
    """Load a numeric array from a ``.npy``, ``.npz`` or ``.csv`` file, without pickle.

    Parameters
    ----------
    path : str or Path
        The file. A ``.csv`` may start with one header line; values are comma-separated.
    key : str, optional
        For ``.npz``: which array. Default: the only one, else the one named ``"x"``.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        For other suffixes, object (pickled) arrays, an ambiguous or missing ``key``, or
        non-numeric CSV cells.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "x.csv"
    >>> _ = p.write_text("a,b\\n0,1\\n1,0\\n")
    >>> load_array(p).tolist()
    [[0.0, 1.0], [1.0, 0.0]]
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                names = list(archive.keys())
                if key is None:
                    key = names[0] if len(names) == 1 else "x" if "x" in names else None
                if key not in names:
                    raise ValueError(
                        f"`key` must name an array in {path.name}, one of {names}, got {key!r}."
                    )
                return archive[key]
        if suffix in (".csv", ".txt"):
            with path.open() as f:
                first = f.readline()
            try:
                [float(v) for v in first.split(",")]
                skip = 0
            except ValueError:
                skip = 1  # a header line
            return np.loadtxt(path, delimiter=",", skiprows=skip, ndmin=2, dtype=np.float64)
    except ValueError as err:
        if "`key`" in str(err):
            raise
        raise ValueError(f"cannot read {path} as a numeric array: {err}") from None
    raise ValueError(f"`path` must end in .npy, .npz or .csv, got {path.name!r}.")


def load_dataset(
    source: str | Path,
    *,
    binarize: str | None = None,
    root: str | Path | None = None,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> ImageData:
    """A data set by name (``"digits"``, ``"fashion-mnist"``) or from a file.

    A file holds an array of shape ``(N, D)`` or ``(N, H, W)`` (an ``.npz`` may add
    labels as ``"y"``). ``uint8`` arrays are divided by 255; other values are kept. A
    seeded random ``test_fraction`` of the rows becomes the test set.

    Parameters
    ----------
    source : str or Path
        ``"digits"``, ``"fashion-mnist"``, or a ``.npy``/``.npz``/``.csv`` path.
    binarize : {None, "static", "dynamic"}
        As in :func:`digits`.
    root : str or Path, optional
        Folder of the Fashion-MNIST files.
    test_fraction : float
        Share of a file's rows held out, in ``(0, 1)``.
    seed : int
        Seed of the split and of the binarization.

    Returns
    -------
    ImageData

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        For wrong shapes, NaN, or an unusable ``test_fraction``.

    Examples
    --------
    >>> load_dataset("digits", binarize="static").x_test.unique().tolist()
    [0.0, 1.0]
    """
    if str(source) == "digits":
        return digits(binarize, seed=seed)
    if str(source) in ("fashion-mnist", "fashion_mnist"):
        return fashion_mnist(root, binarize=binarize, seed=seed)
    if not 0 < test_fraction < 1:  # before reading a possibly large file
        raise ValueError(
            f"`test_fraction` must be in (0, 1), got {test_fraction}. Pass the share of rows "
            "to hold out, e.g. 0.1."
        )
    path = Path(source)
    labels = None
    if path.suffix.lower() == ".npz" and path.is_file():
        with np.load(path, allow_pickle=False) as archive:
            labels = archive["y"] if "y" in archive else None
    array = load_array(path)
    if array.ndim not in (2, 3) or len(array) < 2:
        raise ValueError(
            f"the array in {path.name} must have shape (N, D) or (N, H, W) with N >= 2, "
            f"got {array.shape}. Reshape it so that rows are examples."
        )
    if array.ndim == 3:
        image_shape = (int(array.shape[1]), int(array.shape[2]))
    else:
        side = math.isqrt(array.shape[1])
        image_shape = (side, side) if side * side == array.shape[1] else (1, int(array.shape[1]))
    scale = 255.0 if array.dtype == np.uint8 else 1.0
    x = as_tensor(array.reshape(len(array), -1) / scale, name=path.name, dtype=torch.float32)
    y = None
    if labels is not None:
        if labels.shape != (len(array),):
            raise ValueError(
                f"`y` in {path.name} must have shape ({len(array)},), got {labels.shape}."
            )
        y = torch.from_numpy(labels.astype(np.int64))
    num_test = max(1, round(test_fraction * len(x)))
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    test, train = order[:num_test], order[num_test:]
    return _finish(
        x[train], None if y is None else y[train], x[test], None if y is None else y[test],
        image_shape=image_shape, name=path.name, binarize=binarize, seed=seed,
    )  # fmt: skip
