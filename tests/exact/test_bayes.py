"""Tests for pvae.exact.bayes: Bayes' rule on explicit tables."""

import math

import pytest
import torch
from scipy.special import betaln

from pvae.exact.bayes import BayesTable, bayes_rule


def test_medical_test_matches_eddy_1982():
    t = bayes_rule({"disease": 0.01, "healthy": 0.99}, {"disease": 0.8, "healthy": 0.096})
    assert isinstance(t, BayesTable)
    assert t.hypotheses == ("disease", "healthy")
    # p(+) = 0.01 * 0.8 + 0.99 * 0.096 = 0.10304
    assert t.evidence == pytest.approx(0.10304, abs=1e-12)
    assert t.prob("disease") == pytest.approx(0.008 / 0.10304, abs=1e-12)
    assert round(t.prob("disease"), 4) == 0.0776
    for column in (t.prior, t.likelihood, t.joint, t.posterior):
        assert column.dtype == torch.float64 and column.shape == (2,)
    torch.testing.assert_close(t.joint, t.prior * t.likelihood, rtol=0, atol=1e-15)
    torch.testing.assert_close(t.posterior, t.joint / t.evidence, rtol=0, atol=1e-15)
    assert t.log_evidence == pytest.approx(math.log(0.10304), abs=1e-12)


def test_sequence_prior_with_hypotheses_and_callable_likelihood():
    t = bayes_rule([0.25, 0.75], hypotheses=["a", "b"], likelihood=lambda h: {"a": 2, "b": 6}[h])
    # densities above 1 are fine: joint 0.5, 4.5 -> posterior 0.1, 0.9
    assert t.evidence == pytest.approx(5.0, abs=1e-12)
    assert t.prob("b") == pytest.approx(0.9, abs=1e-12)
    assert bayes_rule([0.5, 0.5], [1.0, 3.0]).hypotheses == (0, 1)


def test_tensor_hypotheses_are_plain_numbers():
    grid = torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)
    t = bayes_rule(torch.full((3,), 1 / 3), hypotheses=grid, likelihood=grid**2)
    assert t.hypotheses == (0.25, 0.5, 0.75)
    assert t.prob(0.75) == pytest.approx(0.5625 / (0.0625 + 0.25 + 0.5625), abs=1e-12)


def test_update_equals_one_table_with_product_likelihood():
    prior = {"fair": 0.5, "biased": 0.5}
    heads = {"fair": 0.5, "biased": 0.9}
    t = bayes_rule(prior, heads).update(heads).update({"fair": 0.5, "biased": 0.1})
    once = bayes_rule(prior, {"fair": 0.125, "biased": 0.081})
    torch.testing.assert_close(t.posterior, once.posterior, rtol=0, atol=1e-12)
    # the evidence of the last step is p(tails | heads, heads)
    p_hh = 0.5 * 0.25 + 0.5 * 0.81
    assert t.evidence == pytest.approx(once.evidence / p_hh, abs=1e-12)


def test_log_space_thousand_flips_against_beta_binomial():
    heads, flips = 612, 1000
    grid = torch.linspace(0.005, 0.995, 199, dtype=torch.float64)
    log_lik = heads * grid.log() + (flips - heads) * torch.log1p(-grid)
    t = bayes_rule(torch.full((199,), 1 / 199), hypotheses=grid, log_likelihood=log_lik)
    assert t.log_space and math.isfinite(t.log_evidence)
    assert float(t.posterior.sum()) == pytest.approx(1.0, abs=1e-12)
    # Uniform prior: the grid's evidence approximates the Beta(1, 1) marginal likelihood
    # of the sequence, B(h + 1, n - h + 1), up to the grid spacing's Riemann error.
    exact = float(betaln(heads + 1, flips - heads + 1))
    assert t.log_evidence == pytest.approx(exact - math.log(0.005 * 199), abs=1e-3)
    # the posterior mean matches the Beta(613, 389) mean to grid accuracy
    mean = float((t.posterior * grid).sum())
    assert mean == pytest.approx((heads + 1) / (flips + 2), abs=1e-4)
    # the plain likelihood would underflow in float32 but the log path keeps it exact
    assert float(t.log_likelihood[100]) == pytest.approx(float(log_lik[100]), abs=0)


def test_log_space_agrees_with_probability_space():
    lik = torch.tensor([0.3, 0.0, 2.5], dtype=torch.float64)
    a = bayes_rule([0.2, 0.3, 0.5], lik)
    b = bayes_rule([0.2, 0.3, 0.5], log_likelihood=lik.log())
    torch.testing.assert_close(a.posterior, b.posterior, rtol=0, atol=1e-15)
    assert a.log_evidence == pytest.approx(b.log_evidence, abs=1e-15)


def test_zero_prior_mass_is_allowed():
    t = bayes_rule([0.0, 1.0], [1.0, 0.5])
    assert t.posterior.tolist() == [0.0, 1.0]


def test_normalize_rescales_prior():
    t = bayes_rule({"a": 2.0, "b": 6.0}, {"a": 1.0, "b": 1.0}, normalize=True)
    assert t.prior.tolist() == [0.25, 0.75]


def test_printed_table_and_dataframe():
    t = bayes_rule({"disease": 0.01, "healthy": 0.99}, {"disease": 0.8, "healthy": 0.096})
    text = str(t)
    assert text.splitlines()[0].split() == [
        "hypothesis",
        "prior",
        "likelihood",
        "joint",
        "posterior",
    ]
    assert "0.0776398" in text and "evidence p(x) = 0.10304" in text
    frame = t.to_dataframe()
    assert list(frame.columns) == ["prior", "likelihood", "joint", "posterior"]
    assert frame.loc["disease", "posterior"] == pytest.approx(0.008 / 0.10304, abs=1e-12)
    logged = bayes_rule([0.5, 0.5], log_likelihood=[-1000.0, -1001.0])
    assert "log_likelihood" in str(logged)
    assert list(logged.to_dataframe().columns)[1] == "log_likelihood"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"prior": [0.5, 0.4], "likelihood": [1, 1]}, r"`prior` must sum to 1, got 0\.9"),
        ({"prior": [1.5, -0.5], "likelihood": [1, 1]}, r"`prior` must be finite and non-neg"),
        ({"prior": [float("nan"), 1.0], "likelihood": [1, 1]}, r"`prior` must not contain NaN"),
        ({"prior": [0.5, 0.5], "likelihood": [1, -1]}, r"`likelihood` must be finite and non"),
        ({"prior": [0.5, 0.5], "likelihood": [1, float("inf")]}, r"`likelihood` must be finite"),
        ({"prior": [0.5, 0.5], "likelihood": [1, float("nan")]}, r"`likelihood` must not"),
        ({"prior": [0.5, 0.5], "likelihood": [1, 1, 1]}, r"one entry per hypothesis \(2\)"),
        ({"prior": {"a": 0.5, "b": 0.5}, "likelihood": {"a": 1, "c": 1}}, r"must match those"),
        ({"prior": [0.5, 0.5], "likelihood": [0.0, 0.0]}, r"evidence p\(x\) is 0"),
        ({"prior": [1.0, 0.0], "likelihood": [0.0, 1.0]}, r"evidence p\(x\) is 0"),
        ({"prior": [0.5, 0.5]}, r"exactly one of `likelihood` and `log_likelihood`, got neither"),
        ({"prior": [0.5, 0.5], "likelihood": [1, 1], "hypotheses": ["a"]}, r"`hypotheses`"),
        ({"prior": [0.5, 0.5], "likelihood": [1, 1], "hypotheses": ["a", "a"]}, r"distinct"),
        ({"prior": [0.5, 0.5], "log_likelihood": [0, float("inf")]}, r"below \+inf"),
        ({"prior": [], "likelihood": []}, r"at least one hypothesis"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bayes_rule(**kwargs)


def test_prob_of_unknown_hypothesis():
    t = bayes_rule({"a": 0.5, "b": 0.5}, {"a": 1, "b": 1})
    with pytest.raises(ValueError, match=r"`hypothesis` must be one of \['a', 'b'\], got 'c'"):
        t.prob("c")
