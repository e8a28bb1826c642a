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
start without loading torch and Pyro. The code is a package per layer, imports running one
way (``docs/architecture.md``):

- :mod:`pvae.data` -- tensors, batches and the bundled data sets;
- :mod:`pvae.exact` -- Bayes tables, exact posteriors, toy models (:mod:`pvae.toy`);
- :mod:`pvae.models` -- VAE, ConditionalVAE, Autoencoder and their networks (:mod:`pvae.nn`);
- :mod:`pvae.vi` -- divergences, discrete guides, the ELBO decomposition, comparisons;
- :mod:`pvae.training` -- :func:`fit`, checkpoints, data parallelism (:mod:`pvae.distributed`);
- :mod:`pvae.evaluation` -- importance sampling, PSIS, collapse, the ArviZ export;
- :mod:`pvae.app` -- figures (:mod:`pvae.plot`), the demo and report, the ``pvae`` command.

Examples
--------
>>> import pvae
>>> t = pvae.bayes_rule({"disease": 0.01, "healthy": 0.99}, {"disease": 0.8, "healthy": 0.096})
>>> round(t.prob("disease"), 4)
0.0776
"""

__version__ = "0.2.0"

import importlib
from typing import TYPE_CHECKING, Any

from pvae import _compat

# public name -> the module that defines it
_EXPORTS = {
    # Bayes' rule and exact enumeration
    "BayesTable": "pvae.exact.bayes",
    "bayes_rule": "pvae.exact.bayes",
    "ExactPosterior": "pvae.exact",
    "enumerate_posterior": "pvae.exact",
    # divergences, the ELBO identity, comparisons, discrete guides
    "KLEstimate": "pvae.vi.divergence",
    "kl_divergence": "pvae.vi.divergence",
    "total_variation": "pvae.vi.divergence",
    "Comparison": "pvae.vi.comparison",
    "ELBODecomposition": "pvae.vi.decomposition",
    "compare": "pvae.vi.comparison",
    "elbo_decomposition": "pvae.vi.decomposition",
    "AmortizationGap": "pvae.vi.amortization",
    "amortization_gap": "pvae.vi.amortization",
    "vae_amortization_gap": "pvae.vi.amortization",
    "GuideFit": "pvae.vi.guides",
    "MeanFieldGuide": "pvae.vi.guides",
    "cavi": "pvae.vi.coordinate_ascent",
    "fit_guide": "pvae.vi.guides",
    # models
    "MODELS": "pvae.models",
    "VAE": "pvae.models",
    "Autoencoder": "pvae.models",
    "ConditionalVAE": "pvae.models",
    "SemiSupervisedVAE": "pvae.models",
    "MixtureVAE": "pvae.models",
    "DiscreteGap": "pvae.vi.discrete_gap",
    "discrete_amortization_gap": "pvae.vi.discrete_gap",
    "GradientVariance": "pvae.evaluation.estimators",
    "gradient_variance": "pvae.evaluation.estimators",
    "ELBOTerms": "pvae.models",
    # training, evaluation, checkpoints
    "FitResult": "pvae.training.result",
    "SVIStep": "pvae.training.step",
    "AnalyticELBO": "pvae.training.elbos",
    "TrainingDivergedError": "pvae.training.loop",
    "fit": "pvae.training.loop",
    "Evaluation": "pvae.evaluation",
    "evaluate": "pvae.evaluation",
    "load": "pvae.training.checkpoint",
    "save": "pvae.training.checkpoint",
    # diagnostics (arviz itself is imported only when an export runs)
    "CollapseDiagnostics": "pvae.evaluation.collapse",
    "KHatResult": "pvae.evaluation.psis",
    "collapse_callback": "pvae.evaluation.collapse",
    "collapse_diagnostics": "pvae.evaluation.collapse",
    "pareto_khat": "pvae.evaluation.psis",
    "psis_khat": "pvae.evaluation.psis",
    "to_inference_data": "pvae.evaluation.inference_data",
}
# public packages and the short submodule names (aliases of their new homes)
_SUBMODULES = {
    "exact": "pvae.exact",
    "vi": "pvae.vi",
    "models": "pvae.models",
    "training": "pvae.training",
    "evaluation": "pvae.evaluation",
    "app": "pvae.app",
    "data": "pvae.data",
    "toy": "pvae.exact.toy",
    "plot": "pvae.app.plot",
    "nn": "pvae.models.networks",
    "distributed": "pvae.training.distributed",
}
_compat.install()

__all__ = ["__version__", *_EXPORTS, *_SUBMODULES]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(_SUBMODULES[name])
    else:
        raise AttributeError(f"module 'pvae' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # explicit imports for type checkers and IDEs
    from pvae import app, data, evaluation, exact, models, training, vi  # noqa: F401
    from pvae.evaluation import (  # noqa: F401
        CollapseDiagnostics,
        Evaluation,
        KHatResult,
        collapse_callback,
        collapse_diagnostics,
        evaluate,
        pareto_khat,
        psis_khat,
        to_inference_data,
    )
    from pvae.evaluation.estimators import GradientVariance, gradient_variance  # noqa: F401
    from pvae.exact import (  # noqa: F401
        BayesTable,
        ExactPosterior,
        bayes_rule,
        enumerate_posterior,
        toy,  # noqa: F401
    )
    from pvae.models import (  # noqa: F401
        MODELS,
        VAE,
        Autoencoder,
        ConditionalVAE,
        ELBOTerms,
        MixtureVAE,
        SemiSupervisedVAE,
    )
    from pvae.training import FitResult, TrainingDivergedError, fit, load, save  # noqa: F401
    from pvae.training.elbos import AnalyticELBO  # noqa: F401
    from pvae.training.step import SVIStep  # noqa: F401
    from pvae.vi import (  # noqa: F401
        AmortizationGap,
        Comparison,
        ELBODecomposition,
        GuideFit,
        KLEstimate,
        MeanFieldGuide,
        amortization_gap,
        cavi,
        compare,
        elbo_decomposition,
        fit_guide,
        kl_divergence,
        total_variation,
        vae_amortization_gap,
    )
    from pvae.vi.discrete_gap import DiscreteGap, discrete_amortization_gap  # noqa: F401
