r"""Evaluation of trained models: importance-weighted log p(x), PSIS, collapse, ArviZ.

- :mod:`pvae.evaluation.importance` -- :func:`evaluate` (ELBO and IWAE log p(x));
- :mod:`pvae.evaluation.psis` -- :func:`psis_khat`, :func:`pareto_khat`;
- :mod:`pvae.evaluation.inference_data` -- :func:`to_inference_data` (the ArviZ export);
- :mod:`pvae.evaluation.collapse` -- :func:`collapse_diagnostics`;
- :mod:`pvae.evaluation.estimators` -- :func:`gradient_variance` (enumeration, score function,
  reparameterisation).
"""

from pvae.evaluation.collapse import (
    CollapseDiagnostics,
    collapse_callback,
    collapse_diagnostics,
)
from pvae.evaluation.estimators import GradientVariance, gradient_variance
from pvae.evaluation.importance import Evaluation, evaluate
from pvae.evaluation.inference_data import to_inference_data
from pvae.evaluation.psis import KHatResult, pareto_khat, psis_khat

__all__ = [
    "CollapseDiagnostics",
    "Evaluation",
    "GradientVariance",
    "KHatResult",
    "collapse_callback",
    "collapse_diagnostics",
    "evaluate",
    "gradient_variance",
    "pareto_khat",
    "psis_khat",
    "to_inference_data",
]
