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
    assert float(par.elbo().detach()) == pytest.approx(float(seq.elbo().detach()), abs=1e-12)
    for site in par.sites:
        assert torch.allclose(par.marginal(site)[1], seq.marginal(site)[1], atol=1e-12)
        assert torch.allclose(par.marginal(site)[1], guide.marginals()[site], atol=1e-12)


def test_enumerate_guide_log_evidence_matches_exact_engine(float64):
    # logsumexp of the joint over the guide's support is an independent route to log p(x).
    for name in ["burglary-alarm", "sprinkler", "coin-bias", "gaussian-mixture", "toy-vae"]:
        model = toy.TOYS[name]
        e = enumerate_guide(model, MeanFieldGuide(model, prefix=name))
        log_p, _ = e.joint_tables()
        mine = float(torch.logsumexp(log_p, e.enum_dims).sum())
        assert mine == pytest.approx(enumerate_posterior(model).log_evidence, abs=1e-9), name


def test_enumerate_guide_errors():
    def model():
        pyro.sample("z", dist.Normal(0.0, 1.0))

    def guide():
        pyro.sample("z", dist.Normal(0.0, 1.0))

    with pytest.raises(ValueError, match="no\nfinite support|finite support"):
        enumerate_guide(model, guide)
    with pytest.raises(ValueError, match="samples 'disease', which is not a site of the model"):
        enumerate_guide(toy.sprinkler, MeanFieldGuide(toy.medical_test))
    with pytest.raises(ValueError, match="`method`"):
        enumerate_guide(toy.medical_test, MeanFieldGuide(toy.medical_test), method="x")


def test_sibling_plates_sharing_a_dim_match_traceenum_and_brute_force(float64):
    """Two plates at dim -1 with sizes 2 and 3 (the GMM tutorial's layout) are never
    broadcast against each other; the exact ELBO equals TraceEnum_ELBO's and a brute sum."""
    import itertools

    from pyro.infer import TraceEnum_ELBO, config_enumerate

    xa, xb = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0, 1.0])
    qz, qw = torch.tensor([0.2, 0.7]), torch.tensor([0.5, 0.4, 0.9])

    def model(xa, xb):
        top = pyro.sample("top", dist.Bernoulli(0.5))
        with pyro.plate("a", 2):
            z = pyro.sample("z", dist.Bernoulli(0.3 + 0.4 * top))
            pyro.sample("xa", dist.Bernoulli(0.1 + 0.8 * z), obs=xa)
        with pyro.plate("b", 3):
            w = pyro.sample("w", dist.Bernoulli(0.6))
            pyro.sample("xb", dist.Bernoulli(0.2 + 0.5 * w * top), obs=xb)

    def guide(xa, xb):
        pyro.sample("top", dist.Bernoulli(0.4))
        with pyro.plate("a", 2):
            pyro.sample("z", dist.Bernoulli(qz))
        with pyro.plate("b", 3):
            pyro.sample("w", dist.Bernoulli(qw))

    e = enumerate_guide(model, guide, xa, xb)
    assert (e.method, e.per_example) == ("parallel", False)
    reference = -TraceEnum_ELBO(max_plate_nesting=1).loss(model, config_enumerate(guide), xa, xb)
    assert float(e.elbo()) == pytest.approx(reference, abs=1e-9)

    # the guide leaves w to the model: it is summed out exactly inside the expectation
    def partial(xa, xb):
        pyro.sample("top", dist.Bernoulli(0.4))
        with pyro.plate("a", 2):
            pyro.sample("z", dist.Bernoulli(qz))

    brute = 0.0
    for t in (0, 1):
        for zs in itertools.product((0.0, 1.0), repeat=2):
            z = torch.tensor(zs)
            log_q = math.log(0.4 if t else 0.6) + float(dist.Bernoulli(qz).log_prob(z).sum())
            log_p = math.log(0.5) + float(
                dist.Bernoulli(0.3 + 0.4 * t).log_prob(z).sum()
                + dist.Bernoulli(0.1 + 0.8 * z).log_prob(xa).sum()
            )
            for x in xb:
                on, off = (
                    float(dist.Bernoulli(p).log_prob(x).exp()) for p in (0.2 + 0.5 * t, 0.2)
                )
                log_p += math.log(0.6 * on + 0.4 * off)
            brute += math.exp(log_q) * (log_p - log_q)
    assert float(enumerate_guide(model, partial, xa, xb).elbo()) == pytest.approx(brute, abs=1e-9)


def test_control_flow_falls_back_to_the_sequential_engine_with_a_reason(float64):
    """`if z.sum() > 0` silently takes one branch on enumerated tensors: the check catches it."""

    def model():
        z = pyro.sample("z", dist.Bernoulli(0.3))
        loc = 1.0 if z.sum() > 0 else -1.0
        pyro.sample("x", dist.Normal(loc, 1.0), obs=torch.tensor(0.5))

    def guide():
        pyro.sample("z", dist.Bernoulli(0.6))

    e = enumerate_guide(model, guide)
    assert e.method == "sequential" and "does not treat enumerated values as a batch" in e.reason
    lp = [math.log(p) + float(dist.Normal(m, 1.0).log_prob(torch.tensor(0.5)))
          for p, m in ((0.7, -1.0), (0.3, 1.0))]  # fmt: skip
    elbo = 0.4 * (lp[0] - math.log(0.4)) + 0.6 * (lp[1] - math.log(0.6))
    assert float(e.elbo()) == pytest.approx(elbo, abs=1e-12)
    with pytest.raises(ValueError, match="gives wrong numbers"):
        enumerate_guide(model, guide, method="parallel")
