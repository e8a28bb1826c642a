"""Fuzz Bayes' rule: ``bayes_rule``, ``BayesTable.update`` and ``enumerate_posterior``,
against a brute-force table computed with SciPy's ``logsumexp`` in float64."""

from __future__ import annotations

import math

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from hypothesis import strategies as st
from scipy.special import logsumexp, softmax

import pvae

from .contract import call, finite, fuzz
from .strategies import hostile_data, hostile_scalar, wrong_types

BAYES_NAMES = ["`prior`", "`likelihood`", "`log_likelihood`", "`hypotheses`", "`normalize`",
               "evidence p(x) is 0"]  # fmt: skip

positive = st.one_of(
    st.floats(0, 1),
    st.sampled_from([0.0, 1e-300, 1e-30, 1.0, 1e30, 1e300, 1.7e308, -1.0, math.nan, math.inf]),
)
log_values = st.one_of(
    st.floats(-1e4, 1e4),
    st.sampled_from([0.0, -math.inf, math.inf, math.nan, 709.0, 710.0, 800.0, -800.0, 1e308]),
)


@st.composite
def columns(draw, values, n):
    raw = draw(st.lists(values, min_size=n, max_size=n))
    form = draw(st.sampled_from(["list", "tuple", "tensor", "array", "dict", "float32"]))
    if form == "tuple":
        return tuple(raw)
    if form == "tensor":
        return torch.tensor(raw, dtype=torch.float64)
    if form == "float32":
        return torch.tensor(raw, dtype=torch.float32)
    if form == "array":
        return np.array(raw)
    if form == "dict":
        return dict(enumerate(raw))
    return raw


@st.composite
def bayes_cases(draw):
    n = draw(st.integers(0, 5))
    exact_prior = draw(st.booleans())
    if exact_prior and n:
        weights = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
        total = sum(weights) or 1
        prior = [w / total for w in weights]
    else:
        prior = draw(st.lists(positive, min_size=n, max_size=n))
    prior = draw(st.sampled_from([prior, tuple(prior), torch.tensor(prior, dtype=torch.float64),
                                  dict(enumerate(prior))]))  # fmt: skip
    m = n if draw(st.integers(0, 9)) else draw(st.integers(0, 6))
    log_space = draw(st.booleans())
    lik = draw(columns(log_values if log_space else positive, m))
    if draw(st.integers(0, 9)) == 0:
        lik = draw(st.one_of(hostile_data, wrong_types))
    normalize = draw(st.one_of(st.booleans(), st.just(True), hostile_scalar))
    return prior, lik, log_space, normalize


def _reference(prior, lik, log_space, normalize):
    """The Bayes table by brute force: log p(h) + log p(x|h), logsumexp, in float64."""
    p = np.array(list(prior.values()) if isinstance(prior, dict) else list(prior), dtype=float)
    if isinstance(lik, dict):
        lik = [lik[k] for k in sorted(lik)]
    col = np.array(lik.tolist() if isinstance(lik, torch.Tensor) else list(lik), dtype=float)
    with np.errstate(all="ignore"):
        log_p = np.log(p)
        if normalize:
            log_p = log_p - logsumexp(log_p)
        log_lik = col if log_space else np.log(col)
    log_joint = np.where(log_p > -np.inf, log_lik + log_p, -np.inf)
    log_ev = logsumexp(log_joint)
    # softmax, not exp(log_joint - log_ev): near 1e308, 1e308 + log 2 rounds to 1e308 and
    # exp(log_joint - log_ev) gives [1, 1] for two equal hypotheses, not a distribution
    return log_ev, softmax(log_joint), log_p


def test_bayes_rule(tier):
    def check(case):
        prior, lik, log_space, normalize = case
        kwargs = {"log_likelihood": lik} if log_space else {"likelihood": lik}
        t = call("bayes_rule", pvae.bayes_rule, prior, normalize=normalize, names=BAYES_NAMES,
                 **kwargs)  # fmt: skip
        log_ev, posterior, log_p = _reference(prior, lik, log_space, normalize)
        assert isinstance(normalize, bool)
        p = np.exp(log_p)
        assert np.all(p >= 0) and (normalize or abs(p.sum() - 1) <= 1e-6)
        finite(t.log_evidence, "log_evidence")
        assert math.isclose(t.log_evidence, log_ev, rel_tol=1e-12, abs_tol=1e-9)
        np.testing.assert_allclose(t.posterior.numpy(), posterior, rtol=1e-9, atol=1e-12)
        assert abs(float(t.posterior.sum()) - 1) < 1e-9
        expected_evidence = math.exp(log_ev) if log_ev < 709.78 else math.inf
        assert math.isclose(t.evidence, expected_evidence, rel_tol=1e-9)
        assert t.cumulative_log_evidence == t.log_evidence

    fuzz(bayes_cases(), check, tier, fast=200)


def test_update(tier):
    """Two updates against one table of the product of the likelihoods (same data)."""

    def check(case):
        (prior, lik1, log_space, _), lik2 = case
        kwargs = {"log_likelihood": lik1} if log_space else {"likelihood": lik1}
        t = call("bayes_rule", pvae.bayes_rule, prior, normalize=True, names=BAYES_NAMES,
                 **kwargs)  # fmt: skip
        key = "log_likelihood" if log_space else "likelihood"
        t2 = call("BayesTable.update", t.update, names=BAYES_NAMES, **{key: lik2})
        l1 = np.array(lik1.tolist() if isinstance(lik1, torch.Tensor) else
                      [lik1[k] for k in sorted(lik1)] if isinstance(lik1, dict) else list(lik1),
                      dtype=float)  # fmt: skip
        l2 = np.array(lik2, dtype=float)
        with np.errstate(all="ignore"):
            both = l1 + l2 if log_space else np.log(l1) + np.log(l2)
        log_ev, posterior, _ = _reference(prior, both, True, True)
        np.testing.assert_allclose(t2.posterior.numpy(), posterior, rtol=1e-8, atol=1e-12)
        finite(t2.cumulative_log_evidence, "cumulative_log_evidence")
        assert math.isclose(t2.cumulative_log_evidence, log_ev, rel_tol=1e-10, abs_tol=1e-8)
        assert math.isclose(
            t2.cumulative_log_evidence, t.log_evidence + t2.log_evidence, abs_tol=1e-12
        )

    # moderate magnitudes: near 1e308 float64 cannot carry a posterior through two steps
    # (log p(x, h) - log p(x) loses every digit), whichever order the sum is taken in
    moderate_log = st.one_of(st.floats(-1e4, 1e4), st.just(-math.inf))
    moderate = st.one_of(st.floats(0, 1e30), st.sampled_from([0.0, 1e-300, 1.0]))

    @st.composite
    def cases(draw):
        n = draw(st.integers(1, 5))
        weights = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n).filter(any))
        prior = [w / sum(weights) for w in weights]
        log_space = draw(st.booleans())
        values = moderate_log if log_space else moderate
        lik1 = draw(columns(values, n))
        lik2 = draw(st.lists(values, min_size=n, max_size=n))
        return (prior, lik1, log_space, True), lik2

    fuzz(cases(), check, tier, fast=120)


def _coin(p, flips):
    """A coin of bias ``p`` (one of three) and the observed flips."""
    bias = pyro.sample("bias", dist.Categorical(probs=torch.as_tensor(p, dtype=torch.float64)))
    theta = torch.tensor([0.2, 0.5, 0.8], dtype=torch.float64)[bias]
    with pyro.plate("flips", len(flips)):
        pyro.sample("x", dist.Bernoulli(theta), obs=flips)


def test_enumerate_posterior(tier):
    """Against the brute-force Bayes table of the same three-hypothesis coin."""

    def check(case):
        p, flips, method = case
        post = call(
            "enumerate_posterior", pvae.enumerate_posterior, _coin, p, flips, method=method,
            names=["`method`", "method=", "`model`", "probs", "evidence", "impossible", "`x`"],
        )  # fmt: skip
        theta = np.array([0.2, 0.5, 0.8])
        x = np.asarray(flips, dtype=float)
        with np.errstate(divide="ignore"):
            log_lik = (x[:, None] * np.log(theta) + (1 - x[:, None]) * np.log1p(-theta)).sum(0)
            log_ev, posterior, _ = _reference(p, log_lik, True, False)
        assert math.isclose(post.log_evidence, log_ev, rel_tol=1e-9, abs_tol=1e-9)
        np.testing.assert_allclose(post.marginal("bias").numpy(), posterior, atol=1e-9)

    @st.composite
    def cases(draw):
        weights = draw(st.lists(st.integers(0, 4), min_size=3, max_size=3).filter(any))
        p = [w / sum(weights) for w in weights]
        n = draw(st.integers(1, 8))
        flips = torch.tensor(draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=n,
                                           max_size=n)), dtype=torch.float64)  # fmt: skip
        method = draw(st.one_of(st.sampled_from(["auto", "parallel", "sequential"]),
                                hostile_scalar))  # fmt: skip
        return p, flips, method

    fuzz(cases(), check, tier, fast=40)
