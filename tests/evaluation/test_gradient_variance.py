"""gradient_variance: closed forms, exact sums over a discrete guide, and a hand loop."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import Trace_ELBO

import pvae
from pvae._seed import seeded

X = torch.tensor(1.0)


def gauss_model(x):
    z = pyro.sample("z", dist.Normal(0.0, 1.0))
    pyro.sample("x", dist.Normal(z, 1.0), obs=x)


def gauss_guide(x):
    pyro.sample("z", dist.Normal(pyro.param("m", torch.tensor(0.3)), 0.5))


def coin_model(x):
    y = pyro.sample("y", dist.Bernoulli(0.3))
    pyro.sample("x", dist.Normal(2.0 * y, 1.0), obs=x)


def coin_guide(x):
    theta = torch.sigmoid(pyro.param("w", torch.tensor(0.4)))
    pyro.sample("y", dist.Bernoulli(theta), infer={"enumerate": "parallel"})


def test_reparam_variance_matches_a_hand_loop_over_the_same_draws():
    pyro.clear_param_store()
    gv = pvae.gradient_variance(gauss_model, gauss_guide, X, elbo="reparam", num_samples=50)
    grads = []
    with seeded(0):
        for _ in range(50):
            loss = Trace_ELBO().differentiable_loss(gauss_model, gauss_guide, X)
            (g,) = torch.autograd.grad(loss, [pyro.param("m").unconstrained()])
            grads.append(g.item())
    hand = torch.tensor(grads, dtype=torch.float64)
    assert gv["reparam"].variance == pytest.approx(float(hand.var()), rel=1e-9)
    assert gv["reparam"].mean_norm_sq == pytest.approx(float(hand.mean()) ** 2, rel=1e-9)
    assert gv.parameters == ("m",)


def _exact_score_moments():
    """Mean and variance of the score-function gradient in w by summing over y = 0, 1."""
    w = torch.tensor(0.4, requires_grad=True)
    per_y = []
    for y in (0.0, 1.0):
        theta = torch.sigmoid(w)
        log_q = dist.Bernoulli(theta).log_prob(torch.tensor(y))
        f = dist.Bernoulli(0.3).log_prob(torch.tensor(y)) + dist.Normal(2 * y, 1.0).log_prob(X)
        f = f - log_q
        # Pyro's surrogate: the score term log r * log q; E[grad log q] = 0 is left out
        surrogate = -(f.detach() * log_q)
        (g,) = torch.autograd.grad(surrogate, [w])
        per_y.append((dist.Bernoulli(theta).log_prob(torch.tensor(y)).exp().item(), g.item()))
    mean = sum(p * g for p, g in per_y)
    var = sum(p * (g - mean) ** 2 for p, g in per_y)
    return mean, var


def test_enum_has_no_noise_and_score_has_the_exact_variance():
    pyro.clear_param_store()
    enum = pvae.gradient_variance(coin_model, coin_guide, X, elbo="enum", num_samples=5)
    gv = pvae.gradient_variance(coin_model, coin_guide, X, elbo="score", num_samples=200)
    mean, var = _exact_score_moments()
    assert enum["enum"].variance == pytest.approx(0.0, abs=1e-12)
    assert enum["enum"].mean_norm_sq == pytest.approx(mean**2, rel=1e-5)  # the exact gradient
    assert gv["score"].variance == pytest.approx(var, rel=0.1)
    se = (var / 200) ** 0.5  # unbiased: the mean within 4 standard errors
    assert gv["score"].mean_norm_sq ** 0.5 == pytest.approx(abs(mean), abs=4 * se)


def test_refusals():
    with pytest.raises(ValueError, match="`elbo` must be one of"):
        pvae.gradient_variance(gauss_model, gauss_guide, X, elbo="nope")
    with pytest.raises(ValueError, match="at least 2"):
        pvae.gradient_variance(gauss_model, gauss_guide, X, num_samples=1)
    with pytest.raises(ValueError, match="no parameters"):
        pvae.gradient_variance(gauss_model, lambda x: pyro.sample("z", dist.Normal(0.0, 1.0)), X)
