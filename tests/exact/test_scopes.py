"""Scopes read off few runs (shared dimensions, chunks) and the table runs' colouring.

References: the parents each random network was built with, brute-force sums over every
joint assignment, and a textbook forward-backward recursion.
"""

import pyro
import pyro.distributions as dist
import pytest
import torch

from pvae.exact import enumerate_posterior, factors, scopes
from pvae.exact.sites import latent_sites, plain_trace

F64 = torch.float64


def random_network(n, cards, max_parents, seed):
    """A random DAG over ``n`` sites (each with up to ``max_parents`` earlier parents),
    random CPTs; the last two sites observed at 0. Returns (model, parents, cpts)."""
    g = torch.Generator().manual_seed(seed)
    card = [cards[int(torch.randint(len(cards), (), generator=g))] for _ in range(n)]
    parents, cpts = [], []
    for i in range(n):
        k = int(torch.randint(min(i, max_parents) + 1, (), generator=g)) if i else 0
        ps = sorted(torch.randperm(i, generator=g)[:k].tolist()) if k else []
        shape = [card[p] for p in ps] + [card[i]]
        table = torch.rand(shape, generator=g, dtype=F64) + 0.05
        parents.append(ps)
        cpts.append(table / table.sum(-1, keepdim=True))

    def model():
        values = []
        for i in range(n):
            probs = cpts[i][tuple(values[p] for p in parents[i])] if parents[i] else cpts[i]
            obs = torch.tensor(0) if i >= n - 2 else None
            values.append(pyro.sample(f"v{i}", dist.Categorical(probs), obs=obs))

    return model, parents, cpts, card


def brute_force(n, parents, cpts, card):
    """log p(x) and every latent's marginal: the joint table over all latents, one axis per
    latent, built by broadcasting each CPT (the last two sites observed at 0)."""
    latent = n - 2
    log_joint = torch.zeros([card[i] for i in range(latent)], dtype=F64)
    for i in range(n):
        table = cpts[i].log()
        if i >= latent:
            table = table[..., 0]  # observed at 0
        axes = parents[i] + ([i] if i < latent else [])
        order = sorted(range(len(axes)), key=axes.__getitem__)  # axes in increasing order
        table = table.permute(order) if order else table
        shape = [1] * latent
        for a in sorted(axes):
            shape[a] = card[a]
        log_joint = log_joint + table.reshape(shape)
    log_z = float(log_joint.logsumexp(tuple(range(latent))))
    post = (log_joint - log_z).exp()
    margs = {
        f"v{i}": post.sum([d for d in range(latent) if d != i]).tolist() for i in range(latent)
    }
    return log_z, margs


def recover_scopes(model):
    plain = plain_trace(model, (), {}, F64)
    latents = latent_sites(plain)
    supports = {s: plain.nodes[s]["fn"].enumerate_support(expand=False) for s in latents}
    fixed = {s: supports[s][0] for s in latents}
    cards = {s: len(v) for s, v in supports.items()}

    def run(dims):
        return factors._run(model, (), {}, dims, supports, fixed, F64)

    return scopes.by_groups(run, latents, cards)


def test_shared_dimensions_find_every_parent_of_a_400_site_network():
    model, parents, _, card = random_network(400, [2, 3, 4], 3, seed=0)
    found, uncertified, runs = recover_scopes(model)
    assert 1 < len(runs) <= scopes.MAX_GROUP_RUNS  # (2 here: one grouping does not do)
    cards = {f"v{i}": c for i, c in enumerate(card[:398])}
    assert not uncertified or scopes._settled_by_one_table_run(found, uncertified, cards)
    for i in range(400):
        name, own = f"v{i}", ({f"v{i}"} if i < 398 else set())
        truth = {f"v{p}" for p in parents[i]} | own
        assert truth <= found[name], i  # a true parent is never missed
        assert name in uncertified or found[name] == truth, i  # certified: exactly them


def test_one_grouping_leaves_candidates_that_include_every_parent(monkeypatch):
    monkeypatch.setattr(scopes, "MAX_GROUP_RUNS", 1)
    model, parents, _, _ = random_network(400, [2, 3], 3, seed=1)
    found, uncertified, runs = recover_scopes(model)
    assert len(runs) == 1 and uncertified  # one run cannot separate 400 sites in 56 groups
    extra = 0
    for i in range(400):
        truth = {f"v{p}" for p in parents[i]}
        assert truth <= found[f"v{i}"], i
        extra += len(found[f"v{i}"] - truth - {f"v{i}"})
    assert extra > 0


@pytest.mark.parametrize(
    ("budget", "group_runs", "cards", "seed", "path"),
    [
        (5, 1, [2], 3, "pruned"),  # candidates left over, settled in the table runs
        (4, 2, [2], 4, "pruned"),
        (3, 1, [2], 3, "chunks"),  # candidates too many for a table run: chunks settle them
        (4, 8, [2], 3, "certified"),
        (3, 8, [2, 3], 3, "chunks"),  # two cardinalities cannot share 3 dimensions
    ],
)
def test_a_tiny_dimension_budget_gives_the_brute_force_answer(
    monkeypatch, budget, group_runs, cards, seed, path
):
    """Few dimensions force shared-dimension scope runs (with candidates left over or
    not), table runs split by the colouring, and the fall-back to chunks; the answer is
    the brute-force one and every factor's scope is the site's family."""
    monkeypatch.setattr(scopes, "MAX_DIMS", budget)
    monkeypatch.setattr(factors, "MAX_DIMS", budget)
    monkeypatch.setattr(scopes, "MAX_GROUP_RUNS", group_runs)
    seen = []
    by_groups = scopes.by_groups
    monkeypatch.setattr(scopes, "by_groups", lambda *a: seen.append(by_groups(*a)) or seen[-1])
    chunked = []
    by_chunks = scopes.by_chunks
    monkeypatch.setattr(scopes, "by_chunks", lambda *a: chunked.append(1) or by_chunks(*a))
    n = 13
    model, parents, cpts, card = random_network(n, cards, 2, seed=seed)
    post = enumerate_posterior(model, method="factor")
    log_z, margs = brute_force(n, parents, cpts, card)
    assert post.log_evidence == pytest.approx(log_z, abs=1e-12)
    for name, m in margs.items():
        torch.testing.assert_close(
            post.marginal(name), torch.tensor(m, dtype=F64), atol=1e-12, rtol=0
        )
    for f in post._factored.factors.factors:
        i = int(f.site[1:])
        own = {f.site} if i < n - 2 else set()
        assert set(f.scope) == {f"v{p}" for p in parents[i] if p < n - 2} | own
    took = "chunks" if chunked else ("pruned" if seen[0] and seen[0][1] else "certified")
    assert took == path


def test_colouring_splits_the_tables_over_runs_when_the_dimensions_run_out(monkeypatch):
    monkeypatch.setattr(scopes, "MAX_DIMS", 3)
    sc = {f"x{i}": (f"a{i}", f"b{i}", f"c{i}") for i in range(4)}  # 4 disjoint triangles
    sc["y"] = ("a0", "a1", "a2")  # forces a0, a1, a2 apart
    cards = {s: 2 for scope in sc.values() for s in scope}
    out = scopes.colour(list(sc), sc, cards)
    assert sorted(t for _, ts in out for t in ts) == sorted(sc)
    for dims, targets in out:
        assert len(set(dims.values())) <= 3
        for t in targets:
            assert len({dims[s] for s in sc[t]}) == len(sc[t])
    with pytest.raises(ValueError, match="more than the 3 one run"):
        scopes.colour(["z"], {"z": ("a0", "a1", "a2", "a3")}, {f"a{i}": 2 for i in range(4)})


@pytest.mark.parametrize("seed", [0, 1])
def test_the_probability_space_pass_gives_the_brute_force_answer(monkeypatch, seed):
    from pvae.exact import contraction

    monkeypatch.setattr(contraction, "JOINT_MAX", 0)
    n = 13
    model, parents, cpts, card = random_network(n, [2, 3], 2, seed=seed)
    cpts[4][..., 0] = 0.0  # exact zeros: exp(-inf) = 0 in probability space
    cpts[4] /= cpts[4].sum(-1, keepdim=True)
    post = enumerate_posterior(model, method="factor")
    assert post._factored.arithmetic == "probability"
    log_z, margs = brute_force(n, parents, cpts, card)
    assert post.log_evidence == pytest.approx(log_z, abs=1e-12)
    assert float(post.marginal("v4")[0]) == 0.0
    for name, m in margs.items():
        torch.testing.assert_close(
            post.marginal(name), torch.tensor(m, dtype=F64), atol=1e-12, rtol=0
        )
