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


# -- issue 15: log space throughout; issue 16: the cumulative evidence -------------------------
def test_huge_log_evidence_does_not_overflow():
    """log p(x) > 709 (a density): no OverflowError; the evidence overflows to inf, the log
    and the posterior are exact (brute force: logsumexp of log p(h) + log p(x|h))."""
    t = bayes_rule([0.25, 0.75], log_likelihood=[800.0, 801.0])
    expected = math.log(0.25 * math.exp(800 - 801) + 0.75) + 801
    assert math.isclose(t.log_evidence, expected, rel_tol=1e-15)
    assert t.evidence == math.inf and t.cumulative_evidence == math.inf
    w = 0.25 * math.exp(-1) / (0.25 * math.exp(-1) + 0.75)
    assert torch.allclose(t.posterior, torch.tensor([w, 1 - w], dtype=torch.float64), atol=1e-15)
    t2 = t.update(log_likelihood=[800.0, 801.0])
    assert math.isclose(t2.cumulative_log_evidence, t.log_evidence + t2.log_evidence)


def test_normalize_with_huge_prior_weights():
    """Weights near float64's maximum sum to inf; the prior is normalized in log space."""
    t = bayes_rule([1e308, 1e308, 0.0], [0.2, 0.6, 0.9], normalize=True)
    assert torch.allclose(t.prior, torch.tensor([0.5, 0.5, 0.0], dtype=torch.float64))
    assert torch.allclose(t.posterior, torch.tensor([0.25, 0.75, 0.0], dtype=torch.float64))
    assert math.isclose(t.evidence, 0.4, rel_tol=1e-12)


def test_cumulative_evidence_is_the_product_of_the_predictives():
    """p(x1, x2, x3) = p(x1) p(x2 | x1) p(x3 | x1, x2), each a one-step `evidence`, and equals
    the brute-force sum over hypotheses of p(h) prod_k p(x_k | h)."""
    prior = {"a": 0.2, "b": 0.3, "c": 0.5}
    liks = [{"a": 0.9, "b": 0.5, "c": 0.1}, {"a": 0.4, "b": 0.7, "c": 0.2},
            {"a": 0.05, "b": 0.6, "c": 0.3}]  # fmt: skip
    t = bayes_rule(prior, liks[0])
    predictives = [t.evidence]
    for lik in liks[1:]:
        t = t.update(lik)
        predictives.append(t.evidence)
    brute = sum(prior[h] * math.prod(lik[h] for lik in liks) for h in prior)
    assert math.isclose(math.prod(predictives), brute, rel_tol=1e-12)
    assert math.isclose(t.cumulative_evidence, brute, rel_tol=1e-12)
    assert math.isclose(t.cumulative_log_evidence, math.log(brute), rel_tol=1e-12)
    assert t.evidence == predictives[-1] != t.cumulative_evidence  # one step vs all the data


def test_cumulative_evidence_matches_the_beta_bernoulli_marginal_likelihood():
    r"""A fine grid over the coin's bias with a Beta(2, 3) prior: after n flips with k heads,
    one flip per update, the cumulative evidence is the closed form
    :math:`B(a + k, b + n - k) / B(a, b)` up to the grid's quadrature error."""
    a, b = 2.0, 3.0
    num = 20_000
    theta = (torch.arange(num, dtype=torch.float64) + 0.5) / num  # midpoint rule
    log_prior = (a - 1) * theta.log() + (b - 1) * torch.log1p(-theta)
    prior = (log_prior - torch.logsumexp(log_prior, 0)).exp()
    flips = [1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0]
    t = bayes_rule(prior, hypotheses=theta, likelihood=theta if flips[0] else 1 - theta,
                   normalize=True)  # fmt: skip
    for x in flips[1:]:
        t = t.update(theta if x else 1 - theta)
    k, n = sum(flips), len(flips)
    closed = betaln(a + k, b + n - k) - betaln(a, b)  # SciPy's log Beta function
    assert abs(t.cumulative_log_evidence - closed) < 1e-6
    assert abs(t.cumulative_evidence - math.exp(closed)) < 1e-6 * math.exp(closed)


def test_log_likelihood_tables_update_without_losing_mass():
    """A posterior that underflows to 0 in probability space is carried in log space."""
    t = bayes_rule([0.5, 0.5], log_likelihood=[0.0, -800.0])
    assert t.posterior[1] == 0.0 and t.log_joint[1] > -math.inf
    t2 = t.update(log_likelihood=[-800.0, 0.0])  # the data now favour h = 1 as strongly
    assert torch.allclose(t2.posterior, torch.tensor([0.5, 0.5], dtype=torch.float64))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"prior": [0.5, 0.5], "likelihood": [1, 1], "normalize": 1}, "`normalize` must be"),
        ({"prior": [0.5, 0.5], "likelihood": [1, 1], "hypotheses": 3}, "`hypotheses` must be"),
        (
            {"prior": [0.5, 0.5], "likelihood": [1, 1], "hypotheses": [[1], [2]]},
            "`hypotheses` must be hashable",
        ),
        ({"prior": torch.tensor([0.5, 0.5]) + 0j, "likelihood": [1, 1]}, "`prior` must hold real"),
        ({"prior": {"a": torch.ones(2)}, "likelihood": {"a": 1}}, "`prior` must hold numbers"),
    ],
)
def test_hostile_arguments_are_refused_by_name(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        bayes_rule(**kwargs)
