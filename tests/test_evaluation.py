"""Tests for pvae.evaluation.evaluate against a linear-Gaussian model with exact log p(x)."""

import pyro
import pyro.distributions as dist
import pytest
import torch

from pvae.evaluation import evaluate
from pvae.models import VAE, Autoencoder

D, K_LAT, SIGMA = 4, 2, 0.5


def _ppca(n=100, seed=0):
    """Probabilistic PCA: z ~ N(0, I), x | z ~ N(W z + b, sigma^2 I); exact evidence."""
    torch.set_default_dtype(torch.float64)
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(D, K_LAT, generator=g)
    b = torch.randn(D, generator=g)
    z = torch.randn(n, K_LAT, generator=g)
    x = z @ w.T + b + SIGMA * torch.randn(n, D, generator=g)
    evidence = dist.MultivariateNormal(b, w @ w.T + SIGMA**2 * torch.eye(D))
    post_cov = torch.linalg.inv(torch.eye(K_LAT) + w.T @ w / SIGMA**2)
    gain = post_cov @ w.T / SIGMA**2  # posterior mean = gain @ (x - b)

    def model(x):
        with pyro.plate("data", len(x)):
            z = pyro.sample("z", dist.Normal(torch.zeros(K_LAT), 1.0).to_event(1))
            pyro.sample("x", dist.Normal(z @ w.T + b, SIGMA).to_event(1), obs=x)

    return x, model, evidence.log_prob(x), gain, b, post_cov


def _exact_guide(gain, b, post_cov):
    tril = torch.linalg.cholesky(post_cov)

    def guide(x):
        with pyro.plate("data", len(x)):
            pyro.sample("z", dist.MultivariateNormal((x - b) @ gain.T, scale_tril=tril))

    return guide


def _wide_guide(gain, b, post_cov, inflate=1.5):
    scale = inflate * post_cov.diagonal().sqrt()

    def guide(x):
        with pyro.plate("data", len(x)):
            pyro.sample("z", dist.Normal((x - b) @ gain.T, scale).to_event(1))

    return guide


def test_exact_posterior_guide_gives_exact_evidence_for_any_k_and_chunking():
    x, model, log_px, gain, b, cov = _ppca(n=5)
    guide = _exact_guide(gain, b, cov)
    exact = log_px.mean().item()
    for kwargs in ({"num_particles": 3}, {"num_particles": 3, "max_elements": 7}):
        ev = evaluate(model, x, guide=guide, **kwargs)
        assert ev.log_likelihood == pytest.approx(exact, abs=1e-9)
        assert ev.elbo == pytest.approx(exact, abs=1e-9)  # KL(q || p(z|x)) = 0
        assert ev.log_likelihood_se == pytest.approx((log_px.std() / 5**0.5).item(), abs=1e-9)
        assert ev.reconstruction - ev.kl == pytest.approx(ev.elbo, abs=1e-12)
        assert (ev.num_examples, ev.num_particles) == (5, 3)


def test_iwae_bound_rises_with_k_and_reaches_exact_log_evidence():
    x, model, log_px, gain, b, cov = _ppca(n=100)
    guide = _wide_guide(gain, b, cov, inflate=2.0)
    exact = log_px.mean().item()
    lls = [
        evaluate(model, x, guide=guide, num_particles=k, seed=0).log_likelihood
        for k in (1, 10, 1000, 5000)
    ]
    assert lls[0] < lls[1] < lls[2] < exact + 0.005
    assert abs(lls[-1] - exact) < 0.01
    assert exact - lls[0] > 1.0  # the K = 1 bound (the ELBO) is visibly below


def test_vectorised_over_examples_and_particles():
    x, model, _, gain, b, cov = _ppca(n=100)
    calls = {"n": 0}
    wide = _wide_guide(gain, b, cov)

    def guide(x):
        calls["n"] += 1
        wide(x)

    evaluate(model, x, guide=guide, num_particles=200)
    assert calls["n"] == 2  # one structure probe + one pass over 100 x 200 pairs
    calls["n"] = 0
    evaluate(model, x, guide=guide, num_particles=200, max_elements=20_000)
    assert calls["n"] == 1 + 4  # 25 examples x 200 particles x 4 values per pass


def test_vae_elbo_matches_its_elbo_terms():
    torch.manual_seed(0)
    vae = VAE(6, 2, hidden=(8,), likelihood="bernoulli")
    x = (torch.rand(40, 6) < 0.3).float()
    ev = evaluate(vae, x, num_particles=200, seed=0)
    with torch.no_grad():
        terms = vae.elbo_terms(x.repeat(100, 1))  # 100 reparameterised draws per example
    analytic = (terms.reconstruction - terms.kl).mean().item()
    assert ev.elbo <= ev.log_likelihood < 0
    assert abs(ev.elbo - analytic) < 0.02
    assert ev.kl == pytest.approx(terms.kl.mean().item(), rel=0.1)


def test_invalid_inputs():
    x, model, _, gain, b, cov = _ppca(n=4)
    guide = _exact_guide(gain, b, cov)
    with pytest.raises(ValueError, match="`num_particles` must be a positive integer"):
        evaluate(model, x, guide=guide, num_particles=0)
    with pytest.raises(ValueError, match="squared error"):
        evaluate(Autoencoder(4, 2), x.float())
    with pytest.raises(ValueError, match="pass `guide=`"):
        evaluate(model, x)

    def no_plate(x):
        pyro.sample("x", dist.Normal(0.0, 1.0).expand([3, D]).to_event(2), obs=x[:3])

    with pytest.raises(ValueError, match="pyro.plate\\('data'"):
        evaluate(no_plate, x, guide=lambda x: None, num_particles=2)


def test_beta_weights_training_not_the_evaluated_density():
    """A beta-VAE's beta scales the KL in training; log p(x) of the same weights is unchanged."""
    x = (torch.rand(20, 6, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    vae = VAE(x_dim=6, z_dim=2, hidden=(8,))
    plain = evaluate(vae, x, num_particles=50, seed=0)
    vae.beta = 4.0
    weighted = evaluate(vae, x, num_particles=50, seed=0)
    assert weighted.log_likelihood == pytest.approx(plain.log_likelihood, abs=1e-6)
    assert weighted.elbo == pytest.approx(plain.elbo, abs=1e-6)
