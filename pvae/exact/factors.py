r"""Recover each site's factor -- its scope and log-table -- from a plate-free Pyro model.

The factor engine (:mod:`pvae.exact.elimination`) needs, for every sample site :math:`i`,
the latent sites its density depends on (its scope :math:`S_i`) and the table
:math:`\log p(v_i \mid v_{S_i})` over all their joint values. Both are read off runs of
the model in which a chosen set :math:`E` of at most :data:`MAX_DIMS` latent sites is
enumerated (each on its own tensor dimension, Pyro's parallel enumeration) and every
other latent is held at the value it took in one plain run:

1. **scopes** -- the latents are enumerated in consecutive chunks of :data:`MAX_DIMS`;
   a site's log-density varies along the dimension of every enumerated site it depends on,
   so the non-singleton dimensions of its log-prob tensor, over all chunks, are its scope;
2. **tables** -- a site whose scope fell inside one chunk already has its table; the rest
   are covered greedily by runs that enumerate the union of several scopes at once (at most
   :data:`MAX_DIMS` sites), so a network of a thousand sites needs a few dozen runs;
3. **soundness** -- in every table run a site's log-density must vary only along its own
   scope (else :class:`ControlFlow`), and :func:`check` compares the factors' log joint at
   two full assignments with plain runs of the model, which catches Python control flow
   on sampled values that hides a dependency.

A model with plates or with batch-shaped sites is not handled here (:func:`unsupported`
says why); the parallel engine keeps it, where a plate costs :math:`O(NK)`.

Masks and scales follow :mod:`pvae.exact.sites`: a latent's own factor is unmasked and
unscaled, an observation's factor is masked, and the one common ``poutine.scale`` is
applied outside the sum.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import pyro
import torch
from pyro import poutine
from pyro.distributions.util import scale_and_mask
from pyro.poutine.messenger import Messenger
from pyro.poutine.util import site_is_subsample

from pvae.exact.sites import common_scale, default_dtype, exact_log_probs, is_deterministic

__all__ = ["MAX_DIMS", "ControlFlow", "Factor", "Factors", "check", "recover", "unsupported"]

#: Latent sites enumerated in one run of the model (torch allows 64 tensor dimensions).
MAX_DIMS = 56


class ControlFlow(ValueError):
    """The model's Python code does not treat enumerated values as a batch."""


class Factor(NamedTuple):
    """One site's factor: its scope (latent sites, trace order) and log-table over it."""

    site: str
    scope: tuple[str, ...]
    log_table: torch.Tensor  # float64, shape [K_s for s in scope]


class Factors(NamedTuple):
    """What :func:`recover` returns."""

    latents: list[str]
    supports: dict[str, torch.Tensor]  # site -> [K, *event_shape]
    factors: list[Factor]  # one per latent (its own factor first) and per dependent obs
    scale: float  # the common poutine.scale
    free: float  # scaled, masked log-density of the observations that depend on no latent
    free_unscaled: float
    runs: int  # enumerated runs of the model


def unsupported(plain) -> str:
    """Why the factor engine cannot take this model ("" if it can)."""
    for name, site in plain.nodes.items():
        if site["type"] != "sample" or site_is_subsample(site):
            continue
        if any(f.vectorized for f in site["cond_indep_stack"]):
            frame = next(f for f in site["cond_indep_stack"] if f.vectorized)
            return f"site {name!r} is inside pyro.plate {frame.name!r}"
        if not is_deterministic(site) and site["fn"].batch_shape != torch.Size():
            return f"site {name!r} has batch shape {tuple(site['fn'].batch_shape)}"
    return ""


class _Probe(Messenger):
    """Enumerate the sites in ``enumerate`` in parallel; hold the other latents fixed."""

    def __init__(self, enumerate: set, fixed: dict):
        super().__init__()
        self.enumerate, self.fixed = enumerate, fixed

    def _pyro_sample(self, msg: dict) -> None:
        name = msg["name"]
        if msg["is_observed"] or site_is_subsample(msg) or is_deterministic(msg):
            return
        if name in self.enumerate:
            msg["infer"] = {**msg["infer"], "enumerate": "parallel", "expand": False}
        elif name in self.fixed:
            msg["value"], msg["is_observed"] = self.fixed[name], True
        else:
            raise ControlFlow(
                f"latent site {name!r} occurs in an enumerated run but not in the plain run "
                "(its existence depends on sampled values)"
            )


def _run(model, args, kwargs, enumerated: set, fixed: dict, dtype, targets=None):
    """One enumerated run: ``{site: (unscaled log-prob, mask, scale)}`` and each enum dim.

    With ``targets``, only those sites' log-densities are computed.
    """
    probe = _Probe(enumerated, fixed)
    enum = poutine.enum(probe(model), first_available_dim=-1)
    with default_dtype(dtype), torch.no_grad(), pyro.validation_enabled(False):
        try:
            trace = poutine.trace(enum).get_trace(*args, **kwargs)
            trace.compute_log_prob(
                (lambda name, site: name in targets) if targets is not None else (lambda *_: True)
            )
        except (RuntimeError, ValueError, IndexError, TypeError, NotImplementedError) as err:
            if isinstance(err, RuntimeError) and "alloc" in str(err).lower():
                raise ValueError(
                    f"Running the model with {len(enumerated)} latent sites enumerated at once "
                    f"ran out of memory ({err}): some site's density depends on so many latent "
                    "sites that its own table does not fit. Exact enumeration cannot take this "
                    "model; approximate the posterior with a guide and SVI (`pvae.fit`)."
                ) from err
            raise ControlFlow(
                f"{type(err).__name__} when the model ran with {len(enumerated)} latent sites "
                f"enumerated: {err}"
            ) from err
    exact_log_probs(trace)
    dims, terms = {}, {}
    for name, site in trace.nodes.items():
        if site["type"] != "sample" or site_is_subsample(site) or is_deterministic(site):
            continue
        if name in enumerated:
            dims[name] = site["infer"]["_enumerate_dim"]
        if "unscaled_log_prob" not in site:
            continue
        terms[name] = (site["unscaled_log_prob"], site["mask"], site["scale"])
    return dims, terms


def _varies(tensor: torch.Tensor, dims: dict) -> set:
    """The enumerated sites along whose dimension ``tensor`` is not a singleton."""
    n = tensor.dim()
    return {s for s, d in dims.items() if -d <= n and tensor.shape[d] > 1}


def _table(tensor: torch.Tensor, scope: tuple, dims: dict) -> torch.Tensor:
    """``tensor`` as a table over ``scope`` (each axis one site, in scope order)."""
    m = max([-d for d in dims.values()] + [tensor.dim()])
    t = tensor.reshape((1,) * (m - tensor.dim()) + tuple(tensor.shape))
    axes = [m + dims[s] for s in scope]
    rest = [a for a in range(m) if a not in axes]
    t = t.permute(axes + rest)
    return t.reshape(t.shape[: len(axes)]).to(torch.float64)


def _chunks(items: list, size: int) -> list:
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


def recover(model, args, kwargs, plain, latents: list[str], dtype, max_table: int) -> Factors:
    """Every site's scope and log-table (see the module docstring).

    Raises
    ------
    ControlFlow
        If the model fails on enumerated values, or a site's density varies with a site
        outside the scope found for it.
    ValueError
        If a site's own table would have more than ``max_table`` entries.
    """
    index = {s: i for i, s in enumerate(latents)}
    supports = {
        s: plain.nodes[s]["fn"]
        .enumerate_support(expand=False)
        .reshape((-1,) + tuple(plain.nodes[s]["fn"].event_shape))
        for s in latents
    }
    # held at their first support value, so that the plain run's own (random) assignment
    # is a real test of the factors (see `check`)
    fixed = {s: supports[s][0].expand(plain.nodes[s]["value"].shape).clone() for s in latents}
    scope: dict[str, set] = {}
    found: dict[str, tuple] = {}  # site -> (tensor, dims) of a run holding its whole scope
    chunks = _chunks(latents, MAX_DIMS)
    runs = 0
    first_terms = None
    for chunk in chunks:
        dims, terms = _run(model, args, kwargs, set(chunk), fixed, dtype)
        runs += 1
        first_terms = first_terms or terms
        for name, (log_p, _, _) in terms.items():
            scope.setdefault(name, set()).update(_varies(log_p, dims))
            if name in dims:
                scope[name].add(name)
        for name in terms:
            if scope[name] and scope[name] <= set(chunk):
                found.setdefault(name, (terms[name], dims))
    ordered = {n: tuple(sorted(sc, key=index.__getitem__)) for n, sc in scope.items()}
    found = {n: run for n, run in found.items() if set(ordered[n]) <= set(run[1])}
    for name, sc in ordered.items():
        size = math.prod(supports[s].shape[0] for s in sc)
        if size > max_table:
            raise ValueError(
                f"the factor of site {name!r} alone is a table of {size:.4g} entries over "
                f"{len(sc)} latent sites, above `max_table`={max_table:.4g}. Exact "
                "enumeration cannot take this model at this size; approximate the posterior "
                "with a guide and SVI (`pvae.fit`)."
            )
    pending = [n for n, sc in ordered.items() if sc and n not in found]
    while pending:
        enumerated: set = set()
        for name in pending:
            if len(enumerated | set(ordered[name])) <= MAX_DIMS:
                enumerated |= set(ordered[name])
        if not enumerated:
            name = pending[0]
            raise ValueError(
                f"site {name!r} depends on {len(ordered[name])} latent sites, more than the "
                f"{MAX_DIMS} one run of the model can enumerate; its table alone would have "
                f"{math.prod(supports[s].shape[0] for s in ordered[name]):.3g} entries."
            )
        targets = {n for n in pending if set(ordered[n]) <= enumerated}
        dims, terms = _run(model, args, kwargs, enumerated, fixed, dtype, targets)
        runs += 1
        for name in pending:
            if set(ordered[name]) <= enumerated:
                found[name] = (terms[name], dims)
        pending = [n for n in pending if n not in found]
    return _assemble(latents, supports, ordered, found, first_terms, runs)


def _assemble(latents, supports, ordered, found, first_terms, runs) -> Factors:
    factors, scales, free, free_unscaled = [], {}, 0.0, 0.0
    for name, sc in ordered.items():
        if not sc:  # an observation that depends on no latent
            log_p, mask, scale = first_terms[name]
            term = scale_and_mask(log_p, mask=mask).to(torch.float64)
            free_unscaled += float(term.sum())
            free += float(scale * term.sum())
            continue
        (log_p, mask, scale), dims = found[name]
        extra = _varies(log_p, dims) - set(sc)
        if extra:
            raise ControlFlow(
                f"the log-density of site {name!r} varies with {sorted(extra)!r}, which the "
                "scope runs did not find it to depend on (Python control flow on sampled "
                "values)"
            )
        if name not in supports:  # an observation: masked, inside the sum
            log_p = scale_and_mask(log_p, mask=mask)
        scales[name] = scale
        factors.append(Factor(name, sc, _table(log_p, sc, dims)))
    return Factors(
        latents=list(latents),
        supports=supports,
        factors=factors,
        scale=common_scale(scales),
        free=free,
        free_unscaled=free_unscaled,
        runs=runs,
    )


def log_joint(factors: Factors, indices: dict[str, int]) -> float:
    """The unscaled log joint of the factors at one full assignment (support indices)."""
    total = factors.free_unscaled
    for f in factors.factors:
        total += float(f.log_table[tuple(indices[s] for s in f.scope)])
    return total


def check(factors: Factors, log_joint_at: Any, plain: tuple[dict, float]) -> str:
    """ "" if the factors agree with the model at two full assignments, else why not.

    The enumerated runs hold the latents they do not enumerate at their first support
    value, so both test assignments differ from it: the plain run's own draw ``plain``
    (``({site: value}, its unscaled log joint)``), and the last support value of every site,
    scored by ``log_joint_at(assignment)``, the unscaled log joint of one plain run with
    every latent set to it (:func:`pvae.exact.sequential.log_joint_at`).
    """
    sizes = {s: factors.supports[s].shape[0] for s in factors.latents}
    drawn, drawn_log_joint = plain
    at_plain = {}
    for s in factors.latents:
        support = factors.supports[s]
        equal = (support == drawn[s].reshape(support.shape[1:])).reshape(len(support), -1)
        at_plain[s] = int(equal.all(-1).to(torch.int64).argmax())
    last = {s: k - 1 for s, k in sizes.items()}
    for indices, score in ((at_plain, drawn_log_joint), (last, None)):
        ours = log_joint(factors, indices)
        if score is None:
            score = log_joint_at({s: factors.supports[s][i] for s, i in indices.items()})
        same = (score == ours) or abs(score - ours) <= 1e-6 * (1 + abs(score))
        if not same and not (math.isinf(score) and math.isinf(ours)):
            return (
                f"at one full assignment the recovered factors give log p = {ours:.6g} and a "
                f"plain run {score:.6g}: the model's Python code hides a dependency on sampled "
                "values (control flow), so its factors cannot be read off enumerated runs"
            )
    return ""
