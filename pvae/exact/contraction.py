r"""Sum every latent out in one go: the whole joint table, or one ``einsum`` expression.

Two ways to compute

.. math:: \log Z = \log \sum_z \prod_i f_i(z_{S_i})

that beat a step-by-step elimination (:mod:`pvae.exact.elimination`) on small models,
where each step's fixed cost dominates:

* :func:`joint_marginals` -- for a joint of at most :data:`JOINT_MAX` states, add every
  log-table into the whole joint :math:`\log p(x, z)` (NumPy) and read :math:`\log Z`
  and every marginal off it, shifted by its largest entry (exact zeros stay zeros,
  nothing underflows);
* :func:`log_partition_einsum` -- one ``opt_einsum`` contraction of all factors in
  probability space, each factor divided by its largest entry first (its path cached per
  equation and shapes, :func:`path`). Differentiable, so the marginals come from one
  backward pass (:math:`\partial \log Z / \partial \log f_i = p(z_{S_i} \mid x)`; the
  parallel engine's global factors). A result below :data:`EINSUM_TINY` returns None,
  and the caller uses log space. The factor engine follows the same path in NumPy
  (:func:`pvae.exact.sweeps.compile_path`).

Examples
--------
>>> import torch
>>> prior = torch.tensor([0.2, 0.8], dtype=torch.float64).log()  # p(z)
>>> lik = torch.tensor([0.5, 0.1], dtype=torch.float64).log()  # p(x | z)
>>> log_z, margs = joint_marginals([(("z",), prior), (("z",), lik)], ["z"], {"z": 2})
>>> round(math.exp(log_z), 12), margs["z"]  # p(x) = 0.2 * 0.5 + 0.8 * 0.1
(0.18, tensor([0.5556, 0.4444], dtype=torch.float64))
>>> round(math.exp(float(log_partition_einsum([(("z",), prior), (("z",), lik)]))), 12)
0.18
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import torch

__all__ = ["EINSUM_TINY", "JOINT_MAX", "joint_marginals", "log_partition_einsum", "path"]

#: The largest joint (states of all latents together) that :func:`joint_marginals` lays
#: out whole.
JOINT_MAX = 2**14
#: A probability-space contraction whose result (after the factors' rescaling) is below
#: this is refused: intermediate entries could then have lost precision in float64's
#: subnormal range (below 2.2e-308), by up to the product of the summed-out cardinalities.
EINSUM_TINY = 1e-200

_PATHS: OrderedDict = OrderedDict()  # see `path`


def joint_marginals(tables: list, latents: list, cards: dict) -> tuple[float, dict]:
    r"""(:math:`\log Z`, every latent's marginal) from the whole joint table (NumPy).

    ``tables`` are ``(scope, log-table)`` pairs, each scope in ``latents``' order (the
    axes of its table in that order). With :math:`m` the joint's largest entry,
    :math:`\log Z = m + \log \sum_z e^{\log p(x, z) - m}`. The marginals (on the
    tables' device) are empty when :math:`Z` is 0 or not finite.
    """
    position = {s: i for i, s in enumerate(latents)}
    joint = np.zeros([cards[s] for s in latents])
    device = tables[0][1].device if tables else torch.device("cpu")
    for scope, table in tables:
        view = [1] * len(latents)
        for s in scope:
            view[position[s]] = cards[s]
        joint = joint + table.detach().cpu().numpy().reshape(view)
    top = float(joint.max()) if joint.size else -math.inf
    if not math.isfinite(top):
        return top, {}
    probs = np.exp(joint - top)
    total = float(probs.sum())
    probs /= total
    margs = {}
    for i, s in enumerate(latents):
        others = tuple(d for d in range(len(latents)) if d != i)
        margs[s] = torch.from_numpy(probs.sum(others) if others else probs).to(device)
    return top + math.log(total), margs


def log_partition_einsum(terms: list, max_entries: int | None = None) -> torch.Tensor | None:
    r""":math:`\log \sum_z \prod_i f_i(z_{S_i})` by one contraction in probability space.

    ``terms`` are ``(dims, log-table)`` pairs: ``dims`` names each axis of the table
    (any hashable; equal names are one variable, summed out). Each table is rescaled by
    its largest entry :math:`m_i` and exponentiated, so that

    .. math:: \log Z = \sum_i m_i + \log \sum_z \prod_i e^{\log f_i(z_{S_i}) - m_i}.

    None when the rescaled sum is below :data:`EINSUM_TINY` or not finite (0: data of
    probability 0, or an underflow), or when opt_einsum's path would create a table of
    more than ``max_entries`` entries (the caller's predicted limit): the caller then
    sums in log space.
    """
    expr, largest, _ = path(terms)
    if max_entries is not None and largest > max_entries:
        return None
    shifts = [float(t.detach().max()) if t.numel() else 0.0 for _, t in terms]
    shifts = [m if math.isfinite(m) else 0.0 for m in shifts]
    factors = [(t - m).exp() for (_, t), m in zip(terms, shifts, strict=True)]
    total = expr(*factors, backend="torch")
    if not bool(total.detach() >= EINSUM_TINY) or not bool(torch.isfinite(total.detach())):
        return None
    return total.log() + math.fsum(shifts)


def path(terms: list) -> tuple:
    """(opt_einsum's expression for ``terms``, the largest table it creates, the path as
    ``(input subscripts, [(positions, equation)])`` for :func:`pvae.exact.sweeps.compile_path`),
    kept for the last 64 equations and shapes (``terms`` as in :func:`log_partition_einsum`).

    Examples
    --------
    >>> chain = [(("a", "b"), torch.zeros(2, 3)), (("b", "c"), torch.zeros(3, 4))]
    >>> _, largest, (subscripts, steps) = path(chain)
    >>> subscripts, largest  # one letter per variable; the largest intermediate table
    (['ab', 'bc'], 1)
    """
    import opt_einsum

    symbols: dict = {}
    inputs = []
    for dims, _ in terms:
        letters = (symbols.setdefault(d, opt_einsum.get_symbol(len(symbols))) for d in dims)
        inputs.append("".join(letters))
    equation = ",".join(inputs) + "->"
    shapes = tuple(tuple(t.shape) for _, t in terms)
    key = (equation, shapes)
    found = _PATHS.get(key)
    if found is None:
        order, info = opt_einsum.contract_path(equation, *shapes, shapes=True, optimize="auto")
        expr = opt_einsum.contract_expression(equation, *shapes, optimize=order)
        steps = [(c[0], c[2]) for c in info.contraction_list]
        found = _PATHS[key] = (expr, int(info.largest_intermediate), (inputs, steps))
        if len(_PATHS) > 64:
            _PATHS.popitem(last=False)
    return found
