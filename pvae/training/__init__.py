r"""Training: the SVI loop :func:`fit`, checkpoints, and data parallelism.

- :mod:`pvae.training.fit` -- :func:`fit` and :class:`FitResult`;
- :mod:`pvae.training.checkpoint` -- :func:`save`, :func:`load` (safetensors, no pickle);
- :mod:`pvae.training.distributed` -- ``torchrun`` data parallelism.
"""

from pvae.training.checkpoint import load, save
from pvae.training.fit import FitResult, TrainingDivergedError, fit

__all__ = ["FitResult", "TrainingDivergedError", "fit", "load", "save"]
