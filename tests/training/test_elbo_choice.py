"""fit(elbo="enum") and elbo="iwae": checked against Pyro's estimators and hand computations."""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import RenyiELBO, TraceEnum_ELBO

import pvae
from pvae.models import MixtureVAE, SemiSupervisedVAE
from pvae.training.elbos import AuxiliaryLossELBO, EnumELBO, make_elbo
from pvae.training.importance_bound import IWAE_ELBO
from pvae.training.step import SVIStep


def gauss_model(x):
    with pyro.plate("data", len(x)):
        z = pyro.sample("z", dist.Normal(0.0, 1.0))
        pyro.sample("x", dist.Normal(z, 1.0), obs=x)


def gauss_guide(x):
    loc = pyro.param("loc", torch.tensor(0.2))
    with pyro.plate("data", len(x)):
        pyro.sample("z", dist.Normal(x / 3 + loc, 0.8))


def binary(n, d, seed=0):
    return torch.bernoulli(torch.full((n, d), 0.4), generator=torch.Generator().manual_seed(seed))


def test_make_elbo_names():
    assert isinstance(make_elbo("enum"), EnumELBO)
    iwae = make_elbo("iwae", num_particles=7)
    assert isinstance(iwae, IWAE_ELBO) and iwae.num_particles == 7
    with pytest.raises(ValueError, match="`elbo` must be one of"):
        make_elbo("renyi")


def test_enum_finds_max_plate_nesting_from_plates_and_batch_shapes():
    def model():
        with pyro.plate("a", 2, dim=-1), pyro.plate("b", 3, dim=-2):
            c = pyro.sample("c", dist.Bernoulli(0.5), infer={"enumerate": "parallel"})
            pyro.sample("x", dist.Normal(c, 1.0), obs=torch.zeros(3, 2))

    elbo = EnumELBO()
    loss = elbo.loss(model, lambda: None)
    assert elbo.max_plate_nesting == 2
    # the exact answer: each of the 6 cells is a mixture 0.5 N(0; 0, 1) + 0.5 N(0; 1, 1)
    cell = torch.stack(
        [
            dist.Normal(0.0, 1.0).log_prob(torch.tensor(0.0)),
            dist.Normal(1.0, 1.0).log_prob(torch.tensor(0.0)),
        ]
    ).logsumexp(0)
    assert loss == pytest.approx(-6 * float(cell - math.log(2)), abs=1e-5)


def test_enum_step_loss_equals_trace_enum_elbo():
    mix = MixtureVAE(4, 3, z_dim=2, hidden=(5,), seed=0)
    x = binary(6, 4)
    step = SVIStep(mix, elbo="enum")
    pyro.set_rng_seed(3)
    ours = step.evaluate_loss(x)
    pyro.set_rng_seed(3)
    pyro_loss = TraceEnum_ELBO(max_plate_nesting=1).loss(mix.model, mix.guide, x)
    assert ours == pytest.approx(pyro_loss, rel=1e-6)
    assert step.elbo.max_plate_nesting == 1


def test_enumerated_mixture_elbo_is_the_hand_sum_over_components():
    """Same guide draw: -loss = sum_n log sum_c p(c) p(z_n|c) + log p(x_n|z_n) - log q(z_n|x_n)."""
    mix = MixtureVAE(4, 3, z_dim=2, hidden=(), seed=1)
    x = binary(5, 4, seed=1)
    pyro.set_rng_seed(1)
    loss = make_elbo("enum").loss(mix.model, mix.guide, x)
    pyro.set_rng_seed(1)
    loc, scale = mix.encoder(x)
    z = dist.Normal(loc, scale).rsample()
    with torch.no_grad():
        total = 0.0
        pi = torch.softmax(mix.component_logits, -1)
        for n in range(5):
            mixture = sum(
                pi[c]
                * dist.Normal(mix.component_locs[c], mix.component_log_scales[c].exp())
                .log_prob(z[n])
                .sum()
                .exp()
                for c in range(3)
            )
            p = torch.sigmoid(mix.decoder(z[n : n + 1]))[0]
            log_lik = (x[n] * p.log() + (1 - x[n]) * (1 - p).log()).sum()
            log_q = dist.Normal(loc[n], scale[n]).log_prob(z[n]).sum()
            total += float(mixture.log() + log_lik - log_q)
    assert -loss == pytest.approx(total, abs=1e-4)


@pytest.mark.filterwarnings(r"ignore:(?s).*use TraceEnum_ELBO instead:UserWarning")
def test_enumerated_label_elbo_is_the_brute_force_sum_of_trace_elbos():
    """M2: TraceEnum over q(y|x) = sum_y q(y|x) [L(x, y) - log q(y|x)], L by Trace_ELBO."""
    m2 = SemiSupervisedVAE(3, 3, z_dim=1, hidden=(4,), alpha=0.0, seed=0)
    x = binary(2, 3, seed=2)
    unlabelled = torch.tensor([-1, -1])
    k = 500  # per-particle sd of either side ~0.3 nats: standard errors ~0.015
    pyro.set_rng_seed(0)
    enum = -EnumELBO(num_particles=k, vectorize_particles=True).loss(
        m2.model, m2.guide, x, unlabelled
    )
    q = m2.predict_proba(x).double()
    brute = 0.0
    for label in range(3):
        y = torch.full((2,), label)
        per = torch.zeros(2, dtype=torch.float64)
        for n in range(2):  # L(x_n, y): the labelled bound, y observed via the pinned guide
            yn = y[n : n + 1]
            elbo = pyro.infer.Trace_ELBO(
                num_particles=k, vectorize_particles=True, max_plate_nesting=1
            )
            per[n] = -elbo.loss(m2.model, m2.guide, x[n : n + 1], yn)
        brute += float((q[:, label] * (per - q[:, label].log())).sum())
    assert enum == pytest.approx(brute, abs=0.07)


def test_labelled_examples_have_a_point_mass_label_and_the_labelled_bound():
    m2 = SemiSupervisedVAE(3, 4, z_dim=1, hidden=(), seed=0)
    x, y = binary(5, 3), torch.tensor([0, 3, 1, 2, 2])
    tr = pyro.poutine.trace(m2.guide).get_trace(x, y)
    probs = tr.nodes["y"]["fn"].probs
    assert torch.equal(probs, torch.nn.functional.one_hot(y, 4).float())
    assert torch.equal(tr.nodes["y"]["value"], y)


def test_fit_enum_history_columns_are_the_models_elbo():
    mix = MixtureVAE(4, 2, z_dim=1, hidden=(), seed=0)
    x = binary(64, 4, seed=5)
    res = pvae.fit(mix, x, epochs=1, batch_size=64, lr=1e-9, elbo="enum", seed=0)
    row = res.history[0]
    assert "train_objective" not in row
    reference = (
        -TraceEnum_ELBO(num_particles=100, vectorize_particles=True, max_plate_nesting=1).loss(
            mix.model, mix.guide, x
        )
        / 64
    )
    assert row["train_elbo"] == pytest.approx(reference, abs=0.5)
    assert row["train_reconstruction"] - row["train_kl_prior"] == pytest.approx(reference, abs=0.5)


def test_m2_fit_reports_the_objective_beside_the_elbo():
    m2 = SemiSupervisedVAE(4, 2, z_dim=1, hidden=(), alpha=2.0, seed=0)
    x, y = binary(16, 4), torch.tensor([0, 1] * 4 + [-1] * 8)
    res = pvae.fit(m2, (x, y), epochs=1, batch_size=16, elbo="enum", seed=0)
    assert isinstance(SVIStep(m2, elbo="enum").elbo, AuxiliaryLossELBO)
    assert {"train_elbo", "train_objective"} <= set(res.history[0])
    # the classification term: -alpha * sum of log q(y|x) over the 8 labelled examples only
    with torch.no_grad():
        expected = -2.0 * torch.log_softmax(m2.classify(x[:8]), -1).gather(1, y[:8, None]).sum()
        assert m2.auxiliary_loss(x, y).item() == pytest.approx(expected.item(), rel=1e-6)


def test_iwae_equals_renyi_alpha_0_on_one_example_and_a_hand_log_mean_exp():
    x = torch.tensor([1.3])
    pyro.clear_param_store()
    for k in (1, 7):
        pyro.set_rng_seed(0)
        ours = IWAE_ELBO(k).loss(gauss_model, gauss_guide, x)
        pyro.set_rng_seed(0)
        renyi = RenyiELBO(
            alpha=0, num_particles=k, vectorize_particles=True, max_plate_nesting=1
        ).loss(gauss_model, gauss_guide, x)
        pyro.set_rng_seed(0)
        z = dist.Normal((x / 3 + 0.2).expand(k, 1), 0.8).rsample()
        log_w = (
            dist.Normal(0.0, 1.0).log_prob(z)
            + dist.Normal(z, 1.0).log_prob(x)
            - dist.Normal(x / 3 + 0.2, 0.8).log_prob(z)
        )
        hand = -float(log_w.logsumexp(0) - math.log(k))
        assert ours == pytest.approx(renyi, abs=1e-5) and ours == pytest.approx(hand, abs=1e-5)


def test_iwae_is_per_example_where_renyi_is_joint():
    """Pyro's RenyiELBO weights the whole batch jointly; IWAE_ELBO sums per-example bounds."""
    x = torch.tensor([1.3, -0.4, 2.0])
    pyro.clear_param_store()
    k = 5
    pyro.set_rng_seed(0)
    ours = IWAE_ELBO(k).loss(gauss_model, gauss_guide, x)
    pyro.set_rng_seed(0)
    z = dist.Normal((x / 3 + 0.2).expand(k, 3), 0.8).rsample()
    log_w = (
        dist.Normal(0.0, 1.0).log_prob(z)
        + dist.Normal(z, 1.0).log_prob(x)
        - dist.Normal(x / 3 + 0.2, 0.8).log_prob(z)
    )
    per_example = -float((log_w.logsumexp(0) - math.log(k)).sum())
    joint = -float(log_w.sum(1).logsumexp(0) - math.log(k))
    assert ours == pytest.approx(per_example, abs=1e-5)
    assert abs(ours - joint) > 1e-3  # not the joint weights of RenyiELBO


def test_iwae_refuses_discrete_guide_sites_and_scales():
    m2 = SemiSupervisedVAE(3, 2, z_dim=1, hidden=(), seed=0)
    with pytest.raises(ValueError, match="'y' from Categorical, which has no `rsample`"):
        IWAE_ELBO(3).loss(m2.model, m2.guide, binary(2, 3), torch.tensor([-1, 0]))
    vae = pvae.VAE(3, 1, hidden=(), beta=0.5)
    with pytest.raises(ValueError, match="site 'z' is scaled"):
        IWAE_ELBO(3).loss(vae.model, vae.guide, binary(2, 3))


def test_fit_iwae_trains_a_mixture_with_the_component_summed_out():
    mix = MixtureVAE(4, 2, z_dim=1, hidden=(), seed=0)
    res = pvae.fit(
        mix, binary(32, 4), epochs=2, batch_size=32, lr=1e-2, elbo="iwae", num_particles=4, seed=0
    )
    row = res.history[-1]
    assert {"train_elbo", "train_objective"} <= set(row)
    assert math.isfinite(row["train_objective"])
