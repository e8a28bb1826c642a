r"""pvae: variational inference on Pyro and PyTorch, checked against exact answers.

Write a generative model :math:`p(z)\,p(x \mid z)` and a guide :math:`q(z \mid x)` as a Pyro
model/guide pair, train it with SVI, and check it against the truth:

- Bayes' rule made explicit: :func:`bayes_rule` (prior x likelihood -> joint -> evidence ->
  posterior) and :func:`enumerate_posterior` (exact posteriors of discrete latents);
- divergences and the ELBO identity :math:`\log p(x) = \mathrm{ELBO} + \mathrm{KL}(q \,\|\, p)`:
  :func:`kl_divergence`, :func:`elbo_decomposition`, :func:`compare`;
- models with amortized encoders: :class:`VAE`, :class:`ConditionalVAE` and, beside them, the
  deterministic :class:`Autoencoder`;
- training and evaluation: :func:`fit` (SVI), :func:`evaluate` (ELBO and the importance-weighted
  log-likelihood), :func:`save` / :func:`load`;
- diagnostics: :func:`to_inference_data` (ArviZ), :func:`psis_khat`,
  :func:`collapse_diagnostics`.

Submodules not re-exported here: :mod:`pvae.toy` (classic small models), :mod:`pvae.nn`
(network builders), :mod:`pvae.data` (datasets), :mod:`pvae.plot` (figures, imports
matplotlib), :mod:`pvae.distributed`.

Examples
--------
>>> import pvae
>>> t = pvae.bayes_rule({"disease": 0.01, "healthy": 0.99}, {"disease": 0.8, "healthy": 0.096})
>>> round(t.prob("disease"), 4)
0.0776
"""

__version__ = "0.1.0"

from pvae import toy
from pvae.bayes import BayesTable, bayes_rule
from pvae.checkpoint import load, save
from pvae.comparison import Comparison, ELBODecomposition, compare, elbo_decomposition
from pvae.diagnostics import (
    CollapseDiagnostics,
    KHatResult,
    collapse_callback,
    collapse_diagnostics,
    pareto_khat,
    psis_khat,
    to_inference_data,
)
from pvae.divergence import KLEstimate, kl_divergence, total_variation
from pvae.evaluation import Evaluation, evaluate
from pvae.exact import ExactPosterior, enumerate_posterior
from pvae.guides import MeanFieldGuide, cavi, fit_guide
from pvae.models import MODELS, VAE, Autoencoder, ConditionalVAE, ELBOTerms
from pvae.train import FitResult, TrainingDivergedError, fit

__all__ = [
    "__version__",
    # Bayes' rule and exact enumeration
    "BayesTable",
    "ExactPosterior",
    "bayes_rule",
    "enumerate_posterior",
    "toy",
    # divergences, the ELBO identity, comparisons, discrete guides
    "Comparison",
    "ELBODecomposition",
    "KLEstimate",
    "MeanFieldGuide",
    "cavi",
    "compare",
    "elbo_decomposition",
    "fit_guide",
    "kl_divergence",
    "total_variation",
    # models
    "MODELS",
    "VAE",
    "Autoencoder",
    "ConditionalVAE",
    "ELBOTerms",
    # training, evaluation, checkpoints
    "Evaluation",
    "FitResult",
    "TrainingDivergedError",
    "evaluate",
    "fit",
    "load",
    "save",
    # diagnostics
    "CollapseDiagnostics",
    "KHatResult",
    "collapse_callback",
    "collapse_diagnostics",
    "pareto_khat",
    "psis_khat",
    "to_inference_data",
]
