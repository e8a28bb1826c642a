"""The records that describe a corpus model, and small builders the corpus shares."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer.autoguide import AutoDiscreteParallel

F64 = torch.float64


def t(values) -> torch.Tensor:
    """A float64 tensor (data and constants are float64 whatever the default dtype)."""
    return torch.as_tensor(values, dtype=F64)


def random_probs(shape, k: int, seed: int) -> torch.Tensor:
    """Fixed, well-spread probabilities ``[*shape, k]`` (a guide's or a CPT's)."""
    gen = torch.Generator().manual_seed(seed)
    p = torch.rand(tuple(shape) + (k,), generator=gen, dtype=F64) + 0.15
    return p / p.sum(-1, keepdim=True)


def random_bernoulli(shape, seed: int) -> torch.Tensor:
    return random_probs(shape, 2, seed)[..., 1]


@dataclass(frozen=True)
class ExactCase:
    """A model whose latents are all discrete and finite, so every number is exact.

    ``guide`` builds (inside a test: it may create params) a discrete guide over the
    ``guided`` sites; the model's other latents are summed out in the model.
    """

    name: str
    idioms: tuple[str, ...]
    model: Callable
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    #: max_plate_nesting for Pyro's TraceEnum_ELBO.
    nesting: int = 1
    #: TraceEnum_ELBO gives the right answer (no Python control flow on sampled values).
    traceenum: bool = True
    #: compute_marginals reports this model's marginals correctly (not for Binomial sites).
    traceenum_marginals: bool = True
    #: Small enough for the brute-force sum over every joint assignment.
    brute: bool = True
    #: pvae's method="parallel" must run it; else it must refuse or be right.
    parallel: bool = True
    #: A common poutine.scale around every site: TraceEnum_ELBO's loss is -scale * log p(x).
    scale: float | None = None
    #: Sites summed together carry different scales: TraceEnum_ELBO (and pvae's
    #: enumerate_posterior) refuse; the guide analyses still report unscaled numbers.
    mixed_scale: bool = False
    guide: Callable | None = None
    guided: tuple[str, ...] = ()
    #: Size of the plate over the examples when reported numbers are per example.
    examples: int | None = None
    fast: bool = False
    notes: str = ""


@dataclass(frozen=True)
class MCCase:
    """A model with continuous latents and a guide: numbers are Monte Carlo estimates.

    ``reference(guide, data)`` returns the closed-form pieces (see the corpus module).
    """

    name: str
    idioms: tuple[str, ...]
    model: Callable
    make_guide: Callable
    data: torch.Tensor
    reference: Callable
    examples: int | None = None
    nesting: int = 1
    #: The guide is the exact posterior: log w is constant, every estimate is exact.
    exact_guide: bool = False
    fast: bool = False
    extra: dict = field(default_factory=dict)


def params(cases, want: Callable = lambda c: True, fast=None):
    """pytest parameters: fast cases run in `make test`, the rest are marked slow.

    ``fast`` (names) narrows the fast tier further for a test that is costly per case.
    """
    out = []
    for case in cases:
        if not want(case):
            continue
        quick = case.fast and (fast is None or case.name in fast)
        marks = () if quick else (pytest.mark.slow,)
        out.append(pytest.param(case, id=case.name, marks=marks))
    return out


def discrete_autoguide(model, args, seed: int, sites=None):
    """An AutoDiscreteParallel guide with fixed random probabilities (no training)."""
    target = model if sites is None else pyro.poutine.block(model, expose=list(sites))
    guide = AutoDiscreteParallel(target)
    guide(*args)
    trace = pyro.poutine.trace(target).get_trace(*args)
    prefix = "AutoDiscreteParallel."
    names = {
        k[len(prefix) : -len("_probs")]
        for k in pyro.get_param_store().keys()
        if k.startswith(prefix) and k.endswith("_probs")
    }
    latents = [
        (name, site["fn"])
        for name, site in trace.nodes.items()
        if site["type"] == "sample" and name in names
    ]
    for i, (name, fn) in enumerate(latents):
        shape = getattr(guide, f"{name}_probs").shape
        if isinstance(fn, dist.Bernoulli):
            value = random_bernoulli(shape, seed + i)
        else:
            value = random_probs(shape[:-1], shape[-1], seed + i)
        setattr(guide, f"{name}_probs", value)
    return guide


def divisor(record, examples: int | None) -> int:
    """What a total is divided by in ``record``'s units: N per example, else 1.

    The record's own ``per_example`` flag decides (a separate test checks the flag), so a
    wrong number and a wrong unit fail different tests.
    """
    per = getattr(record, "per_example", examples is not None)
    if not per:
        return 1
    n = examples if examples is not None else getattr(record, "num_examples", None)
    assert n, f"{type(record).__name__} says per_example but gives no num_examples"
    return n
