r"""Importance weights of guide draws: :math:`\log w = \log p(x, z) - \log q(z)`.

:func:`log_weights` runs the guide and the replayed model for :math:`K` particles in a
``pyro.plate`` left of the model's plates (Pyro's ``vectorize_particles``), in chunks that
bound memory, and checks the first chunk against unvectorized runs of its first and last
particle. A model that fails that check, or fails vectorized while it runs one particle at a
time, runs one particle at a time; :attr:`Weights.vectorized` and :attr:`Weights.reason`
record which path ran and why.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from pyro import poutine

from pvae._traces.densities import enumerate_model_sites, site_terms, vectorized
from pvae._traces.structure import SHAPE_ERRORS, Structure, inspect

__all__ = ["MAX_ELEMENTS", "Weights", "log_mean_exp", "log_weights", "particle_traces"]

#: Element budget of one vectorized pass (site elements x particles).
MAX_ELEMENTS = 2**22


class Weights(NamedTuple):
    r"""Per-particle log-densities, float64, ``[K, N]`` per example or ``[K]`` joint."""

    #: :math:`\log w = \log p(x, z) - \log q(z)`.
    log_weight: torch.Tensor
    #: :math:`\log p(x \mid z)`: the observed sites (model-enumerated latents summed out).
    log_likelihood: torch.Tensor
    #: :math:`\log p(z)`: the guided latents' factors in the model.
    log_prior: torch.Tensor
    #: :math:`\log q(z)`: every sample site of the guide.
    log_guide: torch.Tensor
    per_example: bool
    #: False when the particles ran one at a time; ``reason`` says why.
    vectorized: bool
    reason: str


def particle_traces(model, guide, args, kwargs, num: int, structure: Structure):
    """Guide and replayed model traces of ``num`` particles in one vectorized run."""
    dim = -(structure.nesting + 1)
    guide_trace = poutine.trace(vectorized(guide, num, dim)).get_trace(*args, **kwargs)
    vec_model = enumerate_model_sites(vectorized(model, num, dim), structure, dim - 1)
    model_trace = poutine.trace(poutine.replay(vec_model, trace=guide_trace)).get_trace(
        *args, **kwargs
    )
    return guide_trace, model_trace


def _one_particle(model, guide, args, kwargs, structure: Structure, values=None):
    """(log_lik, log_prior, log_guide) of one unvectorized run, optionally at given values."""
    guide_fn = guide
    if values is not None:
        fixed = poutine.Trace()
        for name, value in values.items():
            fixed.add_node(name, type="sample", is_observed=False, value=value, infer={})
        guide_fn = poutine.replay(guide, trace=fixed)
    guide_trace = poutine.trace(guide_fn).get_trace(*args, **kwargs)
    model_fn = enumerate_model_sites(model, structure, -(structure.nesting + 1))
    model_trace = poutine.trace(poutine.replay(model_fn, trace=guide_trace)).get_trace(
        *args, **kwargs
    )
    keep = [structure.data_dim] if structure.per_example else []
    return site_terms(structure, guide_trace, model_trace, structure.nesting, keep)


def _particle_values(guide_trace, structure: Structure, index: int) -> dict | None:
    """The guide's values of particle ``index``, in the shapes of one unvectorized run."""
    width = structure.nesting + 1
    out = {}
    for name in structure.guide_sites:
        value = guide_trace.nodes[name]["value"]
        pos = value.dim() - structure.event_dims[name] - width
        if pos < 0 or value.shape[pos] <= index:
            return None
        one = value.select(pos, index)
        if one.numel() != structure.shapes[name].numel():
            return None
        out[name] = one.reshape(structure.shapes[name])
    return out


def _mismatch(vec: torch.Tensor, one: torch.Tensor) -> float:
    """Largest difference between vectorized and one-particle weights (0.0 if within rounding)."""
    if not torch.equal(torch.isfinite(vec), torch.isfinite(one)):
        return math.inf
    finite = torch.isfinite(one)
    diff = (vec - one).abs()[finite]
    if bool((diff > 1e-3 + 1e-4 * one.abs()[finite]).any()):
        return float(diff.max())
    return 0.0


def _vectorized_weights(model, guide, args, kwargs, num, structure, check: bool):
    guide_trace, model_trace = particle_traces(model, guide, args, kwargs, num, structure)
    width = structure.nesting + 1
    keep = [-width] + ([structure.data_dim] if structure.per_example else [])
    terms = site_terms(structure, guide_trace, model_trace, width, keep)
    shape = (num, structure.num_examples) if structure.per_example else (num,)
    terms = tuple(t.expand(shape) for t in terms)
    if check:
        for index in sorted({0, num - 1}):
            values = _particle_values(guide_trace, structure, index)
            if values is None:
                return None, "the guide's sites do not carry the particle dim"
            one = _one_particle(model, guide, args, kwargs, structure, values)
            vec = sum(t[index] for t in terms[:2]) - terms[2][index]
            gap = _mismatch(vec, one[0] + one[1] - one[2])
            if gap:
                return None, (
                    f"the vectorized weights differ from a one-particle run by {gap:.3g} nats: "
                    "the model or guide does not broadcast over a batch dim on the left "
                    "(e.g. it calls `z.sum()` instead of `z.sum(-1)`)"
                )
    return terms, ""


def log_weights(
    model: Callable,
    guide: Callable,
    args: tuple,
    kwargs: dict,
    num_particles: int,
    structure: Structure | None = None,
    *,
    vectorize: bool = True,
    check: bool = True,
    max_elements: int = MAX_ELEMENTS,
) -> Weights:
    """Importance weights of ``num_particles`` guide draws (see the module docstring).

    Particles are vectorized in chunks of at most ``max_elements`` site elements; the first
    chunk is checked against unvectorized runs (``check``), and a model that fails it, or
    fails to run vectorized at all while it runs one particle at a time, runs sequentially.
    """
    if structure is None:
        structure = inspect(model, guide, args, kwargs)
    elements = sum(s.numel() for s in structure.shapes.values()) or 1
    chunk = max(1, min(num_particles, max_elements // elements))
    parts, reason = [], "" if vectorize else "vectorize=False"
    with poutine.block():
        done = 0
        while vectorize and done < num_particles:
            n = min(chunk, num_particles - done)
            try:
                terms, reason = _vectorized_weights(
                    model, guide, args, kwargs, n, structure, check and done == 0
                )
            except SHAPE_ERRORS as err:
                _one_particle(model, guide, args, kwargs, structure)  # a real error re-raises
                terms, reason = None, f"the vectorized run failed ({type(err).__name__}: {err})"
            if terms is None:
                parts = []
                break
            parts.append(terms)
            done += n
        if not parts:
            rows = [
                _one_particle(model, guide, args, kwargs, structure) for _ in range(num_particles)
            ]
            parts = [tuple(torch.stack([r[i] for r in rows]) for i in range(3))]
    log_lik, log_prior, log_q = (torch.cat([p[i] for p in parts]) for i in range(3))
    return Weights(
        log_weight=log_lik + log_prior - log_q,
        log_likelihood=log_lik,
        log_prior=log_prior,
        log_guide=log_q,
        per_example=structure.per_example,
        vectorized=not reason,
        reason=reason,
    )


def log_mean_exp(log_w: torch.Tensor, dim: int = 0) -> torch.Tensor:
    r""":math:`\log \frac1K \sum_k e^{\log w_k}` along ``dim`` (the IWAE estimate)."""
    return torch.logsumexp(log_w, dim) - math.log(log_w.shape[dim])
