r"""Evaluation of trained models: importance-weighted log p(x), PSIS, collapse, ArviZ.

- :mod:`pvae.evaluation.importance` -- :func:`evaluate` (ELBO and IWAE log p(x));
- :mod:`pvae.evaluation.diagnostics` -- :func:`psis_khat`, :func:`to_inference_data`;
- :mod:`pvae.evaluation.collapse` -- :func:`collapse_diagnostics`.
"""

from pvae.evaluation.collapse import (
    CollapseDiagnostics,
    collapse_callback,
    collapse_diagnostics,
)
from pvae.evaluation.diagnostics import KHatResult, pareto_khat, psis_khat, to_inference_data
from pvae.evaluation.importance import Evaluation, evaluate

__all__ = [
    "CollapseDiagnostics",
    "Evaluation",
    "KHatResult",
    "collapse_callback",
    "collapse_diagnostics",
    "evaluate",
    "pareto_khat",
    "psis_khat",
    "to_inference_data",
]
