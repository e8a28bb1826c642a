"""Tests for pvae.exact: exact posteriors by enumeration, both engines."""

import itertools
import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyro.ops.indexing import Vindex

from pvae import toy
from pvae.exact import ExactPosterior, enumerate_posterior
from pvae.exact.bayes import BayesTable, bayes_rule

F64 = torch.float64


def close(a, b, atol=1e-9):
    torch.testing.assert_close(
        torch.as_tensor(a, dtype=F64), torch.as_tensor(b, dtype=F64), rtol=0, atol=atol
    )


def coin_with_control_flow(flips):
    """A student's model: Python `if` on a sampled value."""
    fair = pyro.sample("fair", dist.Bernoulli(0.5))
    if int(fair) == 1:
        p = 0.5
    else:
        p = 0.9
    with pyro.plate("data", len(flips)):
        pyro.sample("x", dist.Bernoulli(p), obs=flips)


@pytest.mark.parametrize("method", ["parallel", "sequential"])
def test_medical_test_both_engines(method):
    post = enumerate_posterior(toy.medical_test, method=method)
    assert isinstance(post, ExactPosterior) and post.method == method
    assert post.sites == ("disease",)
    close(post.support("disease"), [0.0, 1.0], atol=0)
    marginal = post.marginal("disease")
    assert marginal.dtype == F64
    close(marginal, [0.99 * 0.096 / 0.10304, 0.008 / 0.10304])
    assert post.log_evidence == pytest.approx(math.log(0.10304), abs=1e-12)
    assert post.evidence == pytest.approx(0.10304, abs=1e-12)


def test_control_flow_model_falls_back_to_sequential():
    flips = torch.tensor([1.0, 1.0, 0.0])
    post = enumerate_posterior(coin_with_control_flow, flips)
    assert post.method == "sequential"
    fair, biased = 0.5 * 0.5**3, 0.5 * 0.9 * 0.9 * 0.1
    assert post.prob(fair=1) == pytest.approx(fair / (fair + biased), abs=1e-12)
    assert post.log_evidence == pytest.approx(math.log(fair + biased), abs=1e-12)
    with pytest.raises(ValueError, match=r"method='sequential'"):
        enumerate_posterior(coin_with_control_flow, flips, method="parallel")


def test_sequential_joint_table_is_a_bayes_table():
    post = enumerate_posterior(toy.burglary_alarm, method="sequential")
    t = post.joint()
    assert isinstance(t, BayesTable) and len(t.hypotheses) == 8
    assert t.hypotheses[5] == (1, 0, 1)  # (burglary, earthquake, alarm)
    assert float(t.prior.sum()) == pytest.approx(1.0, abs=1e-12)
    assert t.log_evidence == pytest.approx(post.log_evidence, abs=1e-12)
    frame = post.to_dataframe()
    assert list(frame.columns[:3]) == ["burglary", "earthquake", "alarm"]
    assert frame["posterior"].sum() == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match=r"only the sequential engine"):
        enumerate_posterior(toy.burglary_alarm, method="parallel").joint()


@pytest.mark.parametrize("name", ["burglary-alarm", "sprinkler", "monty-hall"])
def test_prob_and_map_agree_between_engines(name):
    par = enumerate_posterior(toy.TOYS[name], method="parallel")
    seq = enumerate_posterior(toy.TOYS[name], method="sequential")
    assert par.map().keys() == seq.map().keys()
    for site in par.sites:
        close(par.map()[site], seq.map()[site], atol=0)
        for value in par.support(site).tolist():
            assert par.prob(**{site: value}) == pytest.approx(seq.prob(**{site: value}), abs=1e-9)
    pair = dict(zip(par.sites[:2], (1, 0), strict=False))
    assert par.prob(**pair) == pytest.approx(seq.prob(**pair), abs=1e-9)
    assert par.prob() == 1.0


def test_map_is_the_joint_mode_not_the_marginal_modes():
    # burglary given j, m: the joint mode is (b=0, e=0, a=1) from the joint table
    seq = enumerate_posterior(toy.burglary_alarm, method="sequential")
    best = seq.joint().hypotheses[int(seq.joint().posterior.argmax())]
    assert best == (0, 0, 1)
    par = enumerate_posterior(toy.burglary_alarm)
    assert [int(par.map()[s]) for s in par.sites] == [0, 0, 1]


def test_plate_latents_give_per_datapoint_marginals_and_samples():
    post = enumerate_posterior(toy.toy_vae)
    assert post.marginal("z").shape == (6, 3)
    close(post.marginal("z").sum(-1), torch.ones(6))
    samples = post.sample(4000)
    assert samples["z"].shape == (4000, 6)
    freq = torch.stack([(samples["z"] == k).to(F64).mean(0) for k in range(3)], -1)
    close(freq, post.marginal("z"), atol=0.03)  # 4000 draws: 3 sd < 0.024
    assert post.map()["z"].shape == (6,)


def test_sequential_sample_matches_marginals():
    post = enumerate_posterior(toy.sprinkler, method="sequential")
    s = post.sample(4000)
    assert s["rain"].shape == (4000,)
    assert float(s["rain"].mean()) == pytest.approx(float(post.marginal("rain")[1]), abs=0.03)


def test_global_and_local_latents_in_nested_plates():
    probs = torch.tensor([[0.2, 0.7, 0.4], [0.9, 0.3, 0.5]], dtype=F64)  # [g, k]
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]], dtype=F64)  # [j, i]

    def model():
        g = pyro.sample("g", dist.Bernoulli(0.3))
        with pyro.plate("i", 3, dim=-1):
            k = pyro.sample("k", dist.Categorical(torch.ones(3) / 3))
            with pyro.plate("j", 2, dim=-2):
                pyro.sample("x", dist.Bernoulli(Vindex(probs)[g.long(), k]), obs=x)

    par = enumerate_posterior(model, method="parallel")
    seq = enumerate_posterior(model, method="sequential")
    assert par.marginal("k").shape == seq.marginal("k").shape == (3, 3)
    close(par.marginal("k"), seq.marginal("k"))
    close(par.marginal("g"), seq.marginal("g"))
    assert par.log_evidence == pytest.approx(seq.log_evidence, abs=1e-9)
    # hand check: p(x) = sum_g p(g) prod_i sum_k p(k) prod_j p(x_ji | g, k)
    total = 0.0
    for g, pg in ((0, 0.7), (1, 0.3)):
        term = pg
        for i in range(3):
            lik = probs[g] ** x[:, i, None] * (1 - probs[g]) ** (1 - x[:, i, None])
            term *= float(lik.prod(0).mean())
        total += term
    assert par.log_evidence == pytest.approx(math.log(total), abs=1e-12)


def test_one_hot_and_batched_latent_without_plate():
    def model():
        z = pyro.sample("z", dist.OneHotCategorical(torch.tensor([0.2, 0.3, 0.5])))
        pyro.sample(
            "x",
            dist.Normal((z * torch.tensor([-1.0, 0.0, 1.0])).sum(-1), 1.0),
            obs=torch.tensor(0.8),
        )

    post = enumerate_posterior(model)
    close(post.support("z"), torch.eye(3), atol=0)
    w = torch.tensor([0.2, 0.3, 0.5], dtype=F64) * torch.exp(
        -0.5 * (0.8 - torch.tensor([-1.0, 0.0, 1.0], dtype=F64)) ** 2
    )
    close(post.marginal("z"), w / w.sum())

    def unplated():  # a batch of 2 latents without a plate: only the sequential engine
        z = pyro.sample("z", dist.Bernoulli(torch.tensor([0.5, 0.2])).to_event(0))
        pyro.sample("x", dist.Bernoulli(0.1 + 0.8 * z).to_event(1), obs=torch.tensor([1.0, 0.0]))

    post = enumerate_posterior(unplated)
    assert post.method == "sequential" and post.marginal("z").shape == (2, 2)
    close(post.marginal("z")[0], [0.1 / 1.0, 0.9 / 1.0])  # independent: 0.5*.1 vs 0.5*.9
    close(post.marginal("z")[1], [0.8 * 0.9 / (0.8 * 0.9 + 0.2 * 0.1), 0.2 * 0.1 / 0.74])


def test_continuous_latent_is_refused_with_a_pointer_to_svi():
    def model():
        loc = pyro.sample("loc", dist.Normal(0.0, 1.0))
        pyro.sample("x", dist.Normal(loc, 1.0), obs=torch.tensor(0.5))

    for method in ("auto", "parallel", "sequential"):
        with pytest.raises(ValueError, match=r"'loc' \(Normal\) has a continuous .*SVI"):
            enumerate_posterior(model, method=method)


def test_too_many_states_reports_the_count():
    x = torch.zeros(20, 4)
    with pytest.raises(ValueError, match=r"3486784401 joint assignments.*`max_states`=20000"):
        enumerate_posterior(toy.toy_vae, x, method="sequential")
    with pytest.raises(ValueError, match=r"729 joint assignments.*`max_states`=100"):
        enumerate_posterior(toy.toy_vae, method="sequential", max_states=100)


@pytest.mark.parametrize("method", ["auto", "parallel", "sequential"])
def test_impossible_evidence(method):
    # the host never opens the door you chose
    with pytest.raises(ValueError, match=r"evidence p\(x\) is 0"):
        enumerate_posterior(toy.monty_hall, 0, 0, method=method)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"`method` must be one of"):
        enumerate_posterior(toy.medical_test, method="fast")
    with pytest.raises(ValueError, match=r"`max_states` must be a positive integer, got 0"):
        enumerate_posterior(toy.medical_test, max_states=0)
    with pytest.raises(ValueError, match=r"`model` must be a callable"):
        enumerate_posterior("model")
    post = enumerate_posterior(toy.medical_test)
    with pytest.raises(ValueError, match=r"`site` must be one of the latent sites"):
        post.marginal("test")
    with pytest.raises(ValueError, match=r"`num_samples` must be a positive int"):
        post.sample(0)
    assert "p(disease | x)" in str(post)


def test_float32_model_still_gives_float64_results():
    def model():
        z = pyro.sample("z", dist.Categorical(torch.tensor([0.1, 0.2, 0.7], dtype=torch.float32)))
        pyro.sample("x", dist.Poisson(torch.tensor([1.0, 2.0, 3.0])[z]), obs=torch.tensor(2.0))

    post = enumerate_posterior(model)
    w = torch.tensor([0.1, 0.2, 0.7], dtype=F64) * torch.tensor([1.0, 2.0, 3.0], dtype=F64) ** 2
    w = w * torch.exp(-torch.tensor([1.0, 2.0, 3.0], dtype=F64))
    assert post.marginal("z").dtype == F64
    close(post.marginal("z"), w / w.sum(), atol=1e-7)  # float32 CPT: float32 accuracy


# ---------------------------------------------------------------- property test


@st.composite
def bayes_nets(draw):
    """A random discrete Bayes net: cardinalities, parents, CPTs and evidence."""
    n = draw(st.integers(2, 4))
    cards = [draw(st.integers(2, 3)) for _ in range(n)]
    parents = [
        sorted(draw(st.sets(st.integers(0, i - 1), max_size=min(i, 2)))) if i else []
        for i in range(n)
    ]
    weight = st.floats(0.05, 1.0)
    cpts = []
    for i in range(n):
        shape = [cards[p] for p in parents[i]] + [cards[i]]
        w = torch.tensor([draw(weight) for _ in range(math.prod(shape))], dtype=F64).reshape(shape)
        cpts.append(w / w.sum(-1, keepdim=True))
    observed = draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=n - 1))
    evidence = {i: draw(st.integers(0, cards[i] - 1)) for i in sorted(observed)}
    return cards, parents, cpts, evidence


def _net_model(parents, cpts, evidence):
    def model():
        values = []
        for i, cpt in enumerate(cpts):
            probs = Vindex(cpt)[tuple(values[p] for p in parents[i])] if parents[i] else cpt
            obs = torch.tensor(evidence[i]) if i in evidence else None
            values.append(pyro.sample(f"v{i}", dist.Categorical(probs), obs=obs))

    return model


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(bayes_nets())
def test_random_bayes_nets_three_ways(net):
    cards, parents, cpts, evidence = net
    model = _net_model(parents, cpts, evidence)
    latent = [i for i in range(len(cards)) if i not in evidence]
    # flattened joint through bayes_rule: hypotheses are joint latent assignments
    hyps = list(itertools.product(*[range(cards[i]) for i in latent]))
    prior, lik = [], []
    for h in hyps:
        full = dict(evidence) | dict(zip(latent, h, strict=True))

        def p(i, full=full):
            return float(cpts[i][tuple(full[q] for q in parents[i]) + (full[i],)])

        prior.append(math.prod(p(i) for i in latent))
        lik.append(math.prod(p(i) for i in evidence))
    table = bayes_rule(prior, lik, hypotheses=hyps)
    par = enumerate_posterior(model, method="parallel")
    seq = enumerate_posterior(model, method="sequential")
    assert par.sites == seq.sites == tuple(f"v{i}" for i in latent)
    assert par.log_evidence == pytest.approx(table.log_evidence, abs=1e-9)
    assert seq.log_evidence == pytest.approx(table.log_evidence, abs=1e-9)
    for j, i in enumerate(latent):
        expected = torch.zeros(cards[i], dtype=F64)
        for h, w in zip(hyps, table.posterior, strict=True):
            expected[h[j]] += w
        close(par.marginal(f"v{i}"), expected)
        close(seq.marginal(f"v{i}"), expected)


def test_observed_value_outside_support_is_named():
    def model():
        z = pyro.sample("z", dist.Bernoulli(0.5))
        pyro.sample("x", dist.Bernoulli(0.2 + 0.6 * z), obs=torch.tensor(2.0))

    for method in ("auto", "parallel"):
        with pytest.raises(ValueError, match=r"Observed site 'x'"):
            enumerate_posterior(model, method=method)


def test_posterior_carries_its_model():
    post = enumerate_posterior(toy.sprinkler)
    assert post.model is toy.sprinkler
    assert post.evidence == pytest.approx(0.6471, abs=1e-9)


def test_float32_network_is_retried_in_the_default_dtype():
    decoder = torch.nn.Linear(3, 4)  # float32 weights
    x = torch.tensor([[1.0, 0, 1, 1], [0, 0, 1, 0]])

    def model(x):
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Categorical(torch.ones(3) / 3))
            onehot = torch.nn.functional.one_hot(z, 3).to(torch.get_default_dtype())
            pyro.sample("x", dist.Bernoulli(logits=decoder(onehot)).to_event(1), obs=x)

    post = enumerate_posterior(model, x)
    assert post.method == "parallel" and post.marginal("z").dtype == F64
    with torch.no_grad():
        log_lik = dist.Bernoulli(logits=decoder(torch.eye(3))).log_prob(x[:, None]).sum(-1)
    close(post.marginal("z"), torch.softmax(log_lik.double(), -1), atol=1e-6)
    assert post.sample(5)["z"].shape == (5, 2)
