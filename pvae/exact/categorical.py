r"""A Categorical site's log-table read straight off its ``probs``.

In an enumerated run (:mod:`pvae.exact.runs`) a Categorical latent :math:`i` takes its
values :math:`0, \dots, K-1` along its own tensor dimension, so its log-density table is
its ``probs`` tensor itself, the event axis standing for the site's own value:

.. math:: \log p(v_i = k \mid v_{S_i}) = \log \pi_{S_i}[k].

An observed Categorical with one observed value :math:`x` reads the column
:math:`\log \pi_{S_i}[x]`. Both skip the gather that ``log_prob`` does, and the
parameters of all such sites are validated together (:func:`validate`): two reductions
over every table instead of one constraint check per site; only if they fail is each site
checked on its own, so the error names it.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from pvae.exact import runs

__all__ = ["fast", "table", "validate"]

#: torch's tolerance for a simplex: each row of ``probs`` sums to 1 within this.
SIMPLEX_ATOL = 1e-6


def fast(name: str, r: runs.Run, supports: dict) -> bool:
    """Whether site ``name``'s table can be read off its ``probs`` (:func:`table`): a
    Categorical given by ``probs``, either enumerated in ``r`` with as many values as its
    support, or observed at one value."""
    msg = r.sites[name]
    fn = msg["fn"]
    if not isinstance(fn, torch.distributions.Categorical) or not r.direct(name):
        return False
    if name in r.dims:
        return not msg["is_observed"] and fn.probs.shape[-1] == supports[name].shape[0]
    return bool(msg["is_observed"]) and msg["mask"] is None and msg["value"].dim() == 0


def validate(names: list, found: dict) -> None:
    """Pyro's simplex check of the ``probs`` of every site in ``names`` (its run in
    ``found``), all at once; ValueError (from :meth:`pvae.exact.runs.Run.validate`, which
    names the site) if it fails. An observed value is checked against the support."""
    if not names:
        return
    arrays = [_array(found[n].sites[n]["fn"].probs) for n in names]
    low = np.concatenate([a.reshape(-1) for a in arrays]).min(initial=0.0)
    sums = np.concatenate([a.sum(-1).reshape(-1) for a in arrays])
    ok = bool(low >= 0) and bool((np.abs(sums - 1) < SIMPLEX_ATOL).all())
    for n, a in zip(names, arrays, strict=True):
        msg = found[n].sites[n]
        if msg["is_observed"]:
            v = msg["value"].item()
            ok = ok and math.isfinite(v) and v == math.floor(v) and 0 <= v < a.shape[-1]
    if not ok:
        for n in names:
            found[n].validate(n)


def _array(t: torch.Tensor) -> np.ndarray:
    """``t`` in NumPy (bfloat16, which NumPy lacks, widened exactly to float32)."""
    t = t.detach().cpu()
    return (t.float() if t.dtype == torch.bfloat16 else t).numpy()


def table(name: str, sc: tuple, r: runs.Run) -> torch.Tensor | None:
    """Site ``name``'s log-table over ``sc`` (scope order, float64, on the device of its
    ``probs``) from run ``r``; None if it varies along a dimension outside ``sc``.

    Examples
    --------
    >>> import pyro, pyro.distributions as dist
    >>> cpt = torch.tensor([[0.9, 0.1], [0.3, 0.7]], dtype=torch.float64)  # p(b | a)
    >>> def model():
    ...     a = pyro.sample("a", dist.Categorical(torch.tensor([0.5, 0.5], dtype=cpt.dtype)))
    ...     pyro.sample("b", dist.Categorical(cpt[a]))
    >>> supports = {s: torch.arange(2) for s in "ab"}
    >>> r = runs.run(model, (), {}, {"a": -1, "b": -2}, supports, {}, torch.float64)
    >>> table("b", ("a", "b"), r).exp()  # rows: a; columns: b
    tensor([[0.9000, 0.1000],
            [0.3000, 0.7000]], dtype=torch.float64)
    """
    msg = r.sites[name]
    probs = msg["fn"].probs
    shape = probs.shape
    n = len(shape) - 1  # batch dimensions
    inside = {r.dims[s] for s in sc if s != name}
    if any(shape[d] > 1 and d - n not in inside for d in range(n)):
        return None
    m = max([-d for d in inside] + [n])
    a = _array(probs).reshape((1,) * (m - n) + tuple(shape))
    if msg["is_observed"]:
        a = a[..., int(msg["value"])]
    axes = [m if s == name else m + r.dims[s] for s in sc]
    taken = set(axes)
    a = a.transpose(axes + [x for x in range(a.ndim) if x not in taken])
    with np.errstate(divide="ignore"):  # log 0 = -inf
        log_a = np.log(a.reshape(a.shape[: len(axes)]), dtype=np.float64)
    return torch.from_numpy(np.asarray(log_a)).to(probs.device)
