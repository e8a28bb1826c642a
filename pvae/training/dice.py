r"""The DiCE expectation of :class:`~pyro.infer.TraceEnum_ELBO`, with a direct path for one factor.

Pyro's ``TraceEnum_ELBO`` turns a pair of packed traces into the ELBO with its DiCE operator
(Foerster et al. 2018): every cost (each model site's :math:`\log p`, each guide site's
:math:`-\log q`) is weighted by the probability of the guide's enumerated values and
Monte Carlo draws it depends on, found by a sum-product contraction over a tensor ring.

When the model enumerates nothing, all sites share one set of plates, and the guide has
exactly one DiCE factor :math:`f` (one enumerated site, as the label :math:`y` of a
semi-supervised VAE; or one score-function site) whose packed dims every cost has, that
contraction is the identity: each cost's weight is :math:`e^{f}` itself, and

.. math::

    \mathrm{ELBO} = \sum_{\text{cells } i:\ e^{f_i} > 0} e^{f_i} \sum_{\text{costs } c} c_i .

:func:`dice_elbo` computes that sum directly (the same number as Pyro's to float rounding,
the same gradients, cells of weight 0 dropped as Pyro drops them). A guide with no factor
at all (every site reparameterized: a VAE) gives every cost weight 1, and the ELBO is the
sum of the costs. Every other case goes to Pyro's own ``_compute_dice_elbo``.

References
----------
1. Foerster, J., Farquhar, G., Al-Shedivat, M., Rocktaeschel, T., Xing, E. P. and
   Whiteson, S. (2018). DiCE: The infinitely differentiable Monte Carlo estimator. ICML.
"""

from __future__ import annotations

from typing import Any

import torch
from pyro.distributions.util import is_identically_zero
from pyro.infer.traceenum_elbo import _compute_dice_elbo, _compute_model_factors
from pyro.infer.util import compute_site_dice_factor
from pyro.ops import packed

__all__ = ["dice_elbo"]


def _direct_costs(model_trace: Any, guide_trace: Any) -> tuple[torch.Tensor | None, list] | None:
    """``(f, costs)`` when the direct path applies (see the module docstring), ``f`` None
    when the guide has no DiCE factor at all; None where Pyro's contraction is needed."""
    costs, log_factors, ordering, _, _ = _compute_model_factors(model_trace, guide_trace)
    if log_factors:  # the model enumerates: Pyro's tensor contraction
        return None
    terms = [t for ts in costs.values() for t in ts]
    ordinals, factors = set(costs), []
    for name, site in guide_trace.nodes.items():
        if site["type"] != "sample":
            continue
        factor, log_denom = compute_site_dice_factor(site)
        if not is_identically_zero(log_denom):  # sequential enumeration
            return None
        if not is_identically_zero(factor):
            factors.append(factor)
        ordinals.add(ordering[name])
        terms.append(packed.neg(site["packed"]["log_prob"]))
    if not terms or not all(isinstance(t, torch.Tensor) for t in terms):
        return None
    if not factors:  # every cost has weight 1
        return None, terms
    if len(factors) != 1 or len(ordinals) != 1 or not isinstance(factors[0], torch.Tensor):
        return None
    f = factors[0]
    dims = getattr(f, "_pyro_dims", None)
    for t in terms:
        if (t.shape, t.dtype, getattr(t, "_pyro_dims", None)) != (f.shape, f.dtype, dims):
            return None
    return f, terms


def dice_elbo(model_trace: Any, guide_trace: Any) -> torch.Tensor | float:
    r"""The ELBO of packed ``TraceEnum_ELBO`` traces: Pyro's DiCE value, computed directly
    when the guide has a single factor (see the module docstring).

    Examples
    --------
    >>> import pyro, pyro.distributions as dist
    >>> from pyro.infer.traceenum_elbo import _compute_dice_elbo
    >>> def model(x):
    ...     with pyro.plate("data", len(x)):
    ...         c = pyro.sample("c", dist.Bernoulli(0.3))
    ...         pyro.sample("x", dist.Normal(2.0 * c, 1.0), obs=x)
    >>> def guide(x):
    ...     with pyro.plate("data", len(x)):
    ...         pyro.sample("c", dist.Bernoulli(torch.tensor([0.2, 0.9])),
    ...                     infer={"enumerate": "parallel"})
    >>> elbo = pyro.infer.TraceEnum_ELBO(max_plate_nesting=1)
    >>> ((mt, gt),) = elbo._get_traces(model, guide, (torch.tensor([0.1, 2.5]),), {})
    >>> round(float(dice_elbo(mt, gt) - _compute_dice_elbo(mt, gt)), 5)
    0.0
    """
    found = _direct_costs(model_trace, guide_trace)
    if found is None:
        return _compute_dice_elbo(model_trace, guide_trace)
    f, terms = found
    if f is None:
        return sum(t.sum() for t in terms)
    prob, cost = f.exp(), terms[0]
    for t in terms[1:]:
        cost = cost + t
    keep = prob > 0  # as Pyro: a cell of weight 0 adds nothing (even where its cost is -inf)
    if not bool(keep.all()):
        prob, cost = prob.masked_select(keep), cost.masked_select(keep)
    return torch.dot(prob.reshape(-1), cost.reshape(-1))
