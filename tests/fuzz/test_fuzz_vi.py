"""Fuzz the divergences: ``kl_divergence`` and ``total_variation`` on tables (against SciPy's
``rel_entr`` and NumPy) and on distributions (against the Gaussian closed form in float64,
and the table of a finite support)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import strategies as st
from scipy.special import rel_entr

import pvae

from .contract import call, fuzz
from .strategies import SPECIAL_FLOATS, hostile_data, hostile_scalar, wrong_types

KL_NAMES = ["`p`", "`q`", "`num_samples`", "`method`"]


@st.composite
def tables(draw, n=None):
    n = draw(st.integers(1, 5)) if n is None else n
    kind = draw(st.sampled_from(["exact", "rounded", "hostile", "peaked"]))
    if kind == "hostile":
        return draw(st.lists(st.sampled_from(SPECIAL_FLOATS), min_size=n, max_size=n))
    weights = np.array(draw(st.lists(st.integers(0, 1000), min_size=n, max_size=n)), float)
    if not weights.sum():
        weights[0] = 1
    p = weights / weights.sum()
    if kind == "rounded":  # sums off by up to ~1e-7, within the tolerance
        p = p + np.array(draw(st.lists(st.floats(-1e-7 / n, 1e-7 / n), min_size=n,
                                       max_size=n)))  # fmt: skip
        p = np.abs(p)
    if kind == "peaked":
        p = np.full(n, 1e-300)
        p[0] = 1 - (n - 1) * 1e-300
    form = draw(st.sampled_from(["list", "tensor", "float32", "array"]))
    if form == "tensor":
        return torch.tensor(p, dtype=torch.float64)
    if form == "float32":
        return torch.tensor(p, dtype=torch.float32)
    return p if form == "array" else p.tolist()


def _kl_reference(p, q):
    """SciPy's elementwise p log(p / q), on the rows renormalized to sum to 1."""
    p, q = (np.asarray(t.double() if isinstance(t, torch.Tensor) else t, float) for t in (p, q))
    p, q = p / p.sum(-1, keepdims=True), q / q.sum(-1, keepdims=True)
    return rel_entr(p, q).sum(-1)


def test_kl_divergence_of_tables(tier):
    def check(case):
        p, q = case
        kl = call("kl_divergence", pvae.kl_divergence, p, q, names=KL_NAMES)
        ref = _kl_reference(p, q)
        assert kl >= 0, f"negative KL {kl}"
        assert not math.isnan(kl)
        if math.isinf(ref):
            assert kl == math.inf
        else:
            assert math.isclose(kl, max(float(ref), 0.0), rel_tol=1e-6, abs_tol=1e-9)

    @st.composite
    def pairs(draw):
        n = draw(st.integers(1, 5))
        if draw(st.integers(0, 9)) == 0:
            return draw(st.one_of(hostile_data, tables())), draw(tables(n))
        return draw(tables(n)), draw(tables(n))

    fuzz(pairs(), check, tier, fast=200)


def test_total_variation_of_tables(tier):
    def check(case):
        p, q = case
        tv = call("total_variation", pvae.total_variation, p, q, names=["`p`", "`q`"])
        a, b = (np.asarray(t.double() if isinstance(t, torch.Tensor) else t, float) for t in case)
        a, b = a / a.sum(), b / b.sum()
        assert 0 <= tv <= 1 + 1e-12
        assert math.isclose(tv, 0.5 * np.abs(a - b).sum(), rel_tol=1e-6, abs_tol=1e-9)

    @st.composite
    def pairs(draw):
        n = draw(st.integers(1, 5))
        return draw(st.one_of(tables(n), hostile_data)), draw(tables(n))

    fuzz(pairs(), check, tier, fast=120)


def _gauss_kl(m1, s1, m2, s2):
    """KL(N(m1, s1^2) || N(m2, s2^2)) in float64 (Python floats): the closed form."""
    return math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5


def test_kl_divergence_of_normals(tier):
    scales = st.one_of(st.floats(1e-3, 1e3), st.sampled_from([1e-30, 1e-20, 1e20, 1e30, 1.0]))
    locs = st.one_of(st.floats(-1e3, 1e3), st.sampled_from([0.0, 0.5, 1e20, -1e20]))
    dtypes = st.sampled_from([torch.float32, torch.float64])

    def check(case):
        (m1, s1, m2, s2), dtype, method = case
        td = torch.distributions
        p = td.Normal(torch.tensor(m1, dtype=dtype), torch.tensor(s1, dtype=dtype))
        q = td.Normal(torch.tensor(m2, dtype=dtype), torch.tensor(s2, dtype=dtype))
        kl = call(
            "kl_divergence",
            pvae.kl_divergence,
            p,
            q,
            method=method,
            num_samples=1000 if method == "monte_carlo" else None,
            names=KL_NAMES,
        )
        ref = _gauss_kl(m1, s1, m2, s2)
        if method == "monte_carlo":
            est = kl.estimate
            assert math.isfinite(est) or ref > 1e30
            return
        assert not math.isnan(kl) and kl >= 0
        if math.isfinite(kl):  # the number, within the dtype's precision of the terms
            eps = torch.finfo(dtype).eps
            terms = abs(math.log(s2 / s1)) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) + 0.5
            assert abs(kl - ref) <= 200 * eps * terms + 1e-12, (kl, ref)
        else:
            assert ref > 1e30

    cases = st.tuples(
        st.tuples(locs, scales, locs, scales),
        dtypes,
        st.sampled_from(["auto", "closed_form", "monte_carlo"]),
    )
    fuzz(cases, check, tier, fast=150)


def test_kl_divergence_arguments(tier):
    """Hostile ``num_samples``/``method`` and mismatched or mixed distributions."""
    import pyro.distributions as dist

    td = torch.distributions
    choices = [td.Normal(0.0, 1.0), dist.Normal(0.0, 1.0), td.StudentT(3.0),
               dist.Normal(torch.zeros(3), 1.0).to_event(1), td.Bernoulli(probs=0.3),
               td.Categorical(probs=torch.tensor([0.2, 0.8])), td.Uniform(0.0, 1.0),
               dist.Normal(torch.zeros(2), 1.0), [0.2, 0.8]]  # fmt: skip

    def check(case):
        p, q, num_samples, method = case
        out = call("kl_divergence", pvae.kl_divergence, p, q, num_samples, method=method,
                   names=KL_NAMES)  # fmt: skip
        value = out.estimate if isinstance(out, pvae.KLEstimate) else out
        value = torch.as_tensor(value)
        assert not torch.isnan(value).any()
        if not isinstance(out, pvae.KLEstimate):
            assert (value >= 0).all()

    cases = st.tuples(
        st.sampled_from(choices),
        st.sampled_from(choices),
        st.one_of(st.none(), st.sampled_from([2, 100]), hostile_scalar),
        st.one_of(st.sampled_from(["auto", "closed_form", "monte_carlo"]), wrong_types),
    )
    fuzz(cases, check, tier, fast=100)


def test_tiny_scale_in_float32_gives_the_float64_closed_form():
    """The issue's case: ``Normal(0.5, 1e-30)`` in float32 (its variance underflows to 0);
    the answer is the float64 closed form, not NaN or inf."""
    td = torch.distributions
    p, q = td.Normal(0.0, 1.0), td.Normal(0.5, 1e-30)
    tiny = float(torch.tensor(1e-30))  # the float32 the distribution holds
    assert pvae.kl_divergence(p, q) == pytest.approx(_gauss_kl(0.0, 1.0, 0.5, tiny), rel=1e-12)
    assert pvae.kl_divergence(q, q) == 0.0
    assert pvae.kl_divergence(td.Normal(0.0, 1.0), td.Normal(0.0, 1e30)) == pytest.approx(
        _gauss_kl(0.0, 1.0, 0.0, float(torch.tensor(1e30))), rel=1e-12
    )


def test_nearly_equal_tables_never_give_a_negative_kl():
    p = [0.3 + 4e-7, 0.7]  # sums to 1 + 4e-7, inside the tolerance
    q = [0.3, 0.7 - 4e-7]
    assert pvae.kl_divergence(p, q) >= 0
    assert pvae.kl_divergence(p, p) == 0.0
