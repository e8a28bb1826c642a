r"""Data: tensors and batches, binarization, and the bundled data sets.

Data sets come from installed packages or files on disk, never from the network: the 8x8
digits from scikit-learn, Fashion-MNIST from Debian's ``dataset-fashion-mnist`` IDX files.
"""

from pvae.data.datasets import *  # noqa: F403
from pvae.data.datasets import __all__  # noqa: F401
