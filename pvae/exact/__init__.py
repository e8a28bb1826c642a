r"""Exact inference: Bayes' rule as a table, and exact posteriors of discrete latents.

The lowest modelling layer of pvae: everything here is an exact answer that the
variational layer (:mod:`pvae.vi`) and the evaluation layer (:mod:`pvae.evaluation`)
are checked against.

- :mod:`pvae.exact.bayes` -- :func:`bayes_rule` and the :class:`BayesTable`
  (prior x likelihood -> joint -> evidence -> posterior);
- :mod:`pvae.exact.posterior` -- :func:`enumerate_posterior` and :class:`ExactPosterior`;
- :mod:`pvae.exact.toy` -- classic small models with published answers.
"""

from pvae.exact.bayes import BayesTable, bayes_rule
from pvae.exact.posterior import ExactPosterior, enumerate_posterior

__all__ = ["BayesTable", "ExactPosterior", "bayes_rule", "enumerate_posterior"]
