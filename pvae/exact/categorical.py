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
    tensors = [found[n].sites[n]["fn"].probs for n in names]
    low = torch.cat([t.reshape(-1) for t in tensors]).min()
    sums = torch.cat([t.sum(-1).reshape(-1) for t in tensors])
    ok = bool(low >= 0) and bool(((sums - 1).abs() < SIMPLEX_ATOL).all())
    for n in names:
        msg = found[n].sites[n]
        if msg["is_observed"]:
            value, k = msg["value"], msg["fn"].probs.shape[-1]
            ok = ok and bool(value == value.floor()) and 0 <= float(value) < k
    if not ok:
        for n in names:
            found[n].validate(n)


def table(name: str, sc: tuple, r: runs.Run) -> torch.Tensor | None:
    """Site ``name``'s log-table over ``sc`` (scope order, float64) from run ``r``; None
    if it varies along a dimension outside ``sc``.

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
    n = probs.dim() - 1  # batch dimensions
    parents = [s for s in sc if s != name]
    inside = {r.dims[s] for s in parents}
    shape = probs.shape
    if any(shape[d] > 1 for d in range(n) if d - n not in inside):
        return None
    m = max([-d for d in inside] + [n])
    t = probs.reshape((1,) * (m - n) + tuple(shape))
    if msg["is_observed"]:
        t = t[..., int(msg["value"])]
    axes = [m if s == name else m + r.dims[s] for s in sc]
    taken = set(axes)
    t = t.permute(axes + [a for a in range(t.dim()) if a not in taken])
    return t.reshape(t.shape[: len(axes)]).log().to(torch.float64)
