r"""Exact inference: Bayes' rule as a table, and exact posteriors of discrete latents.

The lowest modelling layer of pvae: everything here is an exact answer that the
variational layer (:mod:`pvae.vi`) and the evaluation layer (:mod:`pvae.evaluation`)
are checked against.

- :mod:`pvae.exact.bayes` -- :func:`bayes_rule` and the :class:`BayesTable`
  (prior x likelihood -> joint -> evidence -> posterior);
- :mod:`pvae.exact.enumeration` -- :func:`enumerate_posterior`: Bayes' rule on a whole model;
- :mod:`pvae.exact.posterior` -- :class:`ExactPosterior`, the record it returns;
- :mod:`pvae.exact.parallel`, :mod:`pvae.exact.factored` (with :mod:`pvae.exact.factors`,
  :mod:`pvae.exact.scopes`, :mod:`pvae.exact.runs` and :mod:`pvae.exact.elimination`),
  :mod:`pvae.exact.sequential` -- its three engines,
  and :mod:`pvae.exact.sites`, the mask and scale convention they share;
- :mod:`pvae.exact.queries` -- conditional queries (``given=``) on an exact posterior;
- :mod:`pvae.exact.toy` -- classic small models with published answers.
"""

from pvae.exact.bayes import BayesTable, bayes_rule
from pvae.exact.enumeration import enumerate_posterior
from pvae.exact.posterior import ExactPosterior

__all__ = ["BayesTable", "ExactPosterior", "bayes_rule", "enumerate_posterior"]
