"""Tests for pvae.vi.guides: the mean-field guide, SVI fitting and CAVI."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch

from pvae import toy
from pvae.exact import enumerate_posterior
from pvae.vi.coordinate_ascent import cavi
from pvae.vi.decomposition import elbo_decomposition
from pvae.vi.guides import MeanFieldGuide, fit_guide


def test_mean_field_guide_structure():
    guide = MeanFieldGuide(toy.toy_vae)
    assert guide.sites == ("z",)
    assert guide.marginals()["z"].shape == (6, 3)  # one factor per datapoint in the plate
    assert torch.allclose(guide.marginals()["z"].sum(-1), torch.ones(6, dtype=torch.float64))
    with pytest.raises(ValueError, match="scalar discrete latent"):
        MeanFieldGuide(lambda: pyro.sample("z", dist.Normal(0.0, 1.0)))
    with pytest.raises(ValueError, match="`init`"):
        MeanFieldGuide(toy.medical_test, init="zeros")


def test_cavi_single_site_is_exact(float64):
    r = cavi(toy.medical_test)
    assert r.marginals["disease"][1].item() == pytest.approx(0.008 / 0.10304, abs=1e-9)
    assert abs(r.kl) < 1e-12
    assert r.log_evidence == pytest.approx(math.log(0.10304), abs=1e-12)


def test_cavi_is_a_fixed_point_and_not_exact_on_burglary(float64):
    r = cavi(toy.burglary_alarm)
    post = enumerate_posterior(toy.burglary_alarm)
    assert r.log_evidence == pytest.approx(post.log_evidence, abs=1e-12)
    # mean field cannot represent the explaining-away correlation: KL(q || p) > 0
    assert r.kl > 0.1
    assert r.log_evidence - r.elbo - r.kl == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    "name, num_steps, lr",
    [("burglary-alarm", 200, 0.5), ("sprinkler", 500, 0.5), ("medical-test", 200, 0.5)],
)
def test_svi_mean_field_reaches_cavi_optimum(float64, name, num_steps, lr):
    model = toy.TOYS[name]
    best = cavi(model, num_restarts=20)
    guide = MeanFieldGuide(model)
    fit = fit_guide(model, guide, num_steps=num_steps, lr=lr, seed=0)
    d = elbo_decomposition(model, guide)
    assert fit.final_elbo == pytest.approx(d.elbo, abs=1e-9)
    assert d.kl >= best.kl - 1e-9  # CAVI's restarts found the best mean-field answer
    assert d.kl - best.kl < 1e-3


def test_fit_guide_errors():
    with pytest.raises(ValueError, match="`num_steps`"):
        fit_guide(toy.medical_test, MeanFieldGuide(toy.medical_test), num_steps=0)


def test_cavi_rejects_plated_latents():
    with pytest.raises(ValueError, match="outside plates"):
        cavi(toy.toy_vae)


def test_mean_field_guide_fits_a_float64_toy_under_the_float32_default():
    """The factors take the site's dtype, so float64 toys train with float32 as default."""
    assert torch.get_default_dtype() == torch.float32
    guide = MeanFieldGuide(toy.medical_test)
    fitted = fit_guide(toy.medical_test, guide, num_steps=200, lr=0.2, seed=0)
    # one latent: mean field is exact, so q reaches the posterior 0.008 / 0.10304
    assert guide.marginals()["disease"][1].item() == pytest.approx(0.008 / 0.10304, abs=1e-3)
    assert fitted.final_elbo == pytest.approx(math.log(0.10304), abs=1e-5)


def test_mean_field_guide_with_two_latents_in_one_plate(float64):
    """Two sites in one plate (a plate made once per call): SVI reaches CAVI's answer per
    datapoint, whose ELBO is below the exact log p(x) by the explaining-away KL."""
    x = torch.tensor([1.0, 0.0, 1.0])

    def model(x):
        with pyro.plate("data", 3):
            a = pyro.sample("a", dist.Bernoulli(0.3))
            b = pyro.sample("b", dist.Bernoulli(0.6))
            pyro.sample("x", dist.Bernoulli(0.1 + 0.4 * a + 0.4 * b), obs=x)

    guide = MeanFieldGuide(model, x)
    fit = fit_guide(model, guide, x, num_steps=400, lr=0.1)
    assert fit.method == "parallel"
    # each datapoint is its own two-site problem: CAVI on it gives the best mean field
    best = sum(
        cavi(lambda v=float(v): _two_sites(v)).elbo for v in x.tolist()
    )  # fmt: skip
    assert fit.final_elbo == pytest.approx(best, abs=1e-3)
    assert fit.final_elbo < enumerate_posterior(model, x).log_evidence


def _two_sites(v):
    a = pyro.sample("a", dist.Bernoulli(0.3))
    b = pyro.sample("b", dist.Bernoulli(0.6))
    pyro.sample("x", dist.Bernoulli(0.1 + 0.4 * a + 0.4 * b), obs=torch.tensor(v))


def test_fit_guide_on_python_control_flow_runs_sequentially(float64):
    def model():
        z = pyro.sample("z", dist.Bernoulli(0.3))
        loc = 1.0 if int(z) == 1 else -1.0
        pyro.sample("x", dist.Normal(loc, 1.0), obs=torch.tensor(0.5))

    guide = MeanFieldGuide(model)
    fit = fit_guide(model, guide, num_steps=300, lr=0.1)
    post = enumerate_posterior(model)
    assert fit.method == "sequential"
    # one latent: mean field is exact, so the ELBO reaches log p(x) and q the posterior
    assert fit.final_elbo == pytest.approx(post.log_evidence, abs=1e-4)
    assert torch.allclose(guide.marginals()["z"], post.marginal("z"), atol=1e-2)


def _sprinkler_with_exact_zero():
    """Murphy's sprinkler as written in the literature: P(W | no S, no R) = 0 exactly."""
    c = pyro.sample("cloudy", dist.Bernoulli(torch.tensor(0.5, dtype=torch.float64)))
    s = pyro.sample("sprinkler", dist.Bernoulli(torch.tensor([0.5, 0.1]).double()[c.long()]))
    r = pyro.sample("rain", dist.Bernoulli(torch.tensor([0.2, 0.8]).double()[c.long()]))
    p_wet = torch.tensor([[0.0, 0.9], [0.9, 0.99]], dtype=torch.float64)[s.long(), r.long()]
    pyro.sample("wet_grass", dist.Bernoulli(p_wet), obs=torch.tensor(1.0, dtype=torch.float64))


def test_mass_where_the_posterior_has_none_is_an_infinite_kl_not_log_eps():
    post = enumerate_posterior(_sprinkler_with_exact_zero)
    # brute force: the row (no sprinkler, no rain) has posterior mass exactly 0
    assert post.prob(sprinkler=0, rain=0) == 0.0
    assert post.prob(sprinkler=1) == pytest.approx(0.2781 / 0.6471, abs=1e-4)
    guide = MeanFieldGuide(_sprinkler_with_exact_zero, init="uniform", prefix="zero")
    d = elbo_decomposition(_sprinkler_with_exact_zero, guide)
    # q(no S, no R) = 1/4 > 0 where p(z | x) = 0: KL = inf by definition (torch's clamp gave ~36/4)
    assert d.kl == math.inf and d.elbo == -math.inf
    assert d.log_evidence == pytest.approx(math.log(0.6471), abs=1e-4)
    with pytest.raises(ValueError, match="probability exactly 0.*ELBO is -inf"):
        fit_guide(_sprinkler_with_exact_zero, guide, num_steps=5, progress=False)
