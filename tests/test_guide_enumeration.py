"""Tests for pvae.vi.guide_enumeration: exact sums over a discrete guide's support."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch

from pvae import toy
from pvae.exact import enumerate_posterior
from pvae.vi.guide_enumeration import DiscreteTable, enumerate_guide
from pvae.vi.guides import MeanFieldGuide


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
