r"""One run of a plate-free model with chosen latents enumerated on chosen tensor dimensions.

The factor engine (:mod:`pvae.exact.factors`) reads each site's factor off a few runs of
the model. Each run here is one messenger, not Pyro's trace and enumeration handlers: a
latent site in ``dims`` takes its whole support along its own tensor dimension (Pyro's
parallel enumeration, ``expand=False``), a latent in ``fixed`` takes that value, and every
sample site's distribution and value are kept. Log-densities are computed afterwards and
only for the sites asked for (:meth:`Run.log_prob`, inside :func:`quiet`), with exact zeros
(:func:`pvae._traces.zeros.exact_log_prob`).

A site's distribution is built from the values of the sites it depends on, so the
non-singleton dimensions of its ``batch_shape`` name the enumerated sites it depends on
(:meth:`Run.scope`); :mod:`pvae.exact.factors` confirms them on the log-densities.

The model runs without Pyro's argument validation (its cost is paid for every site of
every run); :meth:`Run.validate` checks the parameters of the sites whose tables are kept,
over the whole enumerated table, and the support of every observed value.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyro
import torch
from pyro.distributions.util import scale_and_mask
from pyro.poutine.messenger import Messenger
from pyro.poutine.util import site_is_subsample
from torch.distributions import constraints

from pvae._traces.zeros import exact_log_prob
from pvae.exact.sites import default_dtype, is_deterministic

__all__ = [
    "Run",
    "UnknownLatent",
    "check_points",
    "from_trace",
    "log_joint",
    "log_joint_at",
    "quiet",
    "run",
]


class UnknownLatent(ValueError):
    """A latent site met in a run that is neither enumerated nor fixed."""


class _Set(Messenger):
    """Set each latent to its enumerated support (``dims``) or its ``fixed`` value."""

    def __init__(self, dims: dict, supports: dict, fixed: dict, expand: bool = False):
        super().__init__()
        self.dims, self.supports, self.fixed, self.expand = dims, supports, fixed, expand
        self.sites: dict[str, dict] = {}

    def _pyro_sample(self, msg: dict) -> None:
        if site_is_subsample(msg) or is_deterministic(msg):
            return
        name = msg["name"]
        if not msg["is_observed"]:
            if name in self.dims:
                support = self.supports[name]  # [K, *event]
                lead = (1,) * (-self.dims[name] - 1)
                msg["value"] = support.reshape(support.shape[:1] + lead + support.shape[1:])
            elif name in self.fixed:
                value = self.fixed[name]
                if self.expand:  # to the site's plates (nothing enumerated)
                    value = value.expand(msg["fn"].batch_shape + msg["fn"].event_shape)
                msg["value"] = value
            else:
                raise UnknownLatent(
                    f"latent site {name!r} occurs in an enumerated run but not in the plain "
                    "run (its existence depends on sampled values)"
                )
            msg["done"] = True
        self.sites[name] = msg


class Run:
    """The sample sites of one run: ``sites[name]`` is Pyro's message (fn, value, mask, scale)."""

    def __init__(self, sites: dict[str, dict], dims: dict[str, int], dtype: torch.dtype):
        self.sites, self.dims, self.dtype = sites, dims, dtype

    def scope(self, name: str) -> set:
        """The enumerated sites along whose dimension site ``name``'s density may vary."""
        found = self.scope_of_batch(name)
        if name in self.dims:
            found.add(name)
        return found

    def scope_of_batch(self, name: str) -> set:
        """The enumerated sites along whose dimension site ``name``'s distribution
        (its ``batch_shape``: its parameters) varies."""
        shape = self.sites[name]["fn"].batch_shape
        n = len(shape)
        return {s for s, d in self.dims.items() if -d <= n and shape[d] > 1}

    def varies_along(self, name: str, dim: int) -> bool:
        """Whether site ``name``'s distribution varies along (negative) dimension ``dim``."""
        shape = self.sites[name]["fn"].batch_shape
        return -dim <= len(shape) and shape[dim] > 1

    def log_prob(self, name: str) -> torch.Tensor:
        """Unscaled, unmasked ``log p(value)`` of site ``name`` (exact zeros); call it inside
        :func:`quiet`."""
        msg = self.sites[name]
        fn, value = msg["fn"], msg["value"]
        if self.direct(name):
            return _direct_log_prob(fn, value)
        return exact_log_prob(fn, value, fn.log_prob(value, *msg["args"], **msg["kwargs"]))

    def direct(self, name: str) -> bool:
        """Whether site ``name``'s log-density is read off ``probs`` (a Categorical or
        Bernoulli given by ``probs``): then, once :meth:`validate` passed, it has no NaN."""
        msg = self.sites[name]
        fn = msg["fn"]
        return (
            type(fn) in _DIRECT
            and "probs" in fn.__dict__
            and not msg["args"]
            and not msg["kwargs"]
        )

    def validate(self, name: str) -> None:
        """Pyro's argument validation of site ``name`` (its parameters over the whole
        enumerated table; an observed value against the support). ValueError if it fails."""
        msg = self.sites[name]
        fn = msg["fn"]
        for base in _bases(fn):
            try:
                checks = dict(base.arg_constraints)
            except NotImplementedError:  # a distribution that declares none (torch warns)
                checks = {}
            for param, constraint in checks.items():
                if constraints.is_dependent(constraint) or param not in base.__dict__:
                    continue  # as torch: not checkable, or derived from another parameter
                value = getattr(base, param)
                if isinstance(value, torch.Tensor) and not bool(constraint.check(value).all()):
                    raise ValueError(
                        f"site {name!r}: parameter {param!r} of its {type(base).__name__} "
                        f"is outside {constraint} for some values of the sites it depends on"
                    )
        if msg["is_observed"]:
            support = fn.support
            if not bool(support.check(msg["value"]).all()):
                raise ValueError(
                    f"Observed site {name!r}: the observed value is outside the support "
                    f"({support}) of its {type(fn).__name__}."
                )


#: Their ``log_prob`` is read off ``probs`` directly (:func:`_direct_log_prob`).
_DIRECT = (
    torch.distributions.Categorical,
    pyro.distributions.Categorical,
    torch.distributions.Bernoulli,
    pyro.distributions.Bernoulli,
)


def _direct_log_prob(fn: Any, value: torch.Tensor) -> torch.Tensor:
    r""":math:`\log p(v)` of a Categorical or Bernoulli given by ``probs`` (see
    :meth:`Run.direct`), read off ``probs``: exact zeros for free (:math:`\log 0 =
    -\infty`, where torch's clamp gives :math:`\log\epsilon`) and a few tensor ops
    instead of a dozen."""
    probs = fn.probs
    if isinstance(fn, torch.distributions.Bernoulli):
        return torch.where(value == 1, probs.log(), (-probs).log1p())
    if probs.dim() == 1 and value.dim() == 0:  # one value (a plain run): an index
        return probs[value.long()].log()
    index = value.long().unsqueeze(-1)
    n = max(index.dim(), probs.dim())
    index = index.reshape((1,) * (n - index.dim()) + tuple(index.shape))
    probs = probs.reshape((1,) * (n - probs.dim()) + tuple(probs.shape))
    return torch.take_along_dim(probs, index, dim=-1).squeeze(-1).log()


def _bases(fn: Any) -> list:
    """``fn`` and the distributions it wraps (Independent, Masked, ...)."""
    out = [fn]
    while hasattr(out[-1], "base_dist"):
        out.append(out[-1].base_dist)
    return out


@contextmanager
def quiet(dtype: torch.dtype) -> Iterator[None]:
    """``dtype`` as the default, no autograd, no argument validation: how runs are made and
    their log-densities computed."""
    with default_dtype(dtype), torch.no_grad(), pyro.validation_enabled(False):
        yield


def run(model, args, kwargs, dims: dict[str, int], supports: dict, fixed: dict, dtype) -> Run:
    """Run ``model`` once with ``dims`` enumerated and ``fixed`` held (see the module)."""
    return _run(_Set(dims, supports, fixed), model, args, kwargs, dtype)


def _run(setter: _Set, model, args, kwargs, dtype) -> Run:
    with quiet(dtype), setter:
        model(*args, **kwargs)
    return Run(setter.sites, setter.dims, dtype)


def from_trace(trace, dtype) -> Run:
    """The sample sites of a plain Pyro trace, as a :class:`Run` with nothing enumerated."""
    sites = {
        name: site
        for name, site in trace.nodes.items()
        if site["type"] == "sample" and not site_is_subsample(site) and not is_deterministic(site)
    }
    return Run(sites, {}, dtype)


def log_joint(r: Run) -> float:
    """The unscaled log joint of a run with nothing enumerated (:mod:`pvae.exact.sites`):
    each latent's own log-density unmasked, each observation's masked."""
    logs, rest = [], []  # Python floats (one-value Categoricals); the other sites
    for name in r.sites:
        p = _one_value(r, name)
        if p is None:
            rest.append(name)
        else:  # log 0 = -inf; a negative or NaN probability gives NaN, as torch's log
            logs.append(math.log(p) if p > 0 else -math.inf if p == 0 else math.nan)
    if rest:
        terms = []
        with quiet(r.dtype):
            for name in rest:
                msg = r.sites[name]
                log_p = r.log_prob(name)
                if msg["is_observed"]:
                    log_p = scale_and_mask(log_p, mask=msg["mask"])
                terms.append(log_p.reshape(-1).to(torch.float64))
        logs.append(float(torch.cat(terms).sum()))
    return sum(logs, 0.0)


def _one_value(r: Run, name: str) -> float | None:
    """``probs[k]`` of site ``name`` if it is a Categorical given by 1-D ``probs`` at one
    value ``k`` in its support (unmasked, if observed): its log-density is its log."""
    msg = r.sites[name]
    fn, value = msg["fn"], msg["value"]
    if (
        not isinstance(fn, torch.distributions.Categorical)
        or (msg["is_observed"] and msg["mask"] is not None)
        or not r.direct(name)
        or fn.probs.dim() != 1
        or value.dim() != 0
    ):
        return None
    v = value.item()
    k = int(v)
    return float(fn.probs[k]) if k == v and 0 <= k < fn.probs.shape[0] else None


def log_joint_at(model, args, kwargs, assignment: dict, dtype) -> float:
    """The unscaled log joint of one run with every latent set to ``assignment`` (each
    value broadcast to its site's plates).

    NaN when the run meets a latent site not in ``assignment`` (control flow).
    """
    try:
        r = _run(_Set({}, {}, assignment, expand=True), model, args, kwargs, dtype)
    except UnknownLatent:
        return math.nan
    return log_joint(r)


def check_points(supports: dict, drawn: dict | None) -> list[dict[str, int]]:
    """The full assignments (support indices) at which the engines' soundness checks
    compare themselves with plain runs: the plain run's own draw ``drawn`` (``{site:
    value}``, if given), every latent at its first support value, where Python control
    flow of the form ``if z.sum() > 0:`` on an enumerated tensor disagrees, and every
    latent at its last, where ``if z.min() > 0:`` or ``z[0]`` disagrees; one equal to an
    earlier one is left out. ``supports[site]`` is the site's support, ``[K, *event]``.

    Examples
    --------
    >>> supports = {"a": torch.tensor([0, 1]), "b": torch.tensor([0, 1, 2])}
    >>> check_points(supports, {"a": torch.tensor(0), "b": torch.tensor(0)})
    [{'a': 0, 'b': 0}, {'a': 1, 'b': 2}]
    """
    points = []
    if drawn is not None:
        points.append({s: _index_of(support, drawn[s]) for s, support in supports.items()})
    first = dict.fromkeys(supports, 0)
    last = {s: len(support) - 1 for s, support in supports.items()}
    for indices in (first, last):
        if all(indices != seen for seen in points):
            points.append(indices)
    return points


def _index_of(support: torch.Tensor, value: torch.Tensor) -> int:
    """The index of ``value`` in ``support`` (``[K, *event]``); 0 if it is not there."""
    if support.dim() == 1 and value.numel() == 1:  # scalar values: compare numbers
        v = value.item()
        return next((i for i, u in enumerate(support.tolist()) if u == v), 0)
    value = value.reshape(support.shape[1:])
    equal = (support == value).reshape(len(support), -1).all(-1)
    return int(equal.to(torch.int64).argmax())
