r"""pvae: variational inference on Pyro and PyTorch, checked against exact answers.

Write a generative model :math:`p(z)\,p(x \mid z)` and a guide :math:`q(z \mid x)` as a Pyro
model/guide pair, train it with SVI, and check it against the truth:

- Bayes' rule made explicit: :func:`bayes_rule` (prior x likelihood -> joint -> evidence ->
  posterior) and :func:`enumerate_posterior` (exact posteriors of discrete latents);
- divergences and the ELBO identity :math:`\log p(x) = \mathrm{ELBO} + \mathrm{KL}(q \,\|\, p)`:
  :func:`kl_divergence`, :func:`elbo_decomposition`, :func:`compare`, and the amortization
  gap (:func:`amortization_gap`);
- models with amortized encoders: :class:`VAE`, :class:`ConditionalVAE` and, beside them, the
  deterministic :class:`Autoencoder`;
- training and evaluation: :func:`fit` (SVI), :func:`evaluate` (ELBO and the importance-weighted
  log-likelihood), :func:`save` / :func:`load`;
- diagnostics: :func:`to_inference_data` (ArviZ), :func:`psis_khat`,
  :func:`collapse_diagnostics`.

Names are imported on first use (PEP 562), so ``import pvae`` and the ``pvae`` command
start without loading torch and Pyro. Submodules: :mod:`pvae.toy` (classic small models),
:mod:`pvae.nn` (network builders), :mod:`pvae.data` (datasets), :mod:`pvae.plot` (figures;
imports matplotlib when a function runs), :mod:`pvae.distributed`.

Examples
--------
>>> import pvae
>>> t = pvae.bayes_rule({"disease": 0.01, "healthy": 0.99}, {"disease": 0.8, "healthy": 0.096})
>>> round(t.prob("disease"), 4)
0.0776
"""

__version__ = "0.1.0"

import importlib
from typing import TYPE_CHECKING, Any

# public name -> the module that defines it
_EXPORTS = {
    # Bayes' rule and exact enumeration
    "BayesTable": "pvae.bayes",
    "bayes_rule": "pvae.bayes",
    "ExactPosterior": "pvae.exact",
    "enumerate_posterior": "pvae.exact",
    # divergences, the ELBO identity, comparisons, discrete guides
    "KLEstimate": "pvae.divergence",
    "kl_divergence": "pvae.divergence",
    "total_variation": "pvae.divergence",
    "Comparison": "pvae.comparison",
    "ELBODecomposition": "pvae.comparison",
    "compare": "pvae.comparison",
    "elbo_decomposition": "pvae.comparison",
    "AmortizationGap": "pvae.amortization",
    "amortization_gap": "pvae.amortization",
    "vae_amortization_gap": "pvae.amortization",
    "GuideFit": "pvae.guides",
    "MeanFieldGuide": "pvae.guides",
    "cavi": "pvae.guides",
    "fit_guide": "pvae.guides",
    # models
    "MODELS": "pvae.models",
    "VAE": "pvae.models",
    "Autoencoder": "pvae.models",
    "ConditionalVAE": "pvae.models",
    "ELBOTerms": "pvae.models",
    # training, evaluation, checkpoints
    "FitResult": "pvae.train",
    "TrainingDivergedError": "pvae.train",
    "fit": "pvae.train",
    "Evaluation": "pvae.evaluation",
    "evaluate": "pvae.evaluation",
    "load": "pvae.checkpoint",
    "save": "pvae.checkpoint",
    # diagnostics (arviz itself is imported only when an export runs)
    "CollapseDiagnostics": "pvae.collapse",
    "KHatResult": "pvae.diagnostics",
    "collapse_callback": "pvae.collapse",
    "collapse_diagnostics": "pvae.collapse",
    "pareto_khat": "pvae.diagnostics",
    "psis_khat": "pvae.diagnostics",
    "to_inference_data": "pvae.diagnostics",
}
_SUBMODULES = ("data", "distributed", "nn", "plot", "toy")

__all__ = ["__version__", *_EXPORTS, *_SUBMODULES]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"pvae.{name}")
    else:
        raise AttributeError(f"module 'pvae' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # explicit imports for type checkers and IDEs
    from pvae import data, distributed, nn, plot, toy  # noqa: F401
    from pvae.amortization import (  # noqa: F401
        AmortizationGap,
        amortization_gap,
        vae_amortization_gap,
    )
    from pvae.bayes import BayesTable, bayes_rule  # noqa: F401
    from pvae.checkpoint import load, save  # noqa: F401
    from pvae.collapse import (  # noqa: F401
        CollapseDiagnostics,
        collapse_callback,
        collapse_diagnostics,
    )
    from pvae.comparison import (  # noqa: F401
        Comparison,
        ELBODecomposition,
        compare,
        elbo_decomposition,
    )
    from pvae.diagnostics import KHatResult, pareto_khat, psis_khat, to_inference_data  # noqa: F401
    from pvae.divergence import KLEstimate, kl_divergence, total_variation  # noqa: F401
    from pvae.evaluation import Evaluation, evaluate  # noqa: F401
    from pvae.exact import ExactPosterior, enumerate_posterior  # noqa: F401
    from pvae.guides import GuideFit, MeanFieldGuide, cavi, fit_guide  # noqa: F401
    from pvae.models import MODELS, VAE, Autoencoder, ConditionalVAE, ELBOTerms  # noqa: F401
    from pvae.train import FitResult, TrainingDivergedError, fit  # noqa: F401
