"""The factor engine's three arithmetics give Pyro's answer; underflow goes to log space."""

import math
from collections import OrderedDict

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import TraceEnum_ELBO, config_enumerate

from pvae.exact import contraction, enumerate_posterior, factored, sweeps

F64 = torch.float64


def network(seed: int, n: int = 10):
    """A random plate-free network: site i has up to two earlier parents, 2 or 3 states;
    the last two sites are observed at 0 and one CPT row has an exact zero."""
    g = torch.Generator().manual_seed(seed)
    card = [2 + int(torch.randint(2, (), generator=g)) for _ in range(n)]
    parents = [sorted(torch.randperm(i, generator=g)[: min(i, 2)].tolist()) for i in range(n)]
    cpts = []
    for i in range(n):
        t = torch.rand([card[p] for p in parents[i]] + [card[i]], generator=g, dtype=F64)
        cpts.append(t / t.sum(-1, keepdim=True))
    cpts[3][..., 0] = 0.0
    cpts[3] /= cpts[3].sum(-1, keepdim=True)

    def model():
        v = []
        for i in range(n):
            probs = cpts[i][tuple(v[p] for p in parents[i])] if parents[i] else cpts[i]
            obs = torch.tensor(0) if i >= n - 2 else None
            v.append(pyro.sample(f"v{i}", dist.Categorical(probs), obs=obs))

    return model, n - 2


def pyro_answer(model):
    """log p(x) and the marginals by Pyro's TraceEnum_ELBO (a guide that samples nothing)."""
    elbo = TraceEnum_ELBO(max_plate_nesting=0)
    enum = config_enumerate(model)
    log_z = -elbo.loss(enum, lambda: None)
    return log_z, elbo.compute_marginals(enum, lambda: None)


FORCED = {  # arithmetic -> (JOINT_MAX, PROBABILITY_SPACE, EINSUM_PATH_MAX_LATENTS, BLAS_FROM)
    "joint": (2**20, True, 250, 2**13),
    "probability": (0, True, 250, 2**13),  # sweeps along opt_einsum's path
    "probability by the order": (0, True, 0, 2**13),  # sweeps along the min-fill order
    "probability by BLAS": (0, True, 250, 0),  # every two-table product a matmul
    "probability by the order by BLAS": (0, True, 0, 0),
    "log": (0, False, 250, 2**13),
}


def force(monkeypatch, arithmetic: str) -> str:
    joint, prob, path, blas = FORCED[arithmetic]
    monkeypatch.setattr(contraction, "JOINT_MAX", joint)
    monkeypatch.setattr(factored, "PROBABILITY_SPACE", prob)
    monkeypatch.setattr(factored, "EINSUM_PATH_MAX_LATENTS", path)
    monkeypatch.setattr(sweeps, "BLAS_FROM", blas)
    monkeypatch.setattr(sweeps, "_PROGRAMS", OrderedDict())  # compiled under this BLAS_FROM
    return arithmetic.split()[0]  # the name the result records


@pytest.mark.parametrize("arithmetic", list(FORCED))
@pytest.mark.parametrize("seed", [0, 1])
def test_each_arithmetic_gives_pyros_evidence_and_marginals(monkeypatch, arithmetic, seed):
    recorded = force(monkeypatch, arithmetic)
    model, latent = network(seed)
    post = enumerate_posterior(model)
    assert post.method == "factor" and post._factored.arithmetic == recorded
    log_z, margs = pyro_answer(model)
    assert post.log_evidence == pytest.approx(log_z, abs=1e-12)
    for i in range(latent):
        torch.testing.assert_close(
            post.marginal(f"v{i}"), margs[f"v{i}"].probs.to(F64), atol=1e-12, rtol=0
        )
    assert float(post.marginal("v3")[0]) == 0.0  # an exact zero stays exactly zero
    # a conditional query runs the same arithmetic with an indicator table added
    cond = post.marginal("v0", given={"v1": 1})
    assert float(cond.sum()) == pytest.approx(1.0, abs=1e-12)
    ratio = [post.prob(v0=k, v1=1) / post.prob(v1=1) for k in range(len(cond))]
    torch.testing.assert_close(cond, torch.tensor(ratio, dtype=F64), atol=1e-12, rtol=0)


@pytest.mark.parametrize("arithmetic", ["joint", "probability"])
def test_evidence_of_1e_minus_300_is_exact_or_sent_to_log_space(monkeypatch, arithmetic):
    """y is one of two labels and each of two observations rules out the other to 1e-300:
    p(x) = 1/2 (1 * 1e-300) + 1/2 (1e-300 * 1) = 1e-300. The whole joint is summed in log
    space and is exact; in probability space, eliminating y multiplies two tables whose
    maxima do not line up, a product of 1e-300 at both values, under ``sweeps.TINY``, so
    that pass is redone in log space."""
    force(monkeypatch, arithmetic)
    like = torch.tensor([[1.0, 1e-300], [1e-300, 1.0]], dtype=F64)  # p(x_j = 1 | y)

    def model():
        y = pyro.sample("y", dist.Categorical(torch.full((2,), 0.5, dtype=F64)))
        for j in range(2):
            pyro.sample(f"x{j}", dist.Bernoulli(like[j][y]), obs=torch.tensor(1.0, dtype=F64))

    post = enumerate_posterior(model)
    assert post._factored.arithmetic == ("joint" if arithmetic == "joint" else "log")
    assert post.log_evidence == pytest.approx(-300 * math.log(10), rel=1e-12)
    half = torch.full((2,), 0.5, dtype=F64)
    torch.testing.assert_close(post.marginal("y"), half, atol=1e-12, rtol=0)


@pytest.mark.parametrize("arithmetic", ["probability", "probability by the order", "log"])
def test_a_site_with_forty_observed_children_gives_the_closed_form(monkeypatch, arithmetic):
    """Naive Bayes: y in {0, 1, 2} and 40 observed children, each 1 with probability
    ``q[y]``: p(y | x) is proportional to p(y) q[y]^k (1 - q[y])^(40 - k) with k ones. One
    step multiplies 41 tables (two at a time, each product rescaled)."""
    force(monkeypatch, arithmetic)
    prior = torch.tensor([0.5, 0.3, 0.2], dtype=F64)
    q = torch.tensor([0.1, 0.5, 0.9], dtype=F64)
    xs = [float(j % 3 == 0) for j in range(40)]

    def model():
        y = pyro.sample("y", dist.Categorical(prior))
        z = pyro.sample("z", dist.Categorical(prior))  # two latents: no 1-site shortcut
        for j, x in enumerate(xs):
            p = q[y] if j % 2 else q[z]
            pyro.sample(f"x{j}", dist.Bernoulli(p), obs=torch.tensor(x, dtype=F64))

    post = enumerate_posterior(model)
    assert post._factored.arithmetic == arithmetic.split()[0]
    for name, parity in (("y", 1), ("z", 0)):
        k = sum(x for j, x in enumerate(xs) if j % 2 == parity)
        log_w = prior.log() + k * q.log() + (20 - k) * (1 - q).log()
        torch.testing.assert_close(post.marginal(name), log_w.softmax(0), atol=1e-12, rtol=0)
    log_p = [
        torch.logsumexp(prior.log() + k * q.log() + (20 - k) * (1 - q).log(), 0)
        for k in (sum(xs[1::2]), sum(xs[0::2]))
    ]
    assert post.log_evidence == pytest.approx(float(sum(log_p)), abs=1e-10)


def test_a_factor_entry_lost_in_probability_space_sends_the_pass_to_log_space(monkeypatch):
    """z_1 copies itself down a chain of five Bernoulli sites; x_1 makes z_1 = 1 cost 800
    nats (below e^-745 an entry of its factor is 0 once exponentiated) and each later x_k
    makes z_k = 0 cost 1 nat. Only the paths all-0 and all-1 have prior mass: p(x) is
    their sum, by hand; the pass runs in log space."""
    force(monkeypatch, "probability")
    c1, c, n = 800.0, 1.0, 5

    def model():
        z = pyro.sample("z1", dist.Bernoulli(torch.tensor(0.5, dtype=F64)))
        zero = torch.tensor(0.0, dtype=F64)
        pyro.sample("x1", dist.Normal(z * math.sqrt(2 * c1), 1.0), obs=zero)
        for k in range(2, n + 1):
            z = pyro.sample(f"z{k}", dist.Bernoulli(z))
            pyro.sample(f"x{k}", dist.Normal((1 - z) * math.sqrt(2 * c), 1.0), obs=zero)

    post = enumerate_posterior(model)
    assert post._factored.arithmetic == "log"
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    all_0 = math.log(0.5) - (n - 1) * c - n * half_log_2pi
    all_1 = math.log(0.5) - c1 - n * half_log_2pi
    log_z = max(all_0, all_1) + math.log1p(math.exp(-abs(all_0 - all_1)))
    assert post.log_evidence == pytest.approx(log_z, abs=1e-10)
    p1 = math.exp(all_1 - log_z)
    for k in range(1, n + 1):
        expected = torch.tensor([1 - p1, p1], dtype=F64)
        torch.testing.assert_close(post.marginal(f"z{k}"), expected, atol=1e-12, rtol=0)


def test_joint_marginals_of_impossible_evidence_are_empty():
    zero = torch.tensor([-math.inf, -math.inf], dtype=F64)
    log_z, margs = contraction.joint_marginals([(("z",), zero)], ["z"], {"z": 2})
    assert log_z == -math.inf and margs == {}
    assert contraction.log_partition_einsum([(("z",), zero)]) is None


def test_an_einsum_path_larger_than_the_limit_is_refused():
    """A 4-cycle of binary sites: contracting any two of its tables leaves a table over
    two sites (4 entries), so a limit of 1 entry refuses every path."""
    cycle = [(pair, torch.zeros(2, 2, dtype=F64)) for pair in ("ab", "bc", "cd", "da")]
    assert contraction.log_partition_einsum(cycle, max_entries=1) is None
    log_z = contraction.log_partition_einsum(cycle, max_entries=2**10)
    assert float(log_z) == pytest.approx(math.log(16.0), abs=1e-12)  # 2**4 states, each 1


@pytest.mark.parametrize("seed", range(6))
def test_a_two_table_product_by_blas_equals_einsum(seed):
    """The batched matrix product a large sweep step runs (:func:`sweeps._pair`) against
    ``numpy.einsum`` itself, on random equations with batch, left, right, summed axes and
    axes only one table has."""
    rng = np.random.default_rng(seed)
    letters = list("abcdefgh")
    rng.shuffle(letters)
    x = "".join(sorted(letters[:5], key=lambda _: rng.random()))
    y = "".join(sorted(letters[2:8], key=lambda _: rng.random()))
    kept = [a for a in letters if rng.random() < 0.5 and (a in x or a in y)]
    out = "".join(kept)
    size = {a: int(rng.integers(1, 4)) for a in letters}
    equation = f"{x},{y}->{out}"
    tx = rng.random([size[a] for a in x])
    ty = rng.random([size[a] for a in y])
    pair = sweeps._pair(equation, size)
    got = sweeps._product(equation, pair, [tx, ty])
    np.testing.assert_allclose(got, np.einsum(equation, tx, ty), rtol=1e-13, atol=0)
