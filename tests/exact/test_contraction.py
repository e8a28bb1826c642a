"""The factor engine's four arithmetics give Pyro's answer; underflow goes to log space."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import TraceEnum_ELBO, config_enumerate

from pvae.exact import contraction, enumerate_posterior, factored

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


FORCED = {  # arithmetic -> (JOINT_MAX, EINSUM_MAX_LATENTS, PROBABILITY_SPACE_FROM)
    "joint": (2**20, 0, 2**60),
    "einsum": (0, 60, 2**60),
    "probability": (0, 0, 0),
    "log": (0, 0, 2**60),
}


@pytest.mark.parametrize("arithmetic", list(FORCED))
@pytest.mark.parametrize("seed", [0, 1])
def test_each_arithmetic_gives_pyros_evidence_and_marginals(monkeypatch, arithmetic, seed):
    joint, einsum, prob = FORCED[arithmetic]
    monkeypatch.setattr(contraction, "JOINT_MAX", joint)
    monkeypatch.setattr(factored, "EINSUM_MAX_LATENTS", einsum)
    monkeypatch.setattr(factored, "PROBABILITY_SPACE_FROM", prob)
    model, latent = network(seed)
    post = enumerate_posterior(model)
    assert post.method == "factor" and post._factored.arithmetic == arithmetic
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


@pytest.mark.parametrize("arithmetic", ["joint", "einsum"])
def test_evidence_of_1e_minus_300_is_exact_or_sent_to_log_space(monkeypatch, arithmetic):
    """y is one of three labels and each observation favours another by 1e150: p(x) =
    1e-300. The whole joint is summed in log space and is exact; one einsum in probability
    space would be under EINSUM_TINY, so that pass is redone in log space."""
    joint, einsum, prob = FORCED[arithmetic]
    monkeypatch.setattr(contraction, "JOINT_MAX", joint)
    monkeypatch.setattr(factored, "EINSUM_MAX_LATENTS", einsum)
    like = torch.full((3, 3), 1e-150, dtype=F64).fill_diagonal_(1.0)

    def model():
        y = pyro.sample("y", dist.Categorical(torch.full((3,), 1 / 3, dtype=F64)))
        for j in range(3):
            pyro.sample(f"x{j}", dist.Bernoulli(like[j][y]), obs=torch.tensor(1.0, dtype=F64))

    post = enumerate_posterior(model)
    assert post._factored.arithmetic == ("joint" if arithmetic == "joint" else "log")
    assert post.log_evidence == pytest.approx(-300 * math.log(10), rel=1e-12)
    third = torch.full((3,), 1 / 3, dtype=F64)
    torch.testing.assert_close(post.marginal("y"), third, atol=1e-12, rtol=0)


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
