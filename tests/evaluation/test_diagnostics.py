"""Tests for pvae.evaluation.diagnostics: ArviZ export and PSIS k-hat."""

import functools
import math
import warnings

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch

from pvae.evaluation import pareto_khat, psis_khat, to_inference_data
from pvae.vi.guides import MeanFieldGuide

# Conjugate Normal: mu ~ N(0, 1), x_i | mu ~ N(mu, SIGMA^2), i = 1..N.
SIGMA = 0.5
X = torch.tensor([0.3, 1.1, -0.4, 2.0, 0.9, 1.4, 0.2, 0.8])
POST_VAR = 1.0 / (1.0 + len(X) / SIGMA**2)
POST_LOC = POST_VAR * float(X.sum()) / SIGMA**2
POST_SCALE = math.sqrt(POST_VAR)


def normal_model(x):
    mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
    with pyro.plate("data", len(x)):
        pyro.sample("obs", dist.Normal(mu, SIGMA), obs=x)


def exact_guide(x):
    pyro.sample("mu", dist.Normal(POST_LOC, POST_SCALE))


def close_guide(x):
    # 1.2 times wider than the posterior: bounded weights, a light tail (k <= 0)
    pyro.sample("mu", dist.Normal(POST_LOC, 1.2 * POST_SCALE))


def narrow_guide(x):
    # Ten times too narrow and ten posterior sds off. Narrowing alone cannot push k-hat up
    # (the weights' tail index is 1 - width^2; the estimate saturates near 0.72 at the worst
    # of 30 seeds for widths 0.1, 0.05, 0.03); off-centre, its minimum over seeds 0..29 is 1.0.
    pyro.sample("mu", dist.Normal(POST_LOC + 10 * POST_SCALE, 0.1 * POST_SCALE))


# Local (amortized) conjugate latents: z_i ~ N(0, 1), x_i | z_i ~ N(z_i, SIGMA^2).
LOCAL_SHRINK = 1.0 / (1.0 + SIGMA**2)


def local_model(x):
    with pyro.plate("data", len(x)):
        z = pyro.sample("z", dist.Normal(0.0, 1.0))
        pyro.sample("obs", dist.Normal(z, SIGMA), obs=x)


def local_guide(x, width=1.0):
    with pyro.plate("data", len(x)):
        scale = width * SIGMA * math.sqrt(LOCAL_SHRINK)
        pyro.sample("z", dist.Normal(LOCAL_SHRINK * x, scale))


def _arviz():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import arviz

    return arviz


# --------------------------------------------------------------------------- pareto_khat
def test_pareto_khat_matches_arviz_psislw():
    rng = np.random.default_rng(1)
    log_w = np.stack(
        [
            rng.normal(size=3000),  # log-normal weights: light tail
            np.log1p(rng.pareto(1.5, size=3000)),  # Pareto tail with k = 1/1.5
            3.0 * rng.normal(size=3000),
            rng.standard_t(2, size=3000),
        ]
    )
    expected = _arviz().psislw(log_w.copy())[1]
    np.testing.assert_allclose(pareto_khat(log_w), expected, rtol=0, atol=1e-12)
    assert pareto_khat(log_w[0]).shape == ()


def test_pareto_khat_recovers_a_pareto_tail():
    rng = np.random.default_rng(2)
    for k in (0.3, 0.8):  # Pareto(alpha) weights have shape k = 1 / alpha
        log_w = np.log1p(rng.pareto(1.0 / k, size=(20, 10_000)))
        assert abs(pareto_khat(log_w).mean() - k) < 0.05


def test_pareto_khat_edge_cases_and_errors():
    assert pareto_khat(np.zeros(100)) == -np.inf  # proposal equal to target
    assert pareto_khat(np.r_[np.zeros(97), 1.0, 2.0, 3.0]) == np.inf  # as arviz: 3-point tail
    with pytest.raises(ValueError, match="at least 25 weights"):
        pareto_khat(np.zeros(10))
    with pytest.raises(ValueError, match="NaN"):
        pareto_khat(np.r_[np.zeros(99), np.nan])


# --------------------------------------------------------------------------- psis_khat
def test_psis_khat_exact_posterior_is_good_narrow_guide_is_bad():
    # Over seeds 0..29 at 10_000 particles: exact guide k-hat <= -0.07, narrow guide >= 1.01.
    good = psis_khat(normal_model, exact_guide, X, num_particles=10_000)
    # the exact posterior's weights are constant up to rounding: it reads as exact
    assert good.khat == -math.inf and good.diagnosis == "exact"
    assert (good.pointwise, good.num_bad, good.num_points, good.plate) == (None, 0, 1, None)
    bad = psis_khat(normal_model, narrow_guide, X, num_particles=10_000)
    assert bad.khat > 0.7 and bad.diagnosis == "bad" and bad.num_bad == 1


def test_psis_khat_loop_path_agrees():
    # One trace per particle: 2000 particles (k-hat is noisier: over 30 seeds the narrow
    # guide's k-hat stays above 0.75 at 2000 particles, above 1.0 at 10_000).
    loop = psis_khat(normal_model, narrow_guide, X, num_particles=2000, vectorize=False)
    assert loop.khat > 0.5 and loop.diagnosis != "good"
    loop = psis_khat(normal_model, exact_guide, X, num_particles=2000, vectorize=False)
    assert loop.diagnosis == "exact" and (loop.vectorized, loop.reason) == (
        False,
        "vectorize=False",
    )
    close = psis_khat(normal_model, close_guide, X, num_particles=2000, vectorize=False)
    assert close.khat < 0.5 and close.diagnosis == "good"


def test_psis_khat_pointwise_for_amortized_guide():
    x = torch.tensor([-1.0, 0.0, 0.5, 2.0, 3.0])
    good = psis_khat(local_model, local_guide, x, num_particles=10_000)
    assert good.plate == "data" and good.pointwise.shape == (5,)
    assert good.num_points == 5 and good.num_bad == 0 and good.diagnosis == "exact"
    assert good.khat == pytest.approx(float(good.pointwise.max()), abs=0)
    narrow = functools.partial(local_guide, width=0.1)
    bad = psis_khat(local_model, narrow, x, num_particles=10_000)
    assert bad.num_bad == 5 and bad.khat > 0.7 and bad.diagnosis == "bad"


def test_psis_khat_errors():
    with pytest.raises(ValueError, match="`num_particles` must be an int >= 25"):
        psis_khat(normal_model, exact_guide, X, num_particles=10)
    with pytest.raises(ValueError, match="continuous latent 'mu' is not sampled by `guide`"):
        psis_khat(normal_model, lambda x: None, X, num_particles=100)


# --------------------------------------------------------------------------- export
def test_export_matches_analytic_posterior_and_shapes():
    num = 2000
    idata = to_inference_data(normal_model, exact_guide, X, num_samples=num)
    assert idata.attrs["pvae_vectorized"] == 1
    mu = idata.posterior["mu"]
    assert mu.dims == ("chain", "draw") and mu.shape == (1, num)  # no padded plate dims
    # Monte-Carlo error of the mean of `num` independent draws: 4 standard errors.
    assert abs(float(mu.mean()) - POST_LOC) < 4 * POST_SCALE / math.sqrt(num)
    assert abs(float(mu.std()) / POST_SCALE - 1) < 4 / math.sqrt(2 * num)
    loglik = idata.log_likelihood["obs"]
    assert loglik.dims == ("chain", "draw", "data") and loglik.shape == (1, num, len(X))
    expected = dist.Normal(torch.from_numpy(mu.values[0, :, None]), SIGMA).log_prob(X.double())
    np.testing.assert_allclose(loglik.values[0], expected.numpy(), atol=1e-5)
    assert idata.posterior_predictive["obs"].shape == (1, num, len(X))
    np.testing.assert_array_equal(idata.observed_data["obs"].values, X.double().numpy())
    stats = _arviz().summary(idata, kind="stats")
    assert list(stats.columns) == ["mean", "sd", "hdi_3%", "hdi_97%"]
    assert abs(stats.loc["mu", "mean"] - POST_LOC) < 0.01


def test_posterior_predictive_has_the_predictive_spread():
    idata = to_inference_data(normal_model, exact_guide, X, num_samples=4000)
    predictive = idata.posterior_predictive["obs"].values[0]  # (draw, data)
    sd = math.sqrt(SIGMA**2 + POST_VAR)  # predictive N(post_loc, sigma^2 + post_var)
    assert abs(predictive.mean() - POST_LOC) < 4 * sd / math.sqrt(predictive.size) * 3
    assert abs(predictive.std() / sd - 1) < 0.05


def test_export_site_outside_plates_keeps_its_own_shape():
    def model(x):
        w = pyro.sample("w", dist.Normal(torch.zeros(3), 1.0).to_event(1))
        b = pyro.sample("b", dist.Normal(torch.zeros(2), 1.0))  # batch dims, no plate
        with pyro.plate("data", len(x)):
            pyro.sample("obs", dist.Normal(w.sum(-1, keepdim=True) + b.sum(-1, True), 1.0), obs=x)

    def guide(x):
        pyro.sample("w", dist.Normal(torch.zeros(3), 0.5).to_event(1))
        pyro.sample("b", dist.Normal(torch.zeros(2), 0.5))

    idata = to_inference_data(model, guide, X, num_samples=50)
    assert idata.posterior["w"].shape == (1, 50, 3)
    assert idata.posterior["b"].shape == (1, 50, 2)
    assert idata.log_likelihood["obs"].shape == (1, 50, len(X))
    # keepdim=True mixes the particles dim with the data dim: the export detects it and loops
    assert idata.attrs["pvae_vectorized"] == 0


def test_export_loop_fallback_for_python_control_flow():
    def model(x):
        mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
        if float(mu) > 0:  # Python control flow on a sampled value: cannot vectorize
            mu = mu * 1.0
        with pyro.plate("data", len(x)):
            pyro.sample("obs", dist.Normal(mu, SIGMA), obs=x)

    idata = to_inference_data(model, exact_guide, X, num_samples=300)
    assert idata.attrs["pvae_vectorized"] == 0
    assert idata.posterior["mu"].shape == (1, 300)
    assert abs(float(idata.posterior["mu"].mean()) - POST_LOC) < 4 * POST_SCALE / math.sqrt(300)
    forced = to_inference_data(normal_model, exact_guide, X, num_samples=20, vectorize=False)
    assert forced.attrs["pvae_vectorized"] == 0 and forced.posterior["mu"].shape == (1, 20)


def test_export_amortized_local_latents_keep_data_dim_and_max_data():
    x = torch.linspace(-2, 2, 40)
    idata = to_inference_data(local_model, local_guide, x, num_samples=500, max_data=6)
    z = idata.posterior["z"]
    assert z.dims == ("chain", "draw", "data") and z.shape == (1, 500, 6)
    assert idata.observed_data["obs"].shape == (6,)
    expected = LOCAL_SHRINK * x[:6].double().numpy()
    scale = SIGMA * math.sqrt(LOCAL_SHRINK)
    assert np.all(np.abs(z.values[0].mean(0) - expected) < 4 * scale / math.sqrt(500))


def test_export_exact_posterior_draws_with_enumerate_posterior():
    from pvae.exact import enumerate_posterior
    from pvae.exact.toy import sprinkler

    post = enumerate_posterior(sprinkler)
    idata = to_inference_data(sprinkler, post, num_samples=4000)
    assert idata.attrs["pvae_draws"] == "exact posterior"
    assert set(idata.posterior.data_vars) == {"cloudy", "sprinkler", "rain"}
    assert idata.posterior["rain"].shape == (1, 4000)
    p = 0.708  # P(rain | wet grass), Murphy 1998
    assert abs(float(idata.posterior["rain"].mean()) - p) < 4 * math.sqrt(p * (1 - p) / 4000)
    # wet grass was observed as 1, so every draw has p(wet | sprinkler, rain) > 0
    assert np.all(np.isfinite(idata.log_likelihood["wet_grass"].values))


def test_export_exact_posterior_of_local_discrete_latents():
    from pvae.exact import enumerate_posterior
    from pvae.exact.toy import toy_vae

    post = enumerate_posterior(toy_vae)
    idata = to_inference_data(toy_vae, post, num_samples=3000)
    z = idata.posterior["z"]
    assert z.dims == ("chain", "draw", "data") and z.shape[:2] == (1, 3000)
    marginal = post.marginal("z")  # (N, K)
    for k in range(marginal.shape[-1]):
        freq = (z.values[0] == k).mean(0)
        sd = np.sqrt(marginal[:, k].numpy() * (1 - marginal[:, k].numpy()) / 3000)
        assert np.all(np.abs(freq - marginal[:, k].numpy()) <= 4 * sd + 1e-12)


def test_export_deterministic_sites_go_to_the_posterior():
    def model(x):
        mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
        pyro.deterministic("mu2", 2 * mu)
        with pyro.plate("data", len(x)):
            pyro.sample("obs", dist.Normal(mu, SIGMA), obs=x)

    idata = to_inference_data(model, exact_guide, X, num_samples=100)
    assert set(idata.posterior.data_vars) == {"mu", "mu2"}
    assert set(idata.log_likelihood.data_vars) == {"obs"}
    np.testing.assert_allclose(idata.posterior["mu2"], 2 * idata.posterior["mu"], atol=1e-6)


def test_pvae_vae_export_and_pointwise_khat_shapes():
    from pvae.models.vae import VAE

    vae = VAE(x_dim=6, z_dim=2, hidden=(8,), likelihood="bernoulli")
    x = (torch.rand(30, 6) > 0.5).float()
    idata = to_inference_data(vae.model, vae.guide, x, num_samples=40, max_data=5)
    z = idata.posterior["z"]
    assert z.dims[:3] == ("chain", "draw", "data") and z.shape == (1, 40, 5, 2)
    assert idata.log_likelihood["x"].shape == (1, 40, 5)
    assert idata.posterior_predictive["x"].shape == (1, 40, 5, 6)
    k = psis_khat(vae.model, vae.guide, x[:7], num_particles=200)
    assert k.plate == "data" and k.pointwise.shape == (7,) and k.num_points == 7
    assert np.all(np.isfinite(k.pointwise.numpy()))


def test_export_errors():
    with pytest.raises(ValueError, match="`guide` must be a Pyro guide"):
        to_inference_data(normal_model, 3, X)
    with pytest.raises(ValueError, match="`num_samples` must be a positive int"):
        to_inference_data(normal_model, exact_guide, X, num_samples=0)
    with pytest.raises(ValueError, match="`max_data` must be a positive int"):
        to_inference_data(normal_model, exact_guide, X, max_data=-1)
    from pvae.exact import enumerate_posterior
    from pvae.exact.toy import toy_vae

    with pytest.raises(ValueError, match="`max_data` cannot cut the data of an exact"):
        to_inference_data(toy_vae, enumerate_posterior(toy_vae), num_samples=5, max_data=2)
    x = torch.tensor([[1.0, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0], [0, 1, 0, 1]])
    with pytest.raises(ValueError, match="exact draws of `z` have shape"):
        to_inference_data(toy_vae, enumerate_posterior(toy_vae, x), x[:2], num_samples=5)
    with pytest.raises(ValueError, match="`max_data=2` found no tensor argument of length"):
        to_inference_data(toy_vae, MeanFieldGuide(toy_vae), num_samples=5, max_data=2)

    def subsampled(x):
        with pyro.plate("data", len(x), subsample_size=2):
            pyro.sample("obs", dist.Normal(0.0, 1.0), obs=x[:2])

    with pytest.raises(ValueError, match="subsamples 2 of its 8 items"):
        to_inference_data(subsampled, lambda x: None, X, num_samples=5)


def test_python_bool_mask_and_masked_observations():
    """`poutine.mask(mask=True)` (Pyro's HMM example) works, and a masked observation leaves
    the weights: with the only observation masked, the prior as guide is exact."""
    from pyro import poutine

    def model(x, keep):
        mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
        with pyro.plate("data", len(x)), poutine.mask(mask=keep):
            pyro.sample("obs", dist.Normal(mu, SIGMA), obs=x)

    def prior(x, keep):
        pyro.sample("mu", dist.Normal(0.0, 1.0))

    r = psis_khat(model, prior, X[:1], True, num_particles=500)
    assert r.diagnosis != "exact"  # the observation counts: the prior is not the posterior
    assert psis_khat(model, prior, X[:1], False, num_particles=500).diagnosis == "exact"
    idata = to_inference_data(model, prior, X[:2], torch.tensor([True, False]), num_samples=50)
    assert np.all(idata.log_likelihood["obs"].values[..., 1] == 0.0)  # masked: contributes 0
    assert np.all(idata.log_likelihood["obs"].values[..., 0] < 0.0)
