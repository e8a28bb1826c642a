r"""Training: the step object, the :func:`fit` loop, checkpoints, and data parallelism.

- :mod:`pvae.training.step` -- :class:`SVIStep`, one checked SVI update at a time
  (``init``/``update``, as NumPyro's ``SVI``), and :class:`TrainingDivergedError`;
- :mod:`pvae.training.elbos` -- :class:`AnalyticELBO`, pvae's analytic fast path as a
  :class:`pyro.infer.ELBO` (``pyro.infer.SVI`` takes it too);
- :mod:`pvae.training.loop` -- :func:`fit` and :class:`FitResult`, a loop over the step
  object; its pieces: :mod:`~pvae.training.inputs` (batches),
  :mod:`~pvae.training.metrics` and :mod:`~pvae.training.history` (the history's
  columns), :mod:`~pvae.training.callbacks` (progress, the monitored number, schedules),
  :mod:`~pvae.training.resume` (fit checkpoints), :mod:`~pvae.training.optim` (the
  optimizer adapter), :mod:`~pvae.training.rng` (random state);
- :mod:`pvae.training.checkpoint` -- :func:`save`, :func:`load` (safetensors, no pickle);
- :mod:`pvae.training.distributed` -- ``torchrun`` data parallelism.
"""

from pvae.training.checkpoint import load, save
from pvae.training.elbos import AnalyticELBO
from pvae.training.loop import FitResult, fit
from pvae.training.step import SVIStep, TrainingDivergedError

__all__ = ["AnalyticELBO", "FitResult", "SVIStep", "TrainingDivergedError", "fit", "load", "save"]
