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
        assert ev.log_evidence == pytest.approx(exact, abs=1e-9)
        assert ev.elbo == pytest.approx(exact, abs=1e-9)  # KL(q || p(z|x)) = 0
        assert ev.log_evidence_se == pytest.approx((log_px.std() / 5**0.5).item(), abs=1e-9)
        assert ev.reconstruction - ev.kl_prior == pytest.approx(ev.elbo, abs=1e-12)
        assert (ev.num_examples, ev.num_particles) == (5, 3)


def test_iwae_bound_rises_with_k_and_reaches_exact_log_evidence():
    x, model, log_px, gain, b, cov = _ppca(n=100)
    guide = _wide_guide(gain, b, cov, inflate=2.0)
    exact = log_px.mean().item()
    lls = [
        evaluate(model, x, guide=guide, num_particles=k, seed=0).log_evidence
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

    ev = evaluate(model, x, guide=guide, num_particles=200)
    # a structure probe, one pass over 100 x 200 pairs, two one-particle checks of that pass
    assert calls["n"] == 1 + 1 + 2 and ev.vectorized
    calls["n"] = 0
    evaluate(model, x, guide=guide, num_particles=200, max_elements=20_000)
    # 25 examples x 200 particles x 4 values per chunk: 4 chunks of examples, each probed;
    # a chunk's sites hold 25 x (2 + 4) = 150 elements, so its 200 particles run in 2 passes
    # of at most 20_000 / 150 = 133; the first chunk is checked by two one-particle runs
    assert calls["n"] == 4 * (1 + 2) + 2


def test_vae_elbo_matches_its_elbo_terms():
    torch.manual_seed(0)
    vae = VAE(6, 2, hidden=(8,), likelihood="bernoulli")
    x = (torch.rand(40, 6) < 0.3).float()
    ev = evaluate(vae, x, num_particles=200, seed=0)
    with torch.no_grad():
        terms = vae.elbo_terms(x.repeat(100, 1))  # 100 reparameterised draws per example
    analytic = (terms.reconstruction - terms.kl_prior).mean().item()
    assert ev.elbo <= ev.log_evidence < 0
    assert abs(ev.elbo - analytic) < 0.02
    assert ev.kl_prior == pytest.approx(terms.kl_prior.mean().item(), rel=0.1)


def test_invalid_inputs():
    x, model, _, gain, b, cov = _ppca(n=4)
    guide = _exact_guide(gain, b, cov)
    with pytest.raises(ValueError, match="`num_particles` must be a positive integer"):
        evaluate(model, x, guide=guide, num_particles=0)
    with pytest.raises(ValueError, match="squared error"):
        evaluate(Autoencoder(4, 2), x.float())
    with pytest.raises(ValueError, match="pass `guide=`"):
        evaluate(model, x)

    with pytest.raises(ValueError, match="`num_particles` must be a positive integer"):
        evaluate(model, x, guide=guide, num_particles=True)


def test_a_model_without_a_data_plate_is_scored_jointly():
    x, *_ = _ppca(n=4)

    def no_plate(x):
        pyro.sample("x", dist.Normal(0.0, 1.0).expand([3, D]).to_event(2), obs=x[:3])

    ev = evaluate(no_plate, x, guide=lambda x: None, num_particles=2)
    exact = float(dist.Normal(0.0, 1.0).log_prob(x[:3]).sum())
    assert (ev.per_example, ev.num_examples) == (False, 4)
    assert ev.log_evidence == pytest.approx(exact, abs=1e-9) and "no plate" in ev.reason


def test_global_latents_give_the_joint_log_evidence():
    """mu ~ N(0, 1), x_i ~ N(mu, 1): log p(x) is a joint number (a multivariate normal)."""
    torch.set_default_dtype(torch.float64)
    x = torch.tensor([0.5, 1.5, -0.3, 2.2])
    n = len(x)

    def model(x):
        mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
        with pyro.plate("data", len(x)):
            pyro.sample("x", dist.Normal(mu, 1.0), obs=x)

    def guide(x):  # the exact posterior N(sum x / (n + 1), 1 / (n + 1))
        pyro.sample("mu", dist.Normal(x.sum() / (n + 1), (n + 1) ** -0.5))

    exact = float(dist.MultivariateNormal(torch.zeros(n), torch.eye(n) + 1).log_prob(x))
    ev = evaluate(model, x, guide=guide, num_particles=20, max_elements=50)
    assert (ev.per_example, ev.num_examples) == (False, n)
    assert "latent 'mu' is outside plate 'data'" in ev.reason
    assert ev.log_evidence == pytest.approx(exact, abs=1e-9)
    assert ev.elbo == pytest.approx(exact, abs=1e-9)


def test_deprecated_names_still_read():
    x, model, _, gain, b, cov = _ppca(n=4)
    ev = evaluate(model, x, guide=_exact_guide(gain, b, cov), num_particles=2)
    with pytest.warns(DeprecationWarning, match="renamed `log_evidence`"):
        assert ev.log_likelihood == ev.log_evidence
    with pytest.warns(DeprecationWarning, match="renamed `kl_prior`"):
        assert ev.kl == ev.kl_prior


def test_beta_weights_training_not_the_evaluated_density():
    """A beta-VAE's beta scales the KL in training; log p(x) of the same weights is unchanged."""
    x = (torch.rand(20, 6, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    vae = VAE(x_dim=6, z_dim=2, hidden=(8,))
    plain = evaluate(vae, x, num_particles=50, seed=0)
    vae.beta = 4.0
    weighted = evaluate(vae, x, num_particles=50, seed=0)
    assert weighted.log_evidence == pytest.approx(plain.log_evidence, abs=1e-6)
    assert weighted.elbo == pytest.approx(plain.elbo, abs=1e-6)


@pytest.mark.parametrize("bad", [[float("inf")], [float("-inf"), 0.5]])
def test_non_finite_data_are_refused_by_name(bad):
    """Found by the slow fuzz tier: inf data reached Pyro as a NaN log-density warning."""

    def model(x):
        with pyro.plate("data", len(x)):
            z = pyro.sample("z", dist.Normal(0.0, 1.0))
            pyro.sample("x", dist.Normal(z, 1.0), obs=x)

    def guide(x):
        with pyro.plate("data", len(x)):
            pyro.sample("z", dist.Normal(x / 2, 0.5**0.5))

    with pytest.raises(ValueError, match="`data` holds non-finite values"):
        evaluate(model, torch.tensor(bad), guide=guide, num_particles=1, progress=False)
