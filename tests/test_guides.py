import math

import pyro
import pyro.distributions as dist
import pytest
import torch

from pvae import toy
from pvae.comparison import elbo_decomposition
from pvae.exact import enumerate_posterior
from pvae.guides import DiscreteTable, MeanFieldGuide, cavi, enumerate_guide, fit_guide


@pytest.fixture
def float64():
    """Exact checks in float64; float32 again afterwards (doctests run in the same process)."""
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def test_discrete_table_matches_categorical():
    probs = torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]])
    values = torch.tensor([1.0, 4.0, 9.0])
    d = DiscreteTable(probs, values)
    assert d.batch_shape == (2,)
    lp = d.log_prob(torch.tensor([4.0, 9.0]))
    assert torch.allclose(lp, torch.tensor([0.3, 0.2]).log())
    assert d.log_prob(torch.tensor([2.0, 2.0])).eq(-math.inf).all()
    assert d.enumerate_support().shape == (3, 2)
    assert set(d.sample((100,)).unique().tolist()) <= {1.0, 4.0, 9.0}


def test_enumerate_guide_both_engines_agree(float64):
    guide = MeanFieldGuide(toy.burglary_alarm, init="random")
    par = enumerate_guide(toy.burglary_alarm, guide, method="parallel")
    seq = enumerate_guide(toy.burglary_alarm, guide, method="sequential")
    assert (par.method, seq.method) == ("parallel", "sequential")
    assert float(par.elbo()) == pytest.approx(float(seq.elbo()), abs=1e-12)
    for site in par.sites:
        assert torch.allclose(par.marginal(site)[1], seq.marginal(site)[1], atol=1e-12)
        assert torch.allclose(par.marginal(site)[1], guide.marginals()[site], atol=1e-12)


def test_enumerate_guide_log_evidence_matches_exact_engine(float64):
    # logsumexp of the joint over the guide's support is an independent route to log p(x).
    for name in ["burglary-alarm", "sprinkler", "coin-bias", "gaussian-mixture", "toy-vae"]:
        model = toy.TOYS[name]
        e = enumerate_guide(model, MeanFieldGuide(model, prefix=name))
        log_p, _ = e.joint_tables()
        enum = list(range(log_p.dim() - e.num_plate_dims))
        mine = float(torch.logsumexp(log_p, enum).sum())
        assert mine == pytest.approx(enumerate_posterior(model).log_evidence, abs=1e-9), name


def test_enumerate_guide_errors():
    def model():
        pyro.sample("z", dist.Normal(0.0, 1.0))

    def guide():
        pyro.sample("z", dist.Normal(0.0, 1.0))

    with pytest.raises(ValueError, match="no\nfinite support|finite support"):
        enumerate_guide(model, guide)
    with pytest.raises(ValueError, match="exactly the model's latent sites"):
        enumerate_guide(toy.sprinkler, MeanFieldGuide(toy.medical_test))
    with pytest.raises(ValueError, match="`method`"):
        enumerate_guide(toy.medical_test, MeanFieldGuide(toy.medical_test), method="x")


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
