"""Likelihoods: exact log densities, supports, custom factories."""

import math

import pyro.distributions as dist
import pytest
import torch

from pvae.models.likelihoods import (
    BernoulliLikelihood,
    CallableLikelihood,
    ContinuousBernoulliLikelihood,
    GaussianLikelihood,
    make_likelihood,
)

F64 = {"dtype": torch.float64}


def test_bernoulli_log_prob_by_hand():
    logits = torch.tensor([[0.3, -1.2]], **F64)
    x = torch.tensor([[1.0, 0.0]], **F64)
    expected = (0.3 - math.log1p(math.exp(0.3))) + (0.0 - math.log1p(math.exp(-1.2)))
    got = BernoulliLikelihood((2,))(logits).log_prob(x).item()
    assert got == pytest.approx(expected, abs=1e-12)


def test_continuous_bernoulli_log_prob_by_hand():
    # density C(p) p^x (1-p)^(1-x), C(p) = 2 artanh(1 - 2p) / (1 - 2p)
    p, x = 0.8, 0.3
    logit = math.log(p / (1 - p))
    c = 2 * math.atanh(1 - 2 * p) / (1 - 2 * p)
    expected = math.log(c) + x * math.log(p) + (1 - x) * math.log(1 - p)
    d = ContinuousBernoulliLikelihood((1,))(torch.tensor([[logit]], **F64))
    assert d.log_prob(torch.tensor([[x]], **F64)).item() == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("scale", [0.5, "learned"])
def test_gaussian_log_prob_by_hand(scale):
    lik = GaussianLikelihood((2,), scale=scale).double()
    sd = 1.0 if scale == "learned" else 0.5
    mean, x = torch.tensor([[0.0, 1.0]], **F64), torch.tensor([[0.5, 0.0]], **F64)
    expected = sum(
        -0.5 * ((a - b) / sd) ** 2 - math.log(sd) - 0.5 * math.log(2 * math.pi)
        for a, b in [(0.5, 0.0), (0.0, 1.0)]
    )
    assert lik(mean).log_prob(x).item() == pytest.approx(expected, abs=1e-12)
    learned = [n for n, _ in lik.named_parameters()]
    assert learned == (["log_scale"] if scale == "learned" else [])
    assert ("log_scale" in lik.state_dict()) == (scale == "learned")


def test_callable_moves_extra_batch_dims_to_the_event():
    lik = make_likelihood(lambda p: dist.Laplace(p, 0.5), (2, 3))
    assert isinstance(lik, CallableLikelihood)
    d = lik(torch.zeros(4, 2, 3))
    assert d.batch_shape == (4,) and d.event_shape == (2, 3)
    assert d.log_prob(torch.zeros(4, 2, 3)).shape == (4,)


def test_callable_errors():
    with pytest.raises(ValueError, match="must return a torch Distribution, got Tensor"):
        CallableLikelihood(lambda p: p, (2,))(torch.zeros(3, 2))
    bad = CallableLikelihood(lambda p: dist.Normal(p[:, :1], 1.0), (2,))
    with pytest.raises(ValueError, match=r"event shape \[2\]"):
        bad(torch.zeros(3, 2))


@pytest.mark.parametrize(
    "name,x,match",
    [
        ("bernoulli", [0.0, 0.5, 1.0], r"\{0, 1\}.*1 value\(s\) outside it .*e\.g\. 0\.5"),
        ("continuous_bernoulli", [0.0, 1.5, 1.0], r"\[0, 1\].*x / x.max\(\)"),
        ("gaussian", [0.0, float("-inf"), 1.0], r"\[-1e\+12, 1e\+12\]"),
        ("gaussian", [0.0, float("nan"), 1.0], "1 NaN value"),
    ],
)
def test_support_checks(name, x, match):
    lik = make_likelihood(name, (3,))
    with pytest.raises(ValueError, match=match):
        lik.check(torch.tensor([x]))
    lik.check(torch.tensor([[0.0, 1.0, 1.0]]))  # in every support


def test_unknown_name():
    with pytest.raises(ValueError, match=r"`likelihood` must be one of \['bernoulli'"):
        make_likelihood("poisson", (3,))
