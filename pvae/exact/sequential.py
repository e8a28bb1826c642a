r"""The sequential engine: replay the model once for every joint assignment of its latents.

A depth-first odometer over the latent sites: each run sets every latent it meets to the
next untried value, so ordinary Python control flow on sampled values (``if int(z) == 0:``)
works, and sites that exist on some branches only are handled. The whole joint table is
kept, which makes :meth:`pvae.exact.ExactPosterior.joint` available. Densities follow the
convention of :mod:`pvae.exact.sites`; since the engine cannot see which observations
depend on which latents, every site must share one ``poutine.scale``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import pyro
import torch
from pyro import poutine
from pyro.distributions.util import scale_and_mask
from pyro.poutine.util import site_is_subsample

from pvae.exact.sites import (
    common_scale,
    default_dtype,
    exact_log_probs,
    is_deterministic,
    no_finite_support,
)

__all__ = ["Table", "equal", "replay_all"]


class Table(NamedTuple):
    """Every joint assignment the model can take, with its log-density terms."""

    sites: tuple[str, ...]  # latent sites in the order first met
    supports: dict  # site -> [K, *event] support
    indices: list  # per row: {site: tuple of support indices, one per batch element}
    values: list  # per row: {site: value}
    log_prior: torch.Tensor  # per row: sum of the latents' own (unmasked, unscaled) factors
    log_likelihood: torch.Tensor  # per row: sum of the masked, unscaled observed terms
    scale: float  # the common poutine.scale


class _TooMany(Exception):
    pass


class _Odometer(pyro.poutine.messenger.Messenger):
    """Set latent sites to the next joint assignment of a depth-first enumeration."""

    def __init__(self, prefix: list[int], max_states: int):
        super().__init__()
        self.prefix, self.max_states = prefix, max_states
        self.choices: list[tuple[str, int]] = []
        self.indices: dict[str, tuple[int, ...]] = {}
        self.supports: dict[str, torch.Tensor] = {}

    def _pyro_sample(self, msg):
        if msg["is_observed"] or site_is_subsample(msg) or msg["value"] is not None:
            return
        if is_deterministic(msg):
            return
        name, fn = msg["name"], msg["fn"]
        if not getattr(fn, "has_enumerate_support", False):
            raise no_finite_support(name, fn)
        full = fn.enumerate_support(expand=True)
        k, batch, event = full.shape[0], fn.batch_shape, fn.event_shape
        nb = batch.numel()
        count = k**nb
        if count > self.max_states:
            raise _TooMany(count)
        pos = len(self.choices)
        choice = self.prefix[pos] if pos < len(self.prefix) else 0
        self.choices.append((name, count))
        digits = tuple((choice // k**i) % k for i in reversed(range(nb)))
        flat = full.reshape((k, nb) + event)
        value = flat[torch.tensor(digits), torch.arange(nb)].reshape(batch + event)
        self.indices[name] = digits
        self.supports[name] = fn.enumerate_support(expand=False).reshape((k,) + event)
        msg["value"], msg["done"] = value, True


def _terms(trace, latents) -> tuple[float, float, dict]:
    """(latent own factors, masked observed terms, scale per site) of one run, unscaled."""
    trace.compute_log_prob()
    exact_log_probs(trace)
    log_prior = log_lik = 0.0
    scales = {}
    for name, site in trace.nodes.items():
        if site["type"] != "sample" or site_is_subsample(site) or is_deterministic(site):
            continue
        scales[name] = site["scale"]
        if name in latents:
            log_prior += float(site["unscaled_log_prob"].sum())
        else:
            log_lik += float(scale_and_mask(site["unscaled_log_prob"], mask=site["mask"]).sum())
    return log_prior, log_lik, scales


def too_many(count: int, max_states: int, at_least: bool = False, why: str = "") -> ValueError:
    """The refusal when the joint state space is too big to replay."""
    because = f" Why not a vectorized engine: {why}." if why else ""
    return ValueError(
        f"The sequential engine would replay the model for {'at least ' if at_least else ''}"
        f"{count} joint assignments of its latent sites, more than `max_states`={max_states}."
        f"{because} Raise `max_states`, or write the model so that it runs on enumerated "
        "tensors (method='parallel': no Python control flow on sampled values)."
    )


def replay_all(model, args, kwargs, max_states: int, dtype, why: str = "") -> Table:
    """Replay the model for every joint assignment (depth-first odometer)."""
    rows, prefix, scales = [], [], {}
    sites: dict[str, None] = {}
    supports: dict[str, torch.Tensor] = {}
    while True:
        odometer = _Odometer(prefix, max_states)
        try:
            with default_dtype(dtype), torch.no_grad():
                trace = poutine.trace(odometer(model)).get_trace(*args, **kwargs)
        except _TooMany as err:
            raise too_many(err.args[0], max_states, why=why) from None
        log_prior, log_lik, row_scales = _terms(trace, odometer.indices)
        scales.update(row_scales)
        for name in odometer.indices:
            sites.setdefault(name)
            supports.setdefault(name, odometer.supports[name])
        values = {n: trace.nodes[n]["value"].detach() for n in odometer.indices}
        rows.append((odometer.indices, values, log_prior, log_lik))
        if len(rows) == 1:
            total = math.prod(c for _, c in odometer.choices)
            if total > max_states:
                raise too_many(total, max_states, why=why)
        if len(rows) > max_states:
            raise too_many(len(rows), max_states, at_least=True, why=why)
        assignment = prefix + [0] * (len(odometer.choices) - len(prefix))
        j = len(odometer.choices) - 1
        while j >= 0 and assignment[j] + 1 >= odometer.choices[j][1]:
            j -= 1
        if j < 0:
            break
        prefix = assignment[:j] + [assignment[j] + 1]
    return Table(
        sites=tuple(sites),
        supports=supports,
        indices=[r[0] for r in rows],
        values=[r[1] for r in rows],
        log_prior=torch.tensor([r[2] for r in rows], dtype=torch.float64),
        log_likelihood=torch.tensor([r[3] for r in rows], dtype=torch.float64),
        scale=common_scale(scales),
    )


def marginals(table: Table, posterior: torch.Tensor) -> dict[str, torch.Tensor]:
    """Posterior marginal of each site, ``[*batch, K]``, from the rows' probabilities."""
    out = {}
    for name in table.sites:
        k = table.supports[name].shape[0]
        first = next(v[name] for v in table.values if name in v)
        batch = first.shape[: first.dim() - (table.supports[name].dim() - 1)]
        m = torch.zeros(batch.numel(), k, dtype=torch.float64)
        for idx, p in zip(table.indices, posterior, strict=True):
            if name in idx:
                m[torch.arange(batch.numel()), torch.tensor(idx[name])] += p
        out[name] = m.reshape(batch + (k,))
    return out


def prob_of(table: Table, posterior: torch.Tensor, assignment: dict[str, Any]) -> float:
    """Posterior probability that every site in ``assignment`` takes its value (broadcast)."""
    total = 0.0
    for values, p in zip(table.values, posterior, strict=True):
        if all(name in values and equal(values[name], v) for name, v in assignment.items()):
            total += float(p)
    return total


def equal(value: torch.Tensor, target: Any) -> bool:
    """Whether every element of ``value`` equals ``target`` (broadcast to its shape)."""
    target = torch.as_tensor(target, dtype=value.dtype)
    try:
        target = target.expand(value.shape)
    except RuntimeError:
        raise ValueError(
            f"the value has shape {tuple(target.shape)}, which does not broadcast to the "
            f"site's shape {tuple(value.shape)}."
        ) from None
    return bool((value == target).all())
