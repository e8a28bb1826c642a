"""MixtureVAE: the component's posterior against Pyro's enumeration and quadrature by hand."""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import TraceEnum_ELBO

import pvae
from pvae.models import MixtureVAE


def binary(n, d, seed=0):
    return torch.bernoulli(torch.full((n, d), 0.4), generator=torch.Generator().manual_seed(seed))


def test_component_posterior_equals_pyro_compute_marginals_given_z():
    mix = MixtureVAE(4, 3, z_dim=2, hidden=(), seed=0)
    x = binary(5, 4)
    z = torch.randn(5, 2, generator=torch.Generator().manual_seed(1))

    def delta_guide(x):
        with pyro.plate("data", len(x)):
            pyro.sample("z", dist.Delta(z).to_event(1))

    marginals = TraceEnum_ELBO(max_plate_nesting=1).compute_marginals(mix.model, delta_guide, x)
    reference = torch.exp(marginals["c"].log_prob(torch.arange(3).reshape(3, 1))).T
    assert torch.allclose(mix.component_posterior(z), reference.double(), atol=1e-6)


def test_cluster_is_bayes_rule_with_the_same_draws_by_hand():
    mix = MixtureVAE(4, 3, z_dim=2, hidden=(6,), seed=2)
    x = binary(4, 4, seed=3)
    ours = mix.cluster(x, num_particles=8, seed=5)
    with torch.no_grad(), pvae._seed.seeded(5):
        loc, scale = mix.encoder(x)
        z = dist.Normal(loc, scale).sample((8,))  # [S, N, zd]
    with torch.no_grad():
        pi = torch.softmax(mix.component_logits, -1)
        joint = torch.zeros(4, 3, dtype=torch.float64)
        for n in range(4):
            for c in range(3):
                for s in range(8):
                    zs = z[s, n]
                    prior = dist.Normal(mix.component_locs[c], mix.component_log_scales[c].exp())
                    p = torch.sigmoid(mix.decoder(zs[None]))[0]
                    lik = (p ** x[n] * (1 - p) ** (1 - x[n])).prod()
                    q = dist.Normal(loc[n], scale[n]).log_prob(zs).sum().exp()
                    joint[n, c] += float(pi[c] * prior.log_prob(zs).sum().exp() * lik / q)
    assert torch.allclose(ours, joint / joint.sum(1, keepdim=True), atol=1e-6)


def test_cluster_converges_to_quadrature_over_z():
    """z_dim = 1: p(x | c) = integral of p(x | z) N(z; mu_c, sigma_c) dz on a fine grid."""
    mix = MixtureVAE(3, 2, z_dim=1, hidden=(), spread=1.5, seed=0)
    with torch.no_grad():  # a proposal wider than the posterior: importance sampling converges
        mix.encoder.head.scale.weight.zero_()
        mix.encoder.head.scale.bias.fill_(2.5)
    x = binary(3, 3, seed=4)
    grid = torch.linspace(-10, 10, 4001).reshape(-1, 1)
    with torch.no_grad():
        log_lik = mix.decode(grid.unsqueeze(1)).log_prob(x).double()  # [G, N]
        log_pz_c = mix._log_joint_c_given_z(grid).double()  # [G, K]
        dz = float(grid[1] - grid[0])
        log_joint = torch.logsumexp(log_lik.unsqueeze(-1) + log_pz_c.unsqueeze(1), 0)
    exact = torch.softmax(log_joint + torch.log(torch.tensor(dz)), -1)
    estimate = mix.cluster(x, num_particles=20000, seed=0)
    assert torch.allclose(estimate, exact, atol=0.01)


@pytest.mark.slow
def test_fit_enum_improves_the_elbo_and_the_gap_is_a_kl():
    mix = MixtureVAE(6, 2, z_dim=1, hidden=(8,), seed=0)
    x = torch.cat([binary(20, 6, 0) * 0, torch.ones(20, 6)])  # two clusters
    before = pvae.discrete_amortization_gap(mix, x, num_particles=20)
    res = pvae.fit(mix, x, epochs=15, batch_size=40, lr=5e-2, elbo="enum", seed=0)
    assert res.history[-1]["train_elbo"] > res.history[0]["train_elbo"]
    after = pvae.discrete_amortization_gap(mix, x, num_particles=20)
    assert before.kl >= 0 and after.kl >= 0
    q, p = after.guide, after.posterior
    assert after.kl == pytest.approx(float((q * (q / p).log()).sum(-1).mean()), abs=1e-9)


def test_save_and_load_rebuild_a_mixture(tmp_path):
    mix = MixtureVAE(4, 3, z_dim=2, hidden=(5,), seed=0)
    with torch.no_grad():
        mix.component_locs.add_(1.0)
    pvae.save(mix, tmp_path / "m.safetensors")
    again = pvae.load(tmp_path / "m.safetensors")
    z = torch.zeros(2, 2)
    assert type(again) is MixtureVAE
    assert torch.equal(again.component_posterior(z), mix.component_posterior(z))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="num_components"):
        MixtureVAE(4, 0)
    with pytest.raises(ValueError, match="`z` must have shape"):
        MixtureVAE(4, 2, z_dim=2, hidden=()).component_posterior(torch.zeros(3))
