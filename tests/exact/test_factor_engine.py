"""The factor engine: recovered factors + min-fill elimination, past the 64-latent ceiling.

References: Pyro's TraceEnum_ELBO / compute_marginals (small models), a hand-written
forward-backward recursion (chains of 100 latents), and brute-force sums.
"""

import itertools
import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import TraceEnum_ELBO, config_enumerate

from pvae import toy
from pvae.exact import enumerate_posterior
from pvae.exact.elimination import plan
from pvae.exact.sites import default_dtype

F64 = torch.float64
TRANS = torch.tensor([[0.9, 0.1], [0.2, 0.8]], dtype=F64)
EMIT = torch.tensor([[0.7, 0.3], [0.1, 0.9]], dtype=F64)


def close(a, b, atol=1e-10):
    torch.testing.assert_close(
        torch.as_tensor(a, dtype=F64), torch.as_tensor(b, dtype=F64), rtol=0, atol=atol
    )


def chain(obs):
    """An HMM written as a Python loop (no plates): one latent per step."""
    z = pyro.sample("z_0", dist.Categorical(torch.tensor([0.5, 0.5], dtype=F64)))
    for t, x in enumerate(obs):
        if t:
            z = pyro.sample(f"z_{t}", dist.Categorical(TRANS[z]))
        if x is not None:
            pyro.sample(f"x_{t}", dist.Categorical(EMIT[z]), obs=torch.tensor(x))


def forward_backward(obs, init=None):
    """Marginals and log p(x) of `chain` by the textbook recursion (float64)."""
    n = len(obs)
    like = [EMIT[:, x] if x is not None else torch.ones(2, dtype=F64) for x in obs]
    alpha, logs = [], 0.0
    init = torch.tensor([0.5, 0.5], dtype=F64) if init is None else init
    a = init * like[0]
    for t in range(n):
        if t:
            a = (alpha[-1] @ TRANS) * like[t]
        c = a.sum()
        logs += math.log(c)
        alpha.append(a / c)
    beta = [torch.ones(2, dtype=F64)] * n
    for t in range(n - 2, -1, -1):
        b = TRANS @ (like[t + 1] * beta[t + 1])
        beta[t] = b / b.sum()
    margs = [(a * b) / (a * b).sum() for a, b in zip(alpha, beta, strict=True)]
    return margs, logs


OBS = [(t * 7) % 3 % 2 if t % 4 else None for t in range(70)]


def test_chain_of_70_latents_matches_forward_backward():
    post = enumerate_posterior(chain, OBS)
    assert post.method == "factor" and "70 latent sites" in post.reason
    margs, log_z = forward_backward(OBS)
    assert post.log_evidence == pytest.approx(log_z, abs=1e-9)
    for t in (0, 1, 50, 69):
        close(post.marginal(f"z_{t}"), margs[t])
    result = post._factored
    assert result.plan.largest == 4  # a chain: pairs only
    # given z_50 = 1 the chain after it starts afresh from TRANS[1] (Markov property)
    cut, _ = forward_backward(OBS[51:], init=TRANS[1])
    given = post.marginal("z_69", given={"z_50": 1})
    close(given, cut[-1])
    ratio = post.prob(z_69=1, z_50=1) / post.prob(z_50=1)
    assert float(given[1]) == pytest.approx(ratio, abs=1e-12)


@pytest.mark.parametrize("name", ["burglary-alarm", "sprinkler", "monty-hall", "medical-test"])
def test_factor_engine_agrees_with_pyro_on_the_toys(name):
    model = toy.TOYS[name]
    post = enumerate_posterior(model, method="factor")
    assert post.method == "factor" and post.reason == ""
    elbo = TraceEnum_ELBO(max_plate_nesting=0)
    loss = elbo.loss(config_enumerate(model), lambda *a, **k: None)
    assert post.log_evidence == pytest.approx(-loss, abs=1e-9)
    margs = elbo.compute_marginals(config_enumerate(model), lambda: None)
    for site in post.sites:
        ref = margs[site].log_prob(post.support(site).to(torch.float32)).exp()
        close(post.marginal(site), ref, atol=1e-6)
    seq = enumerate_posterior(model, method="sequential")
    for site in post.sites:
        close(post.marginal(site), seq.marginal(site), atol=1e-12)
    assert {k: v.tolist() for k, v in post.map().items()} == {
        k: v.tolist() for k, v in seq.map().items()
    }


def masked_scaled():
    a = pyro.sample("a", dist.Bernoulli(torch.tensor(0.3, dtype=F64)))
    with poutine.mask(mask=torch.tensor(False)):
        b = pyro.sample("b", dist.Bernoulli(0.2 + 0.6 * a))  # a latent's own mask: ignored
    pyro.sample("x", dist.Bernoulli(0.1 + 0.8 * b), obs=torch.tensor(1.0))
    with poutine.mask(mask=torch.tensor(False)):
        pyro.sample("y", dist.Bernoulli(0.9 - 0.8 * a), obs=torch.tensor(1.0))
    pyro.sample("free", dist.Normal(0.0, 1.0), obs=torch.tensor(0.5))


@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_masks_and_scales_follow_trace_enum_elbo(scale):
    model = poutine.scale(masked_scaled, scale=scale)
    post = enumerate_posterior(model, method="factor")
    par = enumerate_posterior(model, method="parallel")
    elbo = TraceEnum_ELBO(max_plate_nesting=0)
    with default_dtype(F64):
        expected = -elbo.loss(config_enumerate(model), lambda: None)
    assert post.log_evidence == pytest.approx(expected, abs=1e-9)
    assert post.log_evidence == pytest.approx(par.log_evidence, abs=1e-12)
    assert post.unscaled_log_evidence == pytest.approx(par.unscaled_log_evidence, abs=1e-12)
    # brute force: the masked observation y and b's mask drop out, x stays in
    pa = {0: 0.7, 1: 0.3}
    joint = {
        (a, b): pa[a] * (0.2 + 0.6 * a if b else 0.8 - 0.6 * a) * (0.1 + 0.8 * b)
        for a in (0, 1)
        for b in (0, 1)
    }
    z = sum(joint.values())
    free = -0.5 * 0.5**2 - 0.5 * math.log(2 * math.pi)
    assert post.log_evidence == pytest.approx(scale * (math.log(z) + free), abs=1e-12)
    assert post.prob(a=1) == pytest.approx((joint[1, 0] + joint[1, 1]) / z, abs=1e-12)


def control_flow_chain(n):
    z = pyro.sample("z_0", dist.Bernoulli(torch.tensor(0.5, dtype=F64)))
    for t in range(1, n):
        p = 0.9 if bool((z == 1).all()) else 0.2  # control flow on a sampled value
        z = pyro.sample(f"z_{t}", dist.Bernoulli(torch.tensor(p, dtype=F64)))
    pyro.sample("x", dist.Bernoulli(0.3 + 0.4 * z), obs=torch.tensor(1.0))


def test_control_flow_is_detected_and_refused():
    with pytest.raises(ValueError, match=r"control flow"):
        enumerate_posterior(control_flow_chain, 62, method="factor")
    # auto falls back to the sequential engine, which refuses 2**62 states naming why
    with pytest.raises(ValueError, match=r"factor engine.*control flow"):
        enumerate_posterior(control_flow_chain, 62)
    small = enumerate_posterior(control_flow_chain, 6, max_states=100)
    assert small.method == "sequential"


def star(n):
    zs = [pyro.sample(f"z_{i}", dist.Bernoulli(torch.tensor(0.5, dtype=F64))) for i in range(n)]
    hub = sum(zs)
    pyro.sample("x", dist.Bernoulli(torch.sigmoid(hub - n / 2)), obs=torch.tensor(1.0))


def test_a_table_too_large_is_refused_before_it_is_built():
    with pytest.raises(ValueError, match=r"'x' alone is a table of 1.049e\+06 entries"):
        enumerate_posterior(star, 20, method="factor", max_table=2**16)
    n = 12
    post = enumerate_posterior(star, n, method="factor")
    # closed form: the hub h = sum(z) is Binomial(n, 1/2), and z_3 = 1 in h/n of the cases
    like = [math.comb(n, h) / 2**n / (1 + math.exp(n / 2 - h)) for h in range(n + 1)]
    p1 = sum(lk * h / n for h, lk in enumerate(like)) / sum(like)
    close(post.marginal("z_3"), [1 - p1, p1], atol=1e-12)
    assert post.log_evidence == pytest.approx(math.log(sum(like)), abs=1e-12)


def _largest_of(order, scopes, cards):
    """The largest table eliminating in ``order`` creates (brute-force simulation)."""
    graph = {v: set() for v in cards}
    for sc in scopes:
        for a in sc:
            graph[a] |= set(sc) - {a}
    largest = 0
    for v in order:
        nbrs = graph.pop(v)
        largest = max(largest, cards[v] * math.prod(cards[u] for u in nbrs))
        for a in nbrs:
            graph[a] = (graph[a] | nbrs) - {a, v}
    return largest


def test_plan_predicts_the_largest_table_and_is_optimal_on_small_graphs():
    # a 4-cycle with a chord-free loop and mixed cardinalities, and a 3x3 grid
    cycle = [("a", "b"), ("b", "c"), ("c", "d"), ("a", "d")]
    grid = [(f"{i}{j}", f"{i}{j + 1}") for i in range(3) for j in range(2)]
    grid += [(f"{i}{j}", f"{i + 1}{j}") for i in range(2) for j in range(3)]
    for scopes, cards in [
        (cycle, {"a": 2, "b": 3, "c": 2, "d": 5}),
        (grid, {f"{i}{j}": 2 + (i + j) % 2 for i in range(3) for j in range(3)}),
    ]:
        p = plan(scopes, cards, {s: i for i, s in enumerate(cards)})
        assert sorted(p.order) == sorted(cards)
        assert p.largest == _largest_of(p.order, scopes, cards)
        assert p.largest_scope in {sc for _, sc in p.steps}
        if len(cards) <= 4:  # the best any order can do, by brute force
            best = min(_largest_of(o, scopes, cards) for o in itertools.permutations(cards))
            assert p.largest == best == 20
    loop = [(f"v{i}", f"v{(i + 1) % 30}") for i in range(30)]
    big = plan(loop, {f"v{i}": 2 for i in range(30)}, {f"v{i}": i for i in range(30)})
    assert big.largest == 8  # a cycle has treewidth 2


def test_a_kept_plan_is_only_reused_for_the_same_factor_graph():
    cycle = [("a", "b"), ("b", "c"), ("c", "d"), ("a", "d")]
    index = {s: i for i, s in enumerate("abcd")}
    first = plan(cycle, {"a": 2, "b": 3, "c": 2, "d": 5}, index)
    assert plan(cycle, {"a": 2, "b": 3, "c": 2, "d": 5}, index) is first  # kept
    # other cardinalities or another graph: planned afresh (brute-force optimum each time)
    for scopes, cards in [
        (cycle, {"a": 7, "b": 3, "c": 2, "d": 5}),
        (cycle[:3], {"a": 2, "b": 3, "c": 2, "d": 5}),
    ]:
        p = plan(scopes, cards, index)
        best = min(_largest_of(o, scopes, cards) for o in itertools.permutations(cards))
        assert p is not first and p.largest == _largest_of(p.order, scopes, cards) == best


def test_plated_models_stay_on_the_parallel_engine():
    post = enumerate_posterior(toy.gaussian_mixture)
    assert post.method == "parallel"
    with pytest.raises(ValueError, match=r"plate-free.*pyro.plate 'data'"):
        enumerate_posterior(toy.gaussian_mixture, method="factor")


def test_sampling_from_the_factor_engine_matches_the_marginals():
    pyro.set_rng_seed(0)
    post = enumerate_posterior(chain, OBS[:62])
    draws = post.sample(4000)
    assert draws["z_30"].shape == (4000,)
    freq = draws["z_30"].double().mean()
    p = float(post.marginal("z_30")[1])
    assert abs(float(freq) - p) < 4 * math.sqrt(p * (1 - p) / 4000)
    # pairs: the joint of neighbours, from the draws and from prob()
    both = ((draws["z_30"] == 1) & (draws["z_31"] == 1)).double().mean()
    p11 = post.prob(z_30=1, z_31=1)
    assert abs(float(both) - p11) < 4 * math.sqrt(p11 * (1 - p11) / 4000)


def half_impossible():
    z = pyro.sample("z", dist.Bernoulli(torch.tensor(0.5, dtype=F64)))
    pyro.sample(
        "x",
        dist.Categorical(torch.stack([0.5 + 0 * z, 0.5 * z, 0.5 - 0.5 * z], -1)),
        obs=torch.tensor(1),
    )


def impossible():
    z = pyro.sample("z", dist.Bernoulli(torch.tensor(0.5, dtype=F64)))
    pyro.sample("x", dist.Bernoulli(0.0 * z), obs=torch.tensor(1.0))


@pytest.mark.parametrize("method", ["parallel", "factor", "sequential"])
def test_probability_zero_is_exactly_zero_in_every_engine(method):
    # torch clamps probs: log_prob of a probability-0 value is -36, not -inf
    post = enumerate_posterior(half_impossible, method=method)
    assert float(post.marginal("z")[0]) == 0.0
    assert post.log_evidence == pytest.approx(math.log(0.25), abs=1e-12)
    with pytest.raises(ValueError, match=r"p\(x\) is 0.*undefined"):
        enumerate_posterior(impossible, method=method)
    if method != "sequential":
        with pytest.raises(ValueError, match=r"probability-0 value: 'x'"):
            enumerate_posterior(impossible, method=method)


def test_conditioning_on_an_impossible_event_is_refused():
    post = enumerate_posterior(toy.monty_hall)
    with pytest.raises(ValueError, match=r"`given`=.*probability 0"):
        post.prob(car=0, given={"car": 5})


@pytest.mark.parametrize("method", ["parallel", "factor", "sequential"])
def test_conditional_queries_match_a_conditioned_model(method):
    post = enumerate_posterior(toy.sprinkler, method=method)
    # reference: Pyro's compute_marginals on the model with rain observed
    conditioned = poutine.condition(toy.sprinkler, data={"rain": torch.tensor(1.0)})
    elbo = TraceEnum_ELBO(max_plate_nesting=0)
    margs = elbo.compute_marginals(config_enumerate(conditioned), lambda: None)
    for site in ("cloudy", "sprinkler"):
        ref = margs[site].log_prob(torch.tensor([0.0, 1.0])).exp()
        close(post.marginal(site, given={"rain": 1}), ref, atol=1e-6)
    # and a brute-force ratio of sums over the sequential engine's joint table
    table = enumerate_posterior(toy.sprinkler, method="sequential").joint()
    rows = [dict(zip(post.sites, h, strict=True)) for h in table.hypotheses]
    num = sum(
        float(p)
        for r, p in zip(rows, table.posterior, strict=True)
        if r["sprinkler"] == 1 and r["rain"] == 1 and r["cloudy"] == 0
    )
    den = sum(float(p) for r, p in zip(rows, table.posterior, strict=True) if r["rain"] == 1)
    got = post.prob(sprinkler=1, cloudy=0, given={"rain": 1})
    assert got == pytest.approx(num / den, abs=1e-12)
    assert post.prob(rain=1, given={"rain": 1}) == pytest.approx(1.0, abs=1e-12)
    assert post.prob(rain=0, given={"rain": 1}) == 0.0


def test_a_plated_model_past_64_dimensions_is_refused_with_the_count():
    def wide(x):
        zs = [
            pyro.sample(f"z_{i}", dist.Bernoulli(torch.tensor(0.5, dtype=F64))) for i in range(70)
        ]
        with pyro.plate("data", len(x)):
            pyro.sample("x", dist.Bernoulli(0.2 + 0.6 * zs[0]), obs=x)

    with pytest.raises(ValueError, match=r"71 tensor dimensions \(70 latent sites \+ 1 plate"):
        enumerate_posterior(wide, torch.ones(3, dtype=F64))


@pytest.mark.parametrize("cards", [(2, 2, 2), (2, 3, 4)])
def test_plain_indexing_of_a_table_by_two_enumerated_sites_falls_back_to_sequential(cards):
    """``cc[b][a]`` (not Vindex) broadcasts a's and b's enumerated values against each
    other: with equal cardinalities c's distribution varies along c's own dimension (a
    factor that forgets b, right wherever b == c, so the three-point check can miss it),
    with unequal ones the log-density fails to broadcast. Either way auto must give the
    sequential engine's answer (the brute-force sum over 2*K_b*K_c assignments)."""
    ka, kb, kc = cards
    g = torch.Generator().manual_seed(3)
    cb = torch.rand(ka, kb, generator=g, dtype=F64)
    cb /= cb.sum(-1, keepdim=True)
    cc = torch.rand(kb, ka, kc, generator=g, dtype=F64)
    cc /= cc.sum(-1, keepdim=True)

    def model():
        a = pyro.sample("a", dist.Categorical(torch.tensor([0.3, 0.7], dtype=F64)))
        b = pyro.sample("b", dist.Categorical(cb[a]))
        c = pyro.sample("c", dist.Categorical(cc[b][a]))
        loc = c.to(F64) + 2 * b.to(F64) - a.to(F64)
        pyro.sample("x", dist.Normal(loc, 0.7), obs=torch.tensor(1.2, dtype=F64))

    terms = [
        math.log((0.3, 0.7)[a] * cb[a, b] * cc[b, a, c])
        - 0.5 * ((1.2 - (c + 2 * b - a)) / 0.7) ** 2
        - math.log(0.7 * math.sqrt(2 * math.pi))
        for a in range(ka)
        for b in range(kb)
        for c in range(kc)
    ]
    exact = float(torch.logsumexp(torch.tensor(terms, dtype=F64), 0))  # by hand
    for seed in range(6):
        pyro.set_rng_seed(seed)
        post = enumerate_posterior(model)
        assert post.method == "sequential", seed
        assert post.log_evidence == pytest.approx(exact, abs=1e-12)
        with pytest.raises(ValueError, match="factor engine could not read"):
            enumerate_posterior(model, method="factor")
