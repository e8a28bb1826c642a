r"""Data: tensors and batches, binarization, data files, and the bundled data sets.

- :mod:`pvae.data.batches` -- :func:`as_batches`, :class:`TensorBatches`, :func:`as_tensor`:
  everything pvae trains on passes through :func:`as_batches`;
- :mod:`pvae.data.binarization` -- :func:`binarize`, :class:`DynamicBinarized` and
  :func:`check_support` (do the data suit the likelihood?);
- :mod:`pvae.data.files` -- :func:`read_idx` (the MNIST format) and :func:`load_array`
  (``.npy``/``.npz``/``.csv``, never a pickle);
- :mod:`pvae.data.datasets` -- :class:`ImageData` records: :func:`digits` (scikit-learn),
  :func:`fashion_mnist` (Debian's ``dataset-fashion-mnist`` IDX files), :func:`load_dataset`.

Data sets come from installed packages or files on disk, never from the network.
"""

from pvae.data.batches import TensorBatches, as_batches, as_tensor
from pvae.data.binarization import DynamicBinarized, binarize, check_support
from pvae.data.datasets import (
    FASHION_MNIST_DIR,
    ImageData,
    digits,
    fashion_mnist,
    load_dataset,
)
from pvae.data.files import load_array, read_idx

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
