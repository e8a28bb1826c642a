"""The conventions page, item by item (issue 13): each number against an independent one.

References are Pyro's own estimators (TraceEnum_ELBO, Trace_ELBO), closed forms and
brute-force sums written here; pvae is never compared with pvae.
"""

import functools
import itertools
import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import Trace_ELBO, TraceEnum_ELBO, config_enumerate
from pyro.infer.autoguide import AutoDelta, AutoMultivariateNormal, AutoNormal

import pvae

X = torch.tensor([1.0, 0.0, 1.0, 1.0], dtype=torch.float64)
MASK = torch.tensor([True, False, True, False])


def traceenum_log_evidence(model, *args, nesting=2):
    """-TraceEnum_ELBO loss with a guide that samples nothing: log p(x) by Pyro's rules."""
    return -TraceEnum_ELBO(max_plate_nesting=nesting).loss(
        config_enumerate(model, default="parallel"), lambda *a, **k: None, *args
    )


def noisy_or(z):
    return 0.9 * z + 0.2 * (1 - z)


# --------------------------------------------------------------- exact enumeration (1-4)
def masked_latent(x):
    with pyro.plate("data", len(x)):
        with poutine.mask(mask=MASK):
            z = pyro.sample("z", dist.Bernoulli(0.3))
        pyro.sample("x", dist.Bernoulli(noisy_or(z)), obs=x)


def obs_mask(x):
    with pyro.plate("data", len(x)):
        z = pyro.sample("z", dist.Bernoulli(0.3))
        pyro.sample("x", dist.Bernoulli(noisy_or(z)), obs=x, obs_mask=MASK)


def scaled(x):
    with poutine.scale(scale=2.5), pyro.plate("data", len(x)):
        z = pyro.sample("z", dist.Bernoulli(0.3))
        pyro.sample("x", dist.Bernoulli(noisy_or(z)), obs=x)


def subsampled(x, indices=None):
    with pyro.plate("data", len(x), subsample_size=2, subsample=indices) as i:
        z = pyro.sample("z", dist.Bernoulli(0.3))
        pyro.sample("x", dist.Bernoulli(noisy_or(z)), obs=x[i])


@pytest.mark.parametrize("model", [masked_latent, obs_mask, scaled])
def test_masks_and_scales_follow_traceenum(float64, model):
    post = pvae.enumerate_posterior(model, X)
    assert post.log_evidence == pytest.approx(traceenum_log_evidence(model, X), abs=1e-12)


def test_masks_by_hand(float64):
    """A mask on a latent leaves its factor (it sums to one); a masked observation is gone."""
    per_point = [math.log(0.3 * noisy_or(1.0) ** v * (1 - noisy_or(1.0)) ** (1 - v)
                          + 0.7 * noisy_or(0.0) ** v * (1 - noisy_or(0.0)) ** (1 - v))
                 for v in X.tolist()]  # fmt: skip
    post = pvae.enumerate_posterior(masked_latent, X)
    assert post.log_evidence == pytest.approx(sum(per_point), abs=1e-12)
    post = pvae.enumerate_posterior(obs_mask, X)
    kept = [p for p, m in zip(per_point, MASK.tolist(), strict=True) if m]
    assert post.log_evidence == pytest.approx(sum(kept), abs=1e-12)
    # where x is missing, z keeps its prior (not a uniform marginal) and x its predictive
    z = post.marginal("z")
    assert torch.allclose(z[~MASK], torch.tensor([0.7, 0.3], dtype=torch.float64), atol=1e-12)
    missing = post.marginal("x_unobserved")[1]
    assert float(missing[1]) == pytest.approx(0.3 * 0.9 + 0.7 * 0.2, abs=1e-12)


def test_scale_multiplies_log_evidence_outside_the_sum(float64):
    post = pvae.enumerate_posterior(scaled, X)
    reference = pvae.enumerate_posterior(_plain, X)
    assert post.log_evidence == pytest.approx(2.5 * reference.log_evidence, abs=1e-12)
    assert post.unscaled_log_evidence == pytest.approx(reference.log_evidence, abs=1e-12)
    # the posterior itself does not change
    assert torch.allclose(post.marginal("z"), reference.marginal("z"), atol=1e-12)


def _plain(x):
    with pyro.plate("data", len(x)):
        z = pyro.sample("z", dist.Bernoulli(0.3))
        pyro.sample("x", dist.Bernoulli(noisy_or(z)), obs=x)


def test_subsampling_random_is_refused_explicit_is_scaled(float64):
    with pytest.raises(ValueError, match="plate 'data' draws a random subsample of 2 of its 4"):
        pvae.enumerate_posterior(subsampled, X)
    indices = torch.tensor([0, 1])
    post = pvae.enumerate_posterior(subsampled, X, indices)
    assert post.log_evidence == pytest.approx(
        traceenum_log_evidence(subsampled, X, indices), abs=1e-12
    )
    first_two = pvae.enumerate_posterior(_plain, X[:2])
    assert post.log_evidence == pytest.approx(2 * first_two.log_evidence, abs=1e-12)


def test_different_scales_in_one_sum_are_refused(float64):
    def model(x):
        z = pyro.sample("z", dist.Bernoulli(0.3))
        with poutine.scale(scale=3.0), pyro.plate("data", len(x)):
            pyro.sample("x", dist.Bernoulli(noisy_or(z)), obs=x)

    with pytest.raises(ValueError, match="must share one `poutine.scale`"):
        pvae.enumerate_posterior(model, X)


def with_global(x):
    g = pyro.sample("g", dist.Bernoulli(0.5))
    with pyro.plate("data", len(x)):
        z = pyro.sample("z", dist.Bernoulli(0.2 + 0.6 * g))
        pyro.sample("x", dist.Bernoulli(noisy_or(z)), obs=x)


def test_prob_agrees_between_engines_on_plate_sites(float64):
    par = pvae.enumerate_posterior(with_global, X, method="parallel")
    seq = pvae.enumerate_posterior(with_global, X, method="sequential")
    assert par.log_evidence == pytest.approx(seq.log_evidence, abs=1e-12)
    # brute force over the 2 * 2^4 joint assignments
    joint = {}
    for g, *zs in itertools.product((0, 1), repeat=5):
        lp = math.log(0.5)
        for z, v in zip(zs, X.tolist(), strict=True):
            pz = 0.2 + 0.6 * g
            lp += math.log(pz if z else 1 - pz)
            lp += math.log(noisy_or(z) if v else 1 - noisy_or(z))
        joint[(g, *zs)] = lp
    log_z = math.log(sum(math.exp(v) for v in joint.values()))
    all_one = sum(math.exp(v - log_z) for k, v in joint.items() if all(k[1:]))
    one_each = math.exp(joint[(1, 1, 0, 1, 1)] - log_z)
    for post in (par, seq):
        assert post.prob(z=1) == pytest.approx(all_one, abs=1e-12)  # z_n = 1 for every n
        assert post.prob(g=1, z=torch.tensor([1.0, 0.0, 1.0, 1.0])) == pytest.approx(
            one_each, abs=1e-12
        )
        assert post.prob(g=3) == 0.0  # outside the support: probability 0, no IndexError
        with pytest.raises(ValueError, match="does not broadcast"):
            post.prob(z=torch.ones(3))


def test_a_count_latent_is_not_called_continuous():
    def model():
        n = pyro.sample("n", dist.Poisson(3.0))
        pyro.sample("x", dist.Normal(n, 1.0), obs=torch.tensor(2.0))

    with pytest.raises(ValueError, match="'n' \\(Poisson\\) has a countably infinite support"):
        pvae.enumerate_posterior(model)


def test_control_flow_that_runs_on_enumerated_tensors_is_caught(float64):
    def model(x):
        z = pyro.sample("z", dist.Bernoulli(0.3))
        loc = 1.0 if z.sum() > 0 else -1.0  # one branch for both enumerated values
        pyro.sample("x", dist.Normal(loc, 1.0), obs=x)

    x = torch.tensor(0.5)
    post = pvae.enumerate_posterior(model, x)
    assert post.method == "sequential" and "control flow" in post.reason
    exact = math.log(0.3 * math.exp(dist.Normal(1.0, 1.0).log_prob(x))
                     + 0.7 * math.exp(dist.Normal(-1.0, 1.0).log_prob(x)))  # fmt: skip
    assert post.log_evidence == pytest.approx(exact, abs=1e-12)
    with pytest.raises(ValueError, match="gives wrong numbers"):
        pvae.enumerate_posterior(model, x, method="parallel")


@pytest.mark.parametrize("pattern", ["exists", "forall"])
@pytest.mark.parametrize("method", ["factor", "parallel"])
def test_branching_on_an_enumerated_reduction_is_caught_whatever_the_plain_draw(
    float64, pattern, method
):
    """``if z.sum() > 0`` takes the branch of z = 1 for the enumerated [0, 1], and
    ``if z.min() > 0`` that of z = 0: the check runs the model at the first and the last
    value as well as at the plain draw, so either is caught for every draw (seeds 0-7)."""

    def model(x):
        z = pyro.sample("z", dist.Bernoulli(0.3))
        branch = z.sum() > 0 if pattern == "exists" else z.min() > 0
        pyro.sample("x", dist.Normal(1.0 if branch else -1.0, 1.0), obs=x)

    x = torch.tensor(0.5)
    for seed in range(8):
        pyro.set_rng_seed(seed)
        with pytest.raises(ValueError, match="gives wrong numbers"):
            pvae.enumerate_posterior(model, x, method=method)


# --------------------------------------------------------------- importance weights (5-12)
DATA = torch.tensor([-2.1, -1.9, 2.0, 2.2, 1.8])


@config_enumerate
def mixture(data):
    loc = pyro.sample("loc", dist.Normal(0.0, 3.0))
    with pyro.plate("data", len(data)):
        c = pyro.sample("c", dist.Bernoulli(0.5))
        pyro.sample("x", dist.Normal(loc * (2 * c - 1), 0.5), obs=data)


def mixture_guide(data):
    pyro.sample("loc", dist.Normal(2.0, 0.2))


def test_sites_the_guide_leaves_to_the_model_are_summed_out(float64):
    """The ELBO with the assignment summed out is TraceEnum_ELBO's (with many particles)."""
    pyro.set_rng_seed(0)
    ev = pvae.evaluate(mixture, DATA, guide=mixture_guide, num_particles=4000, seed=0)
    reference = -TraceEnum_ELBO(
        max_plate_nesting=1, num_particles=20_000, vectorize_particles=True
    ).loss(mixture, mixture_guide, DATA)
    assert not ev.per_example  # loc is global: joint numbers
    assert abs(ev.elbo - reference) < 4 * ev.elbo_se + 2e-3
    # the exact conditional of c given loc, not the prior, lands in the posterior group
    idata = pvae.to_inference_data(mixture, mixture_guide, DATA, num_samples=300)
    c = idata.posterior["c"].values.reshape(300, 5).mean(0)
    assert c.tolist() == pytest.approx([0.0, 0.0, 1.0, 1.0, 1.0], abs=0.02)


def test_masked_observations_leave_every_weight(float64):
    x = torch.tensor([0.3, 5.0])
    keep = torch.tensor([True, False])

    def model(x):
        with pyro.plate("data", len(x)):
            z = pyro.sample("z", dist.Normal(0.0, 1.0))
            with poutine.mask(mask=keep):
                pyro.sample("x", dist.Normal(z, 1.0), obs=x)

    def guide(x):
        with pyro.plate("data", len(x)):
            pyro.sample("z", dist.Normal(torch.tensor([0.15, 0.0]), torch.tensor([0.5**0.5, 1.0])))

    ev = pvae.evaluate(model, x, guide=guide, num_particles=10)
    # example 0 has its exact posterior, example 1 is masked and its guide is the prior
    exact = [float(dist.Normal(0.0, 2**0.5).log_prob(x[0])), 0.0]
    assert ev.log_evidence == pytest.approx(sum(exact) / 2, abs=1e-9)
    idata = pvae.to_inference_data(model, guide, x, num_samples=20)
    assert (idata.log_likelihood["x"].values[..., 1] == 0).all()


def test_global_latents_and_coupling_guides_give_joint_numbers(float64):
    x = torch.tensor([0.5, -1.0, 2.0])

    def model(x):
        with pyro.plate("data", len(x)):
            z = pyro.sample("z", dist.Normal(0.0, 1.0))
            pyro.sample("x", dist.Normal(z, 1.0), obs=x)

    guide = AutoMultivariateNormal(model)
    svi = pyro.infer.SVI(model, guide, pyro.optim.Adam({"lr": 0.05}), Trace_ELBO())
    for _ in range(300):
        svi.step(x)
    ev = pvae.evaluate(model, x, guide=guide, num_particles=2000, seed=0)
    assert not ev.per_example and "_AutoMultivariateNormal_latent" in ev.reason
    # the joint log p(x_1, x_2, x_3), not a per-example number
    exact = float(dist.Normal(0.0, 2**0.5).log_prob(x).sum())
    assert ev.log_evidence < 0 and abs(ev.log_evidence - exact) < 4 * ev.log_evidence_se + 0.02


def test_data_plate_is_found_by_name_never_by_size(float64):
    x = torch.randn(7, dtype=torch.float64)

    def model(x):
        with pyro.plate("obs_plate", len(x)):
            z = pyro.sample("z", dist.Normal(0.0, 1.0))
            pyro.sample("x", dist.Normal(z, 1.0), obs=x)

    def guide(x):
        with pyro.plate("obs_plate", len(x)):
            pyro.sample("z", dist.Normal(x / 2, 0.5**0.5))

    ev = pvae.evaluate(model, x, guide=guide, num_particles=7)  # K equals the plate size
    assert ev.per_example
    assert ev.log_evidence == pytest.approx(float(dist.Normal(0, 2**0.5).log_prob(x).mean()))


def beta_model(x, beta=1.0):
    with pyro.plate("data", len(x)):
        with poutine.scale(scale=beta):
            z = pyro.sample("z", dist.Normal(0.0, 1.0))
        pyro.sample("x", dist.Normal(z, 1.0), obs=x)


def beta_guide(x, beta=1.0):
    with pyro.plate("data", len(x)), poutine.scale(scale=beta):
        pyro.sample("z", dist.Normal(0.3 * x, 0.8))


def test_beta_changes_the_objective_not_the_reported_numbers(float64):
    x = torch.tensor([0.4, -1.2, 2.0])
    one = pvae.elbo_decomposition(beta_model, beta_guide, x, 1.0, num_particles=500)
    four = pvae.elbo_decomposition(beta_model, beta_guide, x, 4.0, num_particles=500)
    assert four.elbo == pytest.approx(one.elbo, abs=4 * one.elbo_se)
    # Trace_ELBO on the beta = 1 model is the reference (per example: divide by N)
    pyro.set_rng_seed(1)
    reference = -Trace_ELBO(num_particles=20_000, vectorize_particles=True).loss(
        beta_model, beta_guide, x, 1.0
    ) / len(x)
    assert abs(four.elbo - reference) < 4 * four.elbo_se + 0.01
    model, guide = functools.partial(beta_model, beta=4.0), functools.partial(beta_guide, beta=4.0)
    ev = pvae.evaluate(model, x, guide=guide, num_particles=5000, seed=0)
    exact = float(dist.Normal(0.0, 2**0.5).log_prob(x).mean())
    assert four.per_example and abs(ev.log_evidence - exact) < 4 * ev.log_evidence_se + 1e-3
    k = pvae.psis_khat(beta_model, beta_guide, x, 4.0, num_particles=200)
    assert k.pointwise.shape == (3,) and k.diagnosis in ("good", "ok")


def test_point_mass_guides_and_unguided_continuous_latents_are_refused():
    x = torch.tensor([0.5, 1.0])

    def model(x):
        mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
        with pyro.plate("data", len(x)):
            pyro.sample("x", dist.Normal(mu, 1.0), obs=x)

    with pytest.raises(ValueError, match="point mass .*'mu'"):
        pvae.evaluate(model, x, guide=AutoDelta(model))
    with pytest.raises(ValueError, match="continuous latent 'mu' is not sampled by `guide`"):
        pvae.psis_khat(model, lambda x: None, x)
    pyro.clear_param_store()
    guide = AutoNormal(model)
    assert pvae.psis_khat(model, guide, x, num_particles=100).num_points == 1


def test_models_that_do_not_broadcast_over_particles_are_detected(float64):
    """`z.sum()` sums over the particle dim too; the check catches it and runs a loop."""

    def model(x):
        z = pyro.sample("z", dist.Normal(torch.zeros(3), 1.0).to_event(1))
        pyro.sample("x", dist.Normal(z.sum(), 1.0), obs=x[0])

    def guide(x):
        pyro.sample("z", dist.Normal(torch.zeros(3), 1.0).to_event(1))  # the prior

    x = torch.tensor([1.0])
    ev = pvae.evaluate(model, x, guide=guide, num_particles=3000, seed=0)
    exact = float(dist.Normal(0.0, 2.0).log_prob(x[0]))  # x ~ N(0, 1 + 3)
    assert not ev.vectorized and "does not broadcast" in ev.reason
    assert abs(ev.log_evidence - exact) < 4 * ev.log_evidence_se + 0.01
    idata = pvae.to_inference_data(model, guide, x, num_samples=50)
    assert idata.attrs["pvae_vectorized"] == 0 and idata.posterior["z"].shape == (1, 50, 3)


def test_quadrature_for_two_dependent_scalar_latents(float64):
    """z2 | z1 ~ N(z1, 1): two dependent scalars integrate on a grid (exact: a 3-d normal)."""
    x = torch.tensor([0.7, 1.5])

    def model(x):
        z1 = pyro.sample("z1", dist.Normal(0.0, 1.0))
        z2 = pyro.sample("z2", dist.Normal(z1, 1.0))
        with pyro.plate("data", len(x)):
            pyro.sample("x", dist.Normal(z2, 1.0), obs=x)

    guide = AutoNormal(model)
    d = pvae.elbo_decomposition(model, guide, x, num_particles=50)
    cov = torch.tensor([[3.0, 2.0], [2.0, 3.0]])  # var(z2) + 1 = 3, cov = var(z2) = 2
    exact = float(dist.MultivariateNormal(torch.zeros(2), cov).log_prob(x))
    assert d.evidence_method == "quadrature"
    assert d.log_evidence == pytest.approx(exact, abs=1e-6)


# --------------------------------------------------------------- one front door, one seed
def test_a_pvae_model_with_its_own_guide_and_tuple_data_on_every_front_door():
    from pvae.models import VAE, ConditionalVAE

    x = (torch.rand(6, 4, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    y = torch.arange(6) % 2
    cvae = ConditionalVAE(4, 2, num_classes=2, hidden=(), seed=0)
    by_pair = pvae.psis_khat(cvae.model, cvae.guide, x, y, num_particles=50, seed=0)
    by_tuple = pvae.psis_khat(cvae, (x, y), num_particles=50, seed=0)
    assert torch.equal(by_pair.pointwise, by_tuple.pointwise)
    d = pvae.elbo_decomposition(cvae, (x, y), num_particles=20, seed=0)
    assert d.per_example and d.num_examples == 6
    idata = pvae.to_inference_data(cvae, (x, y), num_samples=10, seed=0)
    assert idata.posterior["z"].shape == (1, 10, 6, 2)
    # a pvae model with another guide: its own model is used, not the module's forward
    vae = VAE(4, 2, hidden=(), seed=0)

    def prior_guide(x):
        with pyro.plate("data", len(x)):
            pyro.sample("z", dist.Normal(torch.zeros(len(x), 2), 1.0).to_event(1))

    ev = pvae.evaluate(vae, x, guide=prior_guide, num_particles=20, seed=0)
    same = pvae.evaluate(vae.model, x, guide=prior_guide, num_particles=20, seed=0)
    assert ev.log_evidence == same.log_evidence


def test_seeded_functions_leave_the_callers_generators_alone():
    from pvae import toy
    from pvae.vi.guides import MeanFieldGuide

    x = torch.tensor([0.5, 1.0])

    def model(x):
        mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
        with pyro.plate("data", len(x)):
            pyro.sample("x", dist.Normal(mu, 1.0), obs=x)

    def guide(x):
        pyro.sample("mu", dist.Normal(0.5, 0.6))

    mean_field = MeanFieldGuide(toy.medical_test)
    calls = [
        lambda: pvae.psis_khat(model, guide, x, num_particles=30, seed=3),
        lambda: pvae.elbo_decomposition(model, guide, x, num_particles=10, seed=3),
        lambda: pvae.to_inference_data(model, guide, x, num_samples=5, seed=3),
        lambda: pvae.fit_guide(toy.medical_test, mean_field, num_steps=3),
        lambda: pvae.cavi(toy.medical_test, num_restarts=1),
        lambda: pvae.amortization_gap(num_steps=2),
        lambda: MeanFieldGuide(toy.sprinkler, init="random", seed=2).marginals(),
    ]
    for call in calls:
        before = torch.get_rng_state()
        first = call()
        assert torch.equal(torch.get_rng_state(), before), call
    pyro.clear_param_store()
    a = MeanFieldGuide(toy.sprinkler, init="random", seed=2, prefix="a").marginals()
    b = MeanFieldGuide(toy.sprinkler, init="random", seed=2, prefix="b").marginals()
    assert all(torch.equal(a[s], b[s]) for s in a) and first is not None
    with pytest.raises(ValueError, match="`seed` must be None or an integer from 0 to"):
        pvae.evaluate(model, x, guide=guide, seed=2**32)


def test_a_discrete_guide_reads_discrete_not_bad():
    from pvae import toy

    def guide(q):
        def g():
            pyro.sample("disease", dist.Bernoulli(torch.tensor(q, dtype=torch.float64)))

        return g

    exact = pvae.psis_khat(toy.medical_test, guide(0.008 / 0.10304), num_particles=200)
    near = pvae.psis_khat(toy.medical_test, guide(0.0792), num_particles=200)
    assert exact.diagnosis == "exact"
    assert near.diagnosis == "discrete" and math.isnan(near.khat) and "pvae.compare" in near.reason


# --------------------------------------------------------------- found by the hunt
def _local_model(x):
    with pyro.plate("data", len(x)):
        z = pyro.sample("z", dist.Normal(0.0, 1.0))
        pyro.sample("x", dist.Normal(z, 1.0), obs=x)


def test_evaluate_refuses_chunks_a_per_example_guide_cannot_follow():
    x = torch.randn(6, generator=torch.Generator().manual_seed(0)) * 1.5
    guide = AutoNormal(_local_model)
    guide(x)
    with pytest.raises(ValueError, match="Raise `max_elements`"):
        pvae.evaluate(_local_model, x, guide=guide, num_particles=1000, max_elements=1000)
    whole = pvae.evaluate(_local_model, x, guide=guide, num_particles=1000)
    assert whole.per_example and whole.num_examples == 6


def test_fit_reports_another_bound_and_unscaled_minibatches_as_the_objective():
    """RenyiELBO(alpha=0) trains the IWAE bound: `train_elbo` stays the ELBO (closed form)."""
    from pyro.infer import RenyiELBO

    x = torch.tensor([2.0, -1.0, 0.5, 3.0])

    def guide(x):
        pyro.param("unused", torch.tensor(0.0))
        with pyro.plate("data", len(x)):
            pyro.sample("z", dist.Normal(0.0, 0.3))

    iwae = RenyiELBO(alpha=0, num_particles=10, vectorize_particles=True, max_plate_nesting=1)
    res = pvae.fit(_local_model, x, guide=guide, elbo=iwae, epochs=200,
                   optimizer=torch.optim.SGD, lr=1e-9, seed=0)  # fmt: skip
    elbos = torch.tensor([r["train_elbo"] for r in res.history], dtype=torch.float64)
    objective = torch.tensor([r["train_objective"] for r in res.history])
    # ELBO per example: E_q log N(x; z, 1) - KL(N(0, 0.3) || N(0, 1)), in closed form
    rec = float(dist.Normal(0.0, 1.0).log_prob(x).mean()) - 0.5 * 0.3**2
    kl = math.log(1 / 0.3) + (0.3**2 - 1) / 2
    se = float(elbos.std() / len(elbos) ** 0.5)
    assert abs(float(elbos.mean()) - (rec - kl)) < 4 * se
    assert float(objective.mean()) > rec - kl + 0.1  # the IWAE bound is above the ELBO


def test_fit_refuses_val_data_a_per_example_guide_cannot_score():
    with pytest.raises(ValueError, match="cannot score `val_data`"):
        pvae.fit(_local_model, torch.randn(8), guide=AutoNormal(_local_model), epochs=2,
                 batch_size=8, val_data=torch.randn(5), seed=0)  # fmt: skip


def test_latents_that_cannot_list_their_support_say_why():
    def binomial(counts):
        with pyro.plate("data", 3):
            n = pyro.sample("n", dist.Binomial(torch.tensor([1.0, 2.0, 3.0]), 0.5))
            pyro.sample("obs", dist.Poisson(0.5 + n), obs=counts)

    with pytest.raises(ValueError, match="'n' \\(Binomial\\) cannot list its support"):
        pvae.enumerate_posterior(binomial, torch.tensor([2.0, 0.0, 3.0]))

    def events():
        z = pyro.sample("z", dist.Bernoulli(torch.full((3,), 0.3)).to_event(1))
        pyro.sample("x", dist.Normal(z.sum(), 1.0), obs=torch.tensor(1.0))

    with pytest.raises(ValueError, match="in a `pyro.plate` instead of `.to_event"):
        pvae.enumerate_posterior(events)
