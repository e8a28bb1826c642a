r"""The bundled and local data sets, as :class:`ImageData` records.

Data sets come from installed packages or files on disk, never from the network, as
flattened images in ``[0, 1]`` with integer labels and a fixed train/test split:

* :func:`digits` -- scikit-learn's bundled 8x8 handwritten digits (no download);
* :func:`fashion_mnist` -- Fashion-MNIST from IDX files on disk (:func:`~pvae.data.read_idx`);
* :func:`load_dataset` -- either of those by name, or a ``.npy``/``.npz``/``.csv`` file
  (:func:`~pvae.data.load_array`).

``binarize="static"`` or ``"dynamic"`` binarizes them (:mod:`pvae.data.binarization`).

References
----------
1. Xiao, H., Rasul, K. and Vollgraf, R. (2017). Fashion-MNIST: a novel image dataset for
   benchmarking machine learning algorithms. arXiv:1708.07747.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pvae._checks import open_fraction, path_arg
from pvae._checks import seed as check_seed
from pvae.data.batches import as_tensor
from pvae.data.binarization import DynamicBinarized, unit_interval
from pvae.data.files import load_array, read_idx

__all__ = [
    "DIGITS_NUM_TRAIN",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIR",
    "ImageData",
    "digits",
    "fashion_mnist",
    "load_dataset",
]

#: Where Debian's ``dataset-fashion-mnist`` package installs the IDX files.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
DIGITS_NUM_TRAIN = 1500


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


def _check_options(binarize: str | None, seed: int) -> tuple[str | None, int]:
    if binarize is not None and not (
        isinstance(binarize, str) and binarize in ("static", "dynamic")
    ):
        raise ValueError(
            f"`binarize` must be None, 'static' or 'dynamic', got {binarize!r} "
            f"({type(binarize).__name__})."
        )
    seed = check_seed("seed", seed)
    if seed is None:
        raise ValueError("`seed` must be an integer (it fixes the binarized test set), got None.")
    return binarize, seed


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
    binarize, seed = _check_options(binarize, seed)
    if binarize is not None:
        generator = torch.Generator().manual_seed(seed)
        # the test set first, so that "static" and "dynamic" share the same binary test set
        x_test = torch.bernoulli(unit_interval(x_test, name), generator=generator)
        if binarize == "static":
            x_train = torch.bernoulli(unit_interval(x_train, name), generator=generator)
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
    binarize, seed = _check_options(binarize, seed)
    folder = FASHION_MNIST_DIR if root is None else path_arg("root", root)
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
    labels as ``"y"``). ``uint8`` arrays are divided by 255; other values are kept (they must
    be finite). A seeded random ``test_fraction`` of the rows (at least one) becomes the test
    set, and at least one row must remain for training.

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
        For wrong shapes, NaN or infinite values, non-integer labels, a bad ``binarize`` or
        ``seed``, or a ``test_fraction`` that is not in ``(0, 1)`` or leaves no training row.

    Examples
    --------
    >>> load_dataset("digits", binarize="static").x_test.unique().tolist()
    [0.0, 1.0]
    """
    path = path_arg("source", source)
    binarize, seed = _check_options(binarize, seed)
    if str(source) == "digits":
        return digits(binarize, seed=seed)
    if str(source) in ("fashion-mnist", "fashion_mnist"):
        return fashion_mnist(root, binarize=binarize, seed=seed)
    # before reading a possibly large file
    test_fraction = open_fraction("test_fraction", test_fraction, example=0.1)
    if not path.is_file():
        raise FileNotFoundError(
            f"`source` must be 'digits', 'fashion-mnist' or a .npy/.npz/.csv file, got "
            f"{str(source)!r}, which is neither a known name nor a file."
        )
    array = load_array(path)
    labels = None
    if path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as archive:  # read once already: readable
            names = list(archive.keys())
        if "y" in names and names != ["y"]:
            labels = load_array(path, key="y")
    if array.ndim not in (2, 3) or len(array) < 2 or array[0].size == 0:
        raise ValueError(
            f"the array in {path.name} must have shape (N, D) or (N, H, W) with N >= 2 "
            f"and D >= 1, got {array.shape}. Reshape it so that rows are examples."
        )
    num_test = max(1, round(test_fraction * len(array)))
    if num_test > len(array) - 1:
        raise ValueError(
            f"`test_fraction`={test_fraction:g} of {len(array)} rows in {path.name} leaves "
            f"{num_test} test and {len(array) - num_test} training rows; both need at least "
            f"one. Pass a `test_fraction` between {1 / len(array):.3g} and "
            f"{1 - 1 / len(array):.3g}."
        )
    if array.dtype != np.uint8 and not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise ValueError(
            f"the array in {path.name} holds {bad} NaN or infinite value(s); images must be "
            "finite. Remove or impute them."
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
        whole = np.issubdtype(labels.dtype, np.integer) or (
            np.isfinite(labels).all() and (labels == np.round(labels)).all()
        )
        if not whole or labels.dtype == bool:
            raise ValueError(
                f"`y` in {path.name} must hold integer class labels, got dtype {labels.dtype}."
            )
        y = torch.from_numpy(labels.astype(np.int64))
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    test, train = order[:num_test], order[num_test:]
    return _finish(
        x[train], None if y is None else y[train], x[test], None if y is None else y[test],
        image_shape=image_shape, name=path.name, binarize=binarize, seed=seed,
    )  # fmt: skip
