import itertools
import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.autoguide import AutoNormal

from pvae import toy
from pvae.exact import enumerate_posterior
from pvae.vi.comparison import Comparison, compare
from pvae.vi.decomposition import elbo_decomposition
from pvae.vi.divergence import kl_divergence
from pvae.vi.guide_enumeration import DiscreteTable
from pvae.vi.guides import MeanFieldGuide

DISCRETE_TOYS = sorted(toy.TOYS)
NONPLATED = ["medical-test", "burglary-alarm", "sprinkler", "monty-hall"]


pytestmark = pytest.mark.usefixtures("float64")  # exact checks in float64


def total(value, record):
    """A record's number as a joint total (records are per example where they can be)."""
    return value * (record.num_examples if record.per_example else 1)


def _independent_kl(model, guide, post) -> float:
    """KL(q || p(z|x)) from the exact engine's own probabilities, without our enumeration."""
    q = guide.marginals()
    if all(v.dim() == 1 for v in q.values()) and len(q) > 1 or set(q) == {"car"} or len(q) == 1:
        if all(v.dim() == 1 for v in q.values()):
            total = 0.0
            supports = [post.support(s).tolist() for s in post.sites]
            for values in itertools.product(*supports):
                qz = math.prod(
                    float(q[s][post.support(s).tolist().index(v)])
                    for s, v in zip(post.sites, values, strict=True)
                )
                if qz > 0:
                    total += qz * (
                        math.log(qz)
                        - math.log(post.prob(**dict(zip(post.sites, values, strict=True))))
                    )
            return total
    # plated latents without globals: the posterior factorizes over datapoints
    (site,) = post.sites
    return float(kl_divergence(q[site], post.marginal(site)).sum())


@pytest.mark.parametrize("name", DISCRETE_TOYS)
def test_elbo_identity_exact_on_every_discrete_toy(name):
    model = toy.TOYS[name]
    post = enumerate_posterior(model)
    guide = MeanFieldGuide(model, init="random", prefix=name)
    if name == "monty-hall":
        # q puts mass on car = 1, which the host's choice rules out: KL = inf, ELBO = -inf
        d = elbo_decomposition(model, guide)
        assert d.kl == math.inf and d.elbo == -math.inf
        probs = torch.tensor([0.6, 0.0, 0.4])

        def guide():
            pyro.sample("car", DiscreteTable(probs, torch.arange(3)))

        guide.marginals = lambda: {"car": probs}
    d = elbo_decomposition(model, guide)
    assert (d.method, d.evidence_method, d.elbo_se) == ("enumeration", "enumeration", 0.0)
    assert total(d.log_evidence, d) == pytest.approx(post.log_evidence, abs=1e-12)
    assert d.log_evidence - d.elbo - d.kl == pytest.approx(0.0, abs=1e-9)
    assert d.reconstruction - d.kl_prior == pytest.approx(d.elbo, abs=1e-9)
    # the KL agrees with one computed from the exact engine's posterior probabilities
    assert total(d.kl, d) == pytest.approx(_independent_kl(model, guide, post), abs=1e-9)
    assert d.kl > 0


@pytest.mark.parametrize(
    "name", ["medical-test", "monty-hall", "coin-bias", "gaussian-mixture", "toy-vae"]
)
def test_exact_posterior_guide_closes_the_gap(name):
    # one latent site (per datapoint): a guide equal to its posterior marginal is exact
    model = toy.TOYS[name]
    post = enumerate_posterior(model)
    (site,) = post.sites
    probs, values = post.marginal(site), post.support(site)

    def guide():
        if probs.dim() == 2:
            with pyro.plate("data", probs.shape[0]):
                pyro.sample(site, DiscreteTable(probs, values))
        else:
            pyro.sample(site, DiscreteTable(probs, values))

    d = elbo_decomposition(model, guide)
    assert d.kl == pytest.approx(0.0, abs=1e-9)
    assert total(d.elbo, d) == pytest.approx(post.log_evidence, abs=1e-9)


def test_medical_test_terms_by_hand():
    q1 = 0.3

    def guide():
        pyro.sample("disease", dist.Bernoulli(torch.tensor(q1)))

    d = elbo_decomposition(toy.medical_test, guide)
    # KL(q || prior) closed form, E_q[log p(test=1 | disease)] by hand
    assert d.kl_prior == pytest.approx(kl_divergence([1 - q1, q1], [0.99, 0.01]), abs=1e-12)
    assert d.reconstruction == pytest.approx(
        q1 * math.log(0.8) + (1 - q1) * math.log(0.096), abs=1e-12
    )
    assert d.log_evidence == pytest.approx(math.log(0.10304), abs=1e-12)
    post = 0.008 / 0.10304
    assert d.kl == pytest.approx(kl_divergence([1 - q1, q1], [1 - post, post]), abs=1e-12)
    assert "log p(x)" in str(d) and "enumeration" in str(d)


def test_scale_weights_pyros_target_not_the_density_a_guide_is_compared_with():
    """poutine.scale multiplies TraceEnum_ELBO's target (enumerate_posterior follows it);
    a guide is scored against the model's own density, so the scale does not enter."""
    from pyro.infer import TraceEnum_ELBO, config_enumerate

    scaled = poutine.scale(toy.medical_test, scale=3.0)
    q1 = 0.3

    def guide():
        with poutine.scale(scale=5.0):
            pyro.sample("disease", dist.Bernoulli(torch.tensor(q1)))

    joint1, joint0 = 0.01 * 0.8, 0.99 * 0.096
    post = enumerate_posterior(scaled)
    target = -TraceEnum_ELBO().loss(config_enumerate(scaled), lambda: None)
    assert post.log_evidence == pytest.approx(target, abs=1e-12)
    assert post.log_evidence == pytest.approx(3 * math.log(joint1 + joint0), abs=1e-12)
    assert post.unscaled_log_evidence == pytest.approx(math.log(joint1 + joint0), abs=1e-12)
    d = elbo_decomposition(scaled, guide)
    entropy = -(q1 * math.log(q1) + (1 - q1) * math.log(1 - q1))
    elbo = q1 * math.log(joint1) + (1 - q1) * math.log(joint0) + entropy
    assert d.elbo == pytest.approx(elbo, abs=1e-12)
    assert d.log_evidence == pytest.approx(math.log(joint1 + joint0), abs=1e-12)
    assert d.log_evidence - d.elbo - d.kl == pytest.approx(0.0, abs=1e-12)
    assert d.kl > 0


X = torch.tensor([0.8, 1.3, 2.1, 0.4, 1.7], dtype=torch.float64)
PRIOR_LOC, PRIOR_SCALE, NOISE = 0.0, 2.0, 1.0


def normal_model(x):
    mu = pyro.sample("mu", dist.Normal(PRIOR_LOC, PRIOR_SCALE))
    with pyro.plate("data", len(x)):
        pyro.sample("x", dist.Normal(mu, NOISE), obs=x)


def normal_posterior(x):
    precision = 1 / PRIOR_SCALE**2 + len(x) / NOISE**2
    return float(x.sum() / NOISE**2 / precision), precision**-0.5


def normal_log_evidence(x):
    cov = NOISE**2 * torch.eye(len(x)) + PRIOR_SCALE**2 * torch.ones(len(x), len(x))
    return float(dist.MultivariateNormal(torch.full((len(x),), PRIOR_LOC), cov).log_prob(x))


def test_monte_carlo_with_exact_posterior_guide_has_zero_variance():
    loc, scale = normal_posterior(X)

    def guide(x):
        pyro.sample("mu", dist.Normal(loc, scale))

    d = elbo_decomposition(normal_model, guide, X, num_particles=200)
    assert (d.method, d.evidence_method) == ("monte_carlo", "quadrature")
    assert d.log_evidence == pytest.approx(normal_log_evidence(X), abs=1e-7)
    # log p(x, z) - log q(z) = log p(x) for every z when q is the posterior
    assert d.elbo == pytest.approx(normal_log_evidence(X), abs=1e-9)
    assert d.elbo_se < 1e-9 and abs(d.kl) < 1e-7


def test_monte_carlo_elbo_against_closed_form():
    m, s = 0.5, 0.3

    def guide(x):
        pyro.sample("mu", dist.Normal(m, s))

    d = elbo_decomposition(normal_model, guide, X, num_particles=4000, log_evidence=-7.0)
    assert d.evidence_method == "given" and d.log_evidence == -7.0
    n = len(X)
    recon = float(dist.Normal(m, NOISE).log_prob(X).sum()) - n * s**2 / (2 * NOISE**2)
    kl_prior = kl_divergence(dist.Normal(m, s), dist.Normal(PRIOR_LOC, PRIOR_SCALE))
    assert abs(d.reconstruction - recon) < 4 * d.reconstruction_se
    assert abs(d.kl_prior - kl_prior) < 4 * d.kl_prior_se
    assert abs(d.elbo - (recon - kl_prior)) < 4 * d.elbo_se
    assert 0 < d.elbo_se < 0.05


def test_log_evidence_attribute_and_unavailable():
    def model(x):
        normal_model(x)

    model.log_evidence = normal_log_evidence
    guide = AutoNormal(normal_model)
    d = elbo_decomposition(model, guide, X, num_particles=50)
    assert d.evidence_method == "analytic"
    assert d.log_evidence == pytest.approx(normal_log_evidence(X), abs=1e-12)

    def model3(x):
        mu = pyro.sample("mu", dist.Normal(torch.zeros(3), 1.0).to_event(1))
        pyro.sample("x", dist.Normal(mu.sum(-1), 1.0), obs=x[0])

    pyro.clear_param_store()  # AutoNormal.locs.mu above was a scalar
    d = elbo_decomposition(model3, AutoNormal(model3), X, num_particles=50)
    assert d.evidence_method == "unavailable" and d.log_evidence is None and d.kl is None
    assert "unavailable" in str(d)


def test_two_dimensional_quadrature():
    def model(x):
        mu = pyro.sample("mu", dist.Normal(0.0, 2.0))
        sigma = pyro.sample("sigma", dist.LogNormal(0.0, 1.0))
        with pyro.plate("data", len(x)):
            pyro.sample("x", dist.Normal(mu, sigma), obs=x)

    def guide(x):
        pyro.sample("mu", dist.Normal(1.0, 0.5))
        pyro.sample("sigma", dist.LogNormal(0.0, 0.5))

    d = elbo_decomposition(model, guide, X, num_particles=100)
    assert d.evidence_method == "quadrature"
    # reference: mu integrated analytically (x | sigma ~ N(0, sigma^2 I + 4 11^T)), then
    # scipy's adaptive quad over log sigma
    from scipy import integrate

    n = len(X)

    def integrand(log_sigma):
        sigma = math.exp(log_sigma)
        cov = sigma**2 * torch.eye(n) + 4.0 * torch.ones(n, n)
        lp = dist.MultivariateNormal(torch.zeros(n), cov).log_prob(X)
        lp = lp + dist.LogNormal(0.0, 1.0).log_prob(torch.tensor(sigma)) + log_sigma
        return math.exp(float(lp) + 10)

    ref, _ = integrate.quad(integrand, -8, 6, epsabs=1e-14, epsrel=1e-11, limit=200)
    assert d.log_evidence == pytest.approx(math.log(ref) - 10, abs=1e-6)


def test_latents_the_guide_leaves_to_the_model_are_summed_out_exactly():
    def guide():
        pyro.sample("burglary", dist.Bernoulli(0.3))

    d = elbo_decomposition(toy.burglary_alarm, guide)
    post = enumerate_posterior(toy.burglary_alarm)
    # brute force: log p(x, b) = log sum_{e, a} p(x, b, e, a); ELBO = E_q[log p(x, b) - log q(b)]
    log_pxb = [math.log(post.prob(burglary=b)) + post.log_evidence for b in (0, 1)]
    elbo = 0.7 * (log_pxb[0] - math.log(0.7)) + 0.3 * (log_pxb[1] - math.log(0.3))
    assert (d.method, d.elbo) == ("enumeration", pytest.approx(elbo, abs=1e-12))
    assert d.log_evidence == pytest.approx(post.log_evidence, abs=1e-12)
    p1 = post.prob(burglary=1)
    kl = 0.3 * math.log(0.3 / p1) + 0.7 * math.log(0.7 / (1 - p1))
    assert d.kl == pytest.approx(kl, abs=1e-12)  # KL of the marginal: the rest is exact


def test_elbo_decomposition_errors():
    def model():
        z = pyro.sample("z", dist.Normal(0.0, 1.0))
        pyro.sample("c", dist.Bernoulli(0.5))
        pyro.sample("x", dist.Normal(z, 1.0), obs=torch.tensor(0.0))

    def guide():
        pyro.sample("c", dist.Bernoulli(0.5))

    with pytest.raises(ValueError, match="continuous latent 'z' is not sampled by `guide`"):
        elbo_decomposition(model, guide)
    with pytest.raises(ValueError, match="`method`"):
        elbo_decomposition(toy.medical_test, MeanFieldGuide(toy.medical_test), method="exact")
    with pytest.raises(ValueError, match="finite support"):
        elbo_decomposition(normal_model, AutoNormal(normal_model), X, method="enumeration")
    with pytest.raises(ValueError, match="`num_particles`"):
        elbo_decomposition(normal_model, AutoNormal(normal_model), X, num_particles=1)


def test_compare_burglary_table_and_bars():
    model = toy.burglary_alarm
    post = enumerate_posterior(model)
    guide = MeanFieldGuide(model, init="random")
    r = compare(post, guide, model=model)
    assert isinstance(r, Comparison) and r.sites == tuple(post.sites)
    assert len(r.rows) == 6
    for site in post.sites:
        exact = [row[3] for row in r.rows if row[0] == site]
        approx = [row[4] for row in r.rows if row[0] == site]
        assert exact == pytest.approx(post.marginal(site).tolist(), abs=1e-12)
        assert approx == pytest.approx(guide.marginals()[site].tolist(), abs=1e-12)
        assert r.site_kl_qp[site] == pytest.approx(kl_divergence(approx, exact), abs=1e-9)
        assert r.site_kl_pq[site] == pytest.approx(kl_divergence(exact, approx), abs=1e-9)
    d = elbo_decomposition(model, guide)
    assert r.kl_qp == pytest.approx(d.kl, abs=1e-12) and r.kl == r.kl_qp
    with pytest.warns(DeprecationWarning, match="`Comparison.elbo_gap` is renamed `kl_qp`"):
        assert r.elbo_gap == r.kl_qp
    # forward KL over the joint, from the exact engine's joint probabilities
    q = guide.marginals()
    fwd = 0.0
    for b, e, a in itertools.product([0, 1], repeat=3):
        p = post.prob(burglary=b, earthquake=e, alarm=a)
        qz = float(q["burglary"][b] * q["earthquake"][e] * q["alarm"][a])
        fwd += p * math.log(p / qz) if p > 0 else 0.0
    assert r.kl_pq == pytest.approx(fwd, abs=1e-9)
    bars = r.bars()
    assert bars["labels"][:2] == ["burglary=0", "burglary=1"]
    assert len(bars["exact"]) == len(bars["approx"]) == 6
    df = r.to_dataframe()
    assert list(df.columns) == ["site", "index", "value", "exact", "approx"] and len(df) == 6
    text = str(r)
    assert "KL(q||p)" in text and "burglary" in text and "ELBO gap" in text


def test_compare_plated_toy_vae():
    model = toy.toy_vae
    guide = MeanFieldGuide(model, init="random")
    r = compare(model, guide)
    post = enumerate_posterior(model)
    assert len(r.rows) == 6 * 3
    assert r.bars()["labels"][0] == "z[0]=0"
    # no global latents: per example, the joint KLs are means of per-datapoint KLs
    q, p = guide.marginals()["z"], post.marginal("z")
    assert (r.per_example, r.num_examples) == (True, 6)
    assert r.kl_qp == pytest.approx(float(kl_divergence(q, p).mean()), abs=1e-9)
    assert r.kl_pq == pytest.approx(float(kl_divergence(p, q).mean()), abs=1e-9)
    assert r.log_evidence == pytest.approx(post.log_evidence / 6, abs=1e-12)
    assert "per example" in str(r)


def test_compare_takes_the_model_from_the_posterior():
    post = enumerate_posterior(toy.sprinkler)
    guide = MeanFieldGuide(toy.sprinkler)
    r = compare(post, guide)
    assert r.sites == ("cloudy", "sprinkler", "rain")
    assert r.log_evidence == pytest.approx(math.log(0.6471), abs=1e-12)
    rain = [row for row in r.rows if row[0] == "rain"]
    assert rain[1][3] == pytest.approx(0.4581 / 0.6471, abs=1e-12)  # published P(R | W)
    assert rain[1][4] == pytest.approx(0.5, abs=1e-12)  # uniform initial factor


def test_compare_needs_a_model():
    import dataclasses

    bare = dataclasses.replace(enumerate_posterior(toy.medical_test), _model=None)
    with pytest.raises(ValueError, match="needs the model"):
        compare(bare, MeanFieldGuide(toy.medical_test))


# Conjugate checks: SVI against analytic posteriors (seeded, stated tolerances).


def _svi(model, guide, *args, num_steps, lr):
    pyro.set_rng_seed(0)
    optim = pyro.optim.ClippedAdam({"lr": lr, "lrd": 0.01 ** (1 / num_steps)})  # lr / 100 at end
    svi = SVI(
        model,
        guide,
        optim,
        Trace_ELBO(num_particles=8, vectorize_particles=True),
    )
    for _ in range(num_steps):
        svi.step(*args)


def test_normal_normal_hand_written_guide_recovers_posterior():
    def guide(x):
        loc = pyro.param("loc", torch.tensor(0.0))
        scale = pyro.param("scale", torch.tensor(1.0), constraint=dist.constraints.positive)
        pyro.sample("mu", dist.Normal(loc, scale))

    _svi(normal_model, guide, X, num_steps=300, lr=0.05)
    loc, scale = normal_posterior(X)
    assert pyro.param("loc").item() == pytest.approx(loc, abs=0.03)
    assert pyro.param("scale").item() == pytest.approx(scale, abs=0.03)
    d = elbo_decomposition(normal_model, guide, X, num_particles=500)
    assert d.kl < 0.01


def test_normal_normal_autonormal_recovers_posterior():
    guide = AutoNormal(normal_model)
    _svi(normal_model, guide, X, num_steps=300, lr=0.05)
    loc, scale = normal_posterior(X)
    m, s = guide.median(X)["mu"].item(), pyro.param("AutoNormal.scales.mu").item()
    assert m == pytest.approx(loc, abs=0.03) and s == pytest.approx(scale, abs=0.03)


FLIPS = torch.tensor(
    [1.0, 0, 1, 1, 1, 0, 1, 1, 0, 1], dtype=torch.float64
)  # 7 heads in 10: Beta(8, 4) posterior


def beta_bernoulli(flips):
    p = pyro.sample("p", dist.Beta(1.0, 1.0))
    with pyro.plate("data", len(flips)):
        pyro.sample("x", dist.Bernoulli(p), obs=flips)


def test_beta_bernoulli_hand_written_guide_recovers_posterior():
    def guide(flips):
        a = pyro.param("a", torch.tensor(2.0), constraint=dist.constraints.positive)
        b = pyro.param("b", torch.tensor(2.0), constraint=dist.constraints.positive)
        pyro.sample("p", dist.Beta(a, b))

    _svi(beta_bernoulli, guide, FLIPS, num_steps=400, lr=0.2)
    q = dist.Beta(pyro.param("a"), pyro.param("b"))
    exact = dist.Beta(8.0, 4.0)
    assert q.mean.item() == pytest.approx(exact.mean.item(), abs=0.03)
    assert q.stddev.item() == pytest.approx(exact.stddev.item(), abs=0.03)
    d = elbo_decomposition(beta_bernoulli, guide, FLIPS, num_particles=500)
    # log p(x) = log B(8, 4) for the uniform prior; quadrature finds it
    assert d.log_evidence == pytest.approx(
        math.lgamma(8) + math.lgamma(4) - math.lgamma(12), abs=1e-7
    )
    kl = kl_divergence(q, exact)  # Beta-Beta closed form
    assert kl < 0.005 and abs(d.kl - kl) < 4 * d.elbo_se + 1e-3


def test_beta_bernoulli_autonormal_recovers_posterior():
    guide = AutoNormal(beta_bernoulli)
    _svi(beta_bernoulli, guide, FLIPS, num_steps=400, lr=0.05)
    pyro.set_rng_seed(1)
    draws = torch.stack([guide(FLIPS)["p"] for _ in range(4000)])
    exact = dist.Beta(8.0, 4.0)
    assert draws.mean().item() == pytest.approx(exact.mean.item(), abs=0.03)
    assert draws.std().item() == pytest.approx(exact.stddev.item(), abs=0.03)


def test_monte_carlo_on_a_discrete_guide_agrees_with_the_exact_sum():
    guide = MeanFieldGuide(toy.burglary_alarm, init="random")
    exact = elbo_decomposition(toy.burglary_alarm, guide)
    mc = elbo_decomposition(toy.burglary_alarm, guide, method="monte_carlo", num_particles=4000)
    assert (mc.method, mc.evidence_method) == ("monte_carlo", "enumeration")
    assert mc.log_evidence == pytest.approx(exact.log_evidence, abs=1e-12)
    assert abs(mc.elbo - exact.elbo) < 4 * mc.elbo_se
    assert abs(mc.kl_prior - exact.kl_prior) < 4 * mc.kl_prior_se
