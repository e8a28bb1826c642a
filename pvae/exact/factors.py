r"""Recover each site's factor -- its scope and log-table -- from a plate-free Pyro model.

The factor engine (:mod:`pvae.exact.elimination`) needs, for every sample site :math:`i`,
the latent sites its density depends on (its scope :math:`S_i`) and the table
:math:`\log p(v_i \mid v_{S_i})` over all their joint values. Both are read off a few
runs of the model (:mod:`pvae.exact.runs`) in which some latents are enumerated along
tensor dimensions (Pyro's parallel enumeration, at most :data:`MAX_DIMS` dimensions) and
every other latent is held at its first support value:

1. **scopes** (:mod:`pvae.exact.scopes`) -- a site's distribution varies along the
   dimension of every enumerated latent it depends on. Up to :data:`MAX_DIMS` latents are
   enumerated in one run, each on its own dimension; past that, latents of equal
   cardinality share dimensions in one or a few differently grouped runs, which narrow
   the scopes down to candidates (a network of a thousand sites needs two to five runs
   in all, not twenty);
2. **tables** -- a site whose scope fell inside one chunk already has its table; the rest
   are read off runs in which the members of every scope have distinct dimensions
   (a colouring: latents that share no scope share a dimension), usually one run;
3. **soundness** -- in every table run a site's log-density must vary only along its own
   scope (else :class:`ControlFlow`), every table's parameters are validated over the
   whole table and NaN is refused, and :func:`check` compares the factors' log joint at
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

import torch
from pyro.distributions.util import scale_and_mask
from pyro.poutine.util import site_is_subsample

from pvae.exact import categorical, runs, scopes
from pvae.exact.sites import common_scale, is_deterministic

__all__ = ["MAX_DIMS", "ControlFlow", "Factor", "Factors", "check", "recover", "unsupported"]

#: Latent sites enumerated in one run of the model (torch allows 64 tensor dimensions).
MAX_DIMS = scopes.MAX_DIMS


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


def _run(model, args, kwargs, dims: dict, supports: dict, fixed: dict, dtype) -> runs.Run:
    """One run with ``dims`` enumerated (see :mod:`pvae.exact.runs`); errors as ControlFlow."""
    try:
        return runs.run(model, args, kwargs, dims, supports, fixed, dtype)
    except runs.UnknownLatent as err:
        raise ControlFlow(str(err)) from err
    except (RuntimeError, ValueError, IndexError, TypeError, NotImplementedError) as err:
        if isinstance(err, RuntimeError) and "alloc" in str(err).lower():
            raise ValueError(
                f"Running the model with {len(dims)} latent sites enumerated at once ran out "
                f"of memory ({err}): some site's density depends on so many latent sites "
                "that its own table does not fit. Exact enumeration cannot take this model; "
                "approximate the posterior with a guide and SVI (`pvae.fit`)."
            ) from err
        raise ControlFlow(
            f"{type(err).__name__} when the model ran with {len(dims)} latent sites "
            f"enumerated: {err}"
        ) from err


def _varying_dims(tensor: torch.Tensor) -> set:
    """The (negative) dimensions along which ``tensor`` is not a singleton."""
    n = tensor.dim()
    return {d - n for d in range(n) if tensor.shape[d] > 1}


def _table(tensor: torch.Tensor, scope: tuple, dims: dict) -> torch.Tensor:
    """``tensor`` as a table over ``scope`` (each axis one site, in scope order)."""
    m = max([-dims[s] for s in scope] + [tensor.dim()])
    t = tensor.reshape((1,) * (m - tensor.dim()) + tuple(tensor.shape))
    axes = [m + dims[s] for s in scope]
    rest = [a for a in range(m) if a not in axes]
    t = t.permute(axes + rest)
    return t.reshape(t.shape[: len(axes)]).to(torch.float64)


def recover(model, args, kwargs, plain, latents: list[str], dtype, max_table: int) -> Factors:
    """Every site's scope and log-table (see the module docstring).

    Raises
    ------
    ControlFlow
        If the model fails on enumerated values, or a site's density varies with a site
        outside the scope found for it.
    ValueError
        If a site's own table would have more than ``max_table`` entries, or a site's
        parameters are invalid for some values of the sites it depends on.
    """
    index = {s: i for i, s in enumerate(latents)}
    supports = {
        s: plain.nodes[s]["fn"]
        .enumerate_support(expand=False)
        .reshape((-1,) + tuple(plain.nodes[s]["fn"].event_shape))
        for s in latents
    }
    cards = {s: supports[s].shape[0] for s in latents}
    # held at their first support value, so that the plain run's own (random) assignment
    # is a real test of the factors (see `check`)
    fixed = {s: supports[s][0].expand(plain.nodes[s]["value"].shape).clone() for s in latents}

    def run(dims):
        return _run(model, args, kwargs, dims, supports, fixed, dtype)

    # up to MAX_DIMS latents one chunk run reads every table; past that, shared dimensions
    many = len(latents) > MAX_DIMS
    grouped = scopes.by_groups(run, latents, cards) if many else None
    if grouped is not None and any(len(grouped[0][n]) > MAX_DIMS for n in grouped[1]):
        grouped = None  # candidates left over too many for one table run: chunks settle them
    if grouped is not None:
        scope, _, scope_runs = grouped
        tables_from = []  # shared dimensions: no table can be read off these runs
    else:
        scope, scope_runs = scopes.by_chunks(run, latents)
        tables_from = scope_runs
    found: dict[str, runs.Run] = {}
    for name, sc in scope.items():
        r = next((r for r in tables_from if name in r.sites and sc <= r.dims.keys()), None)
        if not sc:  # an observation free of every latent: any run has its density
            r = next(r for r in scope_runs if name in r.sites)
        if r is not None:
            found[name] = r
    ordered = {n: tuple(sorted(sc, key=index.__getitem__)) for n, sc in scope.items()}
    pending = [n for n in ordered if n not in found]
    table_runs = scopes.colour(pending, ordered, cards)
    for dims, targets in table_runs:
        r = run(dims)
        for name in targets:
            if name not in r.sites:
                raise ControlFlow(f"site {name!r} does not occur in every run of the model")
            found[name] = r
    count = len(scope_runs) + len(table_runs)
    return _assemble(latents, supports, ordered, found, count, max_table)


def _assemble(latents, supports, ordered, found, count, max_table) -> Factors:
    factors, scales, free = [], {}, [0.0, 0.0]  # free: scaled and unscaled
    dtype = next(iter(found.values())).dtype if found else torch.float64
    with runs.quiet(dtype):
        fast = [n for n in ordered if categorical.fast(n, found[n], supports)]
        categorical.validate(fast, found)
        fast_set = set(fast)
        for name, sc in ordered.items():
            read = _read_probs if name in fast_set else _read
            factor = _checked_read(read, name, sc, found[name], supports, max_table, free)
            if factor is not None:
                scales[name] = found[name].sites[name]["scale"]
                factors.append(factor)
    return Factors(
        latents=list(latents),
        supports=supports,
        factors=factors,
        scale=common_scale(scales),
        free=free[0],
        free_unscaled=free[1],
        runs=count,
    )


def _checked_read(read, name: str, sc: tuple, r: runs.Run, supports, max_table, free):
    """``read`` (:func:`_read` or :func:`_read_probs`), with a failure to score the
    enumerated values as :class:`ControlFlow` (e.g. a shape that broadcasts only for one
    value)."""
    try:
        return read(name, sc, r, supports, max_table, free)
    except (RuntimeError, IndexError, TypeError) as err:
        if isinstance(err, RuntimeError) and "alloc" in str(err).lower():
            raise
        raise ControlFlow(
            f"{type(err).__name__} when the log-density of site {name!r} was computed on "
            f"enumerated values: {err}"
        ) from err


def _refuse(name: str, r: runs.Run, supports, max_table: int) -> None:
    """Refuse a site whose own table is too large, or whose distribution varies along its
    own enumerated values."""
    msg = r.sites[name]
    size = msg["fn"].batch_shape.numel() * (supports[name].shape[0] if name in supports else 1)
    if size > max_table:
        raise ValueError(
            f"the factor of site {name!r} alone is a table of {size:.4g} entries over "
            f"{len(r.scope(name))} latent sites, above `max_table`={max_table:.4g}. Exact "
            "enumeration cannot take this model at this size; approximate the posterior "
            "with a guide and SVI (`pvae.fit`)."
        )
    if name in r.dims and r.varies_along(name, r.dims[name]):
        raise ControlFlow(
            f"the distribution of site {name!r} varies along its own enumerated values: "
            "its parameters are computed from its own value, or an indexing expression "
            "broadcasts enumerated values against each other (index tables with "
            "pyro.ops.indexing.Vindex)"
        )


_OUTSIDE_SCOPE = (
    "the log-density of site {!r} varies with latent sites outside the scope the scope "
    "runs found for it (Python control flow on sampled values)"
)


def _read(name: str, sc: tuple, r: runs.Run, supports, max_table: int, free: list):
    """Site ``name``'s factor from run ``r``; None for an observation free of every latent
    (its log-density is added to ``free`` instead)."""
    msg = r.sites[name]
    _refuse(name, r, supports, max_table)
    r.validate(name)
    log_p = r.log_prob(name)
    if not r.direct(name) and bool(torch.isnan(log_p).any()):
        raise ValueError(
            f"site {name!r} has log-density NaN for some values of the sites it depends "
            "on: its distribution's parameters are invalid there."
        )
    if not sc:  # an observation that depends on no latent
        term = scale_and_mask(log_p, mask=msg["mask"]).to(torch.float64)
        free[0] += float(msg["scale"] * term.sum())
        free[1] += float(term.sum())
        return None
    if _varying_dims(log_p) - {r.dims[s] for s in sc}:
        raise ControlFlow(_OUTSIDE_SCOPE.format(name))
    if name not in supports:  # an observation: masked, inside the sum
        log_p = scale_and_mask(log_p, mask=msg["mask"])
    return _kept(name, sc, _table(log_p, sc, r.dims))


def _read_probs(name: str, sc: tuple, r: runs.Run, supports, max_table: int, free: list):
    """:func:`_read` for a site :func:`pvae.exact.categorical.fast` takes (its parameters
    already validated): the table read off its ``probs``."""
    _refuse(name, r, supports, max_table)
    table = categorical.table(name, sc, r)
    if table is None:
        raise ControlFlow(_OUTSIDE_SCOPE.format(name))
    if not sc:  # an observation that depends on no latent
        msg = r.sites[name]
        free[0] += float(msg["scale"] * table)
        free[1] += float(table)
        return None
    return _kept(name, sc, table)


def _kept(name: str, sc: tuple, table: torch.Tensor) -> Factor:
    """The factor, less any candidate the scope runs could not rule out and the site does
    not depend on."""
    keep = [i for i, s in enumerate(sc) if table.shape[i] > 1 or s == name]
    if len(keep) < len(sc):
        table = table.reshape([table.shape[i] for i in keep])
        sc = tuple(sc[i] for i in keep)
    return Factor(name, sc, table)


def log_joint(factors: Factors, indices: dict[str, int]) -> float:
    """The unscaled log joint of the factors at one full assignment (support indices)."""
    if not factors.factors:
        return factors.free_unscaled
    entries = torch.stack(
        [f.log_table[tuple(indices[s] for s in f.scope)] for f in factors.factors]
    )
    return math.fsum([factors.free_unscaled, *entries.tolist()])


def check(factors: Factors, log_joint_at: Any, plain: tuple[dict, float]) -> str:
    """ "" if the factors agree with the model at two full assignments, else why not.

    The assignments are :func:`pvae.exact.runs.check_points`: the plain run's own draw
    ``plain`` (``({site: value}, its unscaled log joint)``), every site's first support
    value and every site's last. The enumerated runs hold the latents they do not
    enumerate at their first support value, which only the draw and the last assignment
    test. Each other assignment is scored by ``log_joint_at(assignment)``, the unscaled
    log joint of one plain run with every latent set to it
    (:func:`pvae.exact.runs.log_joint_at`).
    """
    drawn, drawn_log_joint = plain
    supports = {s: factors.supports[s] for s in factors.latents}
    for k, indices in enumerate(runs.check_points(supports, drawn)):
        ours = log_joint(factors, indices)
        if k == 0:
            score = drawn_log_joint
        else:
            score = log_joint_at({s: factors.supports[s][i] for s, i in indices.items()})
        same = (score == ours) or abs(score - ours) <= 1e-6 * (1 + abs(score))
        if not same and not (math.isinf(score) and math.isinf(ours)):
            return (
                f"at one full assignment the recovered factors give log p = {ours:.6g} and a "
                f"plain run {score:.6g}: the model's Python code hides a dependency on sampled "
                "values (control flow), so its factors cannot be read off enumerated runs"
            )
    return ""
