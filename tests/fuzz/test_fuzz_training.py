"""Fuzz ``evaluate`` and ``fit`` on a conjugate Gaussian model whose log p(x) is known in
closed form (z ~ N(0, 1), x | z ~ N(z, 1), so x ~ N(0, 2); the guide is the exact posterior
N(x / 2, 1 / 2), so every importance weight is p(x) and both estimates are exact)."""

from __future__ import annotations

import math

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from hypothesis import strategies as st
from scipy.stats import norm

import pvae

from .contract import call, finite, fuzz
from .strategies import hostile_data, hostile_scalar, seeds, sizes, tensors, wrong_types


def model(x, *rest):
    with pyro.plate("data", len(x)):
        z = pyro.sample("z", dist.Normal(torch.zeros(len(x)), 1.0))
        pyro.sample("x", dist.Normal(z, 1.0), obs=x)


def guide(x, *rest):
    with pyro.plate("data", len(x)):
        pyro.sample("z", dist.Normal(x / 2, 0.5**0.5))


EVAL_NAMES = ["`data", "`num_particles`", "`max_elements`", "`seed`", "`model`", "`guide`",
              "`tensors`", "`batch_size`"]  # fmt: skip


def _exact(x: torch.Tensor) -> float:
    return float(norm.logpdf(x.double().numpy(), 0.0, math.sqrt(2.0)).mean())


data_cases = st.one_of(
    tensors(max_dims=1, max_side=5),
    st.lists(st.floats(-5, 5), min_size=1, max_size=5).map(torch.tensor),
    st.lists(st.floats(-5, 5), min_size=1, max_size=5).map(np.array),
    st.sampled_from([torch.tensor([1e30]), torch.tensor([3e38, 0.0]), torch.tensor([1e20])]),
    hostile_data,
)


def test_evaluate(tier):
    def check(case):
        x, num_particles, max_elements, seed = case
        ev = call(
            "evaluate", pvae.evaluate, model, x, guide=guide, num_particles=num_particles,
            max_elements=max_elements, seed=seed, progress=False, names=EVAL_NAMES,
        )  # fmt: skip
        xt = pvae.data.as_tensor(x)  # the data as the model saw them
        for name in ("elbo", "log_evidence", "reconstruction", "kl_prior"):
            finite(getattr(ev, name), f"evaluate().{name}")
        for name in ("elbo_se", "log_evidence_se"):
            value = getattr(ev, name)
            assert math.isfinite(value) or (math.isnan(value) and ev.num_examples == 1)
        assert ev.num_examples == len(xt)  # one example per row
        if xt.dim() > 1:
            # this model is written for a vector: z of shape [N] against rows of x of
            # shape [N, D] broadcasts z along D, and the guide's z of shape [N, D] replaces
            # it, so log p(x) has no closed form here; finite numbers are the contract
            return
        exact = _exact(xt)
        assert ev.num_examples == len(xt)
        assert math.isclose(ev.log_evidence, exact, rel_tol=1e-4, abs_tol=1e-4)
        assert math.isclose(ev.elbo, exact, rel_tol=1e-4, abs_tol=1e-4)

    # huge valid sizes are work, not faults: K above MAX_PARTICLES is refused, and a tiny
    # element budget with many particles is slow but right, so it is left out here
    invalid = sizes.filter(lambda v: not (isinstance(v, int) and 0 < v < 2**31))
    cases = st.tuples(
        data_cases,
        st.one_of(st.integers(1, 20), st.sampled_from([2**31, 10**30]), invalid),
        st.one_of(st.just(2**22), st.integers(64, 4096), invalid),
        seeds,
    )
    fuzz(cases, check, tier, fast=60)


def test_fit(tier):
    """Hostile arguments to ``fit`` on a one-parameter model: refused by name (a divergence
    as :class:`~pvae.TrainingDivergedError`, which names the step and ``lr``), or a run whose
    history and parameter are finite. (``fit``'s numbers are checked against references in
    ``tests/training``.)"""

    def loc_model(x, *rest):
        loc = pyro.param("loc", torch.tensor(0.0))
        with pyro.plate("data", len(x)):
            pyro.sample("x", dist.Normal(loc, 1.0), obs=x)

    def empty_guide(x, *rest):
        pass

    names = ["`data", "`epochs`", "`batch_size`", "`lr`", "`num_particles`", "`clip_norm`",
             "`seed`", "`shuffle`", "`early_stopping`", "`elbo`", "`checkpoint_every`",
             "`tensors`", "`progress`"]  # fmt: skip

    def check(case):
        x, kwargs = case
        pyro.clear_param_store()
        result = call("fit", pvae.fit, loc_model, x, guide=empty_guide, progress=False,
                      names=names, allow=(FloatingPointError,), **kwargs)  # fmt: skip
        assert isinstance(kwargs.get("epochs", 10), int)
        for row in result.history:
            for key, value in row.items():
                if isinstance(value, float) and key != "seconds":
                    finite(value, f"fit history {key}")
        loc = float(pyro.param("loc").detach())
        finite(loc, "the fitted parameter")

    invalid_sizes = sizes.filter(lambda v: not (isinstance(v, int) and v >= 4))
    kwargs = st.fixed_dictionaries(
        {},
        optional={
            "epochs": st.one_of(st.integers(1, 3), st.sampled_from([0, -1, 2.5, True, "2",
                                                                    None, math.nan])),
            "batch_size": st.one_of(st.integers(1, 8), sizes),
            "lr": st.one_of(st.sampled_from([1e-2, 0.1, 1e-30, 100.0]), hostile_scalar),
            # 2**31 particles is valid work without a cap (hours): left out, reported
            "num_particles": st.one_of(st.integers(1, 3), invalid_sizes),
            "clip_norm": st.one_of(st.none(), st.sampled_from([1.0, 0.0, math.nan, math.inf]),
                                   wrong_types),
            "seed": seeds,
            "shuffle": st.one_of(st.none(), st.booleans(), wrong_types),
            "early_stopping": st.one_of(st.none(), st.integers(1, 2), sizes),
            "elbo": st.one_of(st.sampled_from(["trace", "meanfield", "nope"]), wrong_types),
        },
    )  # fmt: skip

    # data the one-dimensional model cannot take (2-D, (x, y)) fail inside Pyro, and `fit`
    # passes Pyro's message on without naming `data` (pvae/training, owned elsewhere): left
    # out here and pinned by test_known_finding_fit_shape_error
    def one_dimensional(value):
        return not isinstance(value, tuple) and getattr(value, "ndim", 1) <= 1

    data = st.one_of(st.lists(st.floats(-3, 3), min_size=1, max_size=6).map(torch.tensor),
                     tensors(max_dims=1, max_side=4),
                     hostile_data.filter(one_dimensional))  # fmt: skip
    fuzz(st.tuples(data, kwargs), check, tier, fast=15)


def test_known_finding_fit_shape_error():
    def loc_model(x):
        loc = pyro.param("loc", torch.tensor(0.0))
        with pyro.plate("data", len(x)):
            pyro.sample("x", dist.Normal(loc, 1.0), obs=x)

    with pytest.raises(ValueError, match="`data`"):
        pvae.fit(loc_model, torch.zeros(1, 2), guide=lambda x: None, epochs=1, progress=False)
