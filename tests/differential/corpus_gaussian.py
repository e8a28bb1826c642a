"""The linear-Gaussian part of the continuous corpus: Normal-Normal, PPCA, a beta-VAE.

Each guide has fixed parameters (autoguides get theirs set, no training); each reference is
a set of :mod:`.gaussian` blocks scored exactly, and their log weights drawn by hand.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer.autoguide import AutoMultivariateNormal, AutoNormal

from . import gaussian as G
from .cases import t
from .montecarlo import Ref

plate, sample = pyro.plate, pyro.sample


def gaussian_ref(blocks, qs, moments=None) -> Ref:
    def draws(num, seed):
        cols = [G.log_weights(b, m, S, num, seed + 7919 * i) for i, (b, (m, S)) in
                enumerate(zip(blocks, qs, strict=True))]  # fmt: skip
        return torch.stack(cols, -1)

    return Ref(
        draws,
        [G.log_evidence(b) for b in blocks],
        [G.elbo(b, m, S) for b, (m, S) in zip(blocks, qs, strict=True)],
        moments,
    )


def _diag(sd) -> torch.Tensor:
    return torch.diag(torch.as_tensor(sd, dtype=torch.float64).reshape(-1) ** 2)


# --------------------------------------------------------------------- Normal-Normal, local
SIG = 0.8
X_LOCAL = t([0.7, -1.3, 2.1, 0.2, -0.4])
X_TEN = t([0.3, -0.9, 1.7, 0.0, -1.4, 0.8, 2.2, -0.2, 0.5, 1.1])
KEEP = torch.tensor([True, False, True, True, False])


def local_posterior(x):
    return x / (1 + SIG**2), torch.full_like(x, (SIG**2 / (1 + SIG**2)) ** 0.5)


def normal_local(x):
    with plate("data", len(x)):
        z = sample("z", dist.Normal(0.0, 1.0))
        sample("x", dist.Normal(z, SIG), obs=x)


def exact_local_guide(x):  # amortized: q(z | x) is the exact posterior
    loc, scale = local_posterior(x)
    with plate("data", len(x)):
        sample("z", dist.Normal(loc, scale))


def local_blocks(x, keep=None):
    keep = torch.ones(len(x), dtype=torch.bool) if keep is None else keep
    out = []
    for xn, k in zip(x, keep, strict=True):
        if k:
            out.append(G.block([[1.0]], 0.0, SIG, [xn]))
        else:
            out.append(G.block(torch.zeros(0, 1), torch.zeros(0), SIG, torch.zeros(0)))
    return out


def local_ref(x, loc, scale, keep=None) -> Ref:
    qs = [(loc[i : i + 1], _diag(scale[i])) for i in range(len(x))]
    return gaussian_ref(local_blocks(x, keep), qs, {"z": (loc, scale)})


def exact_local_ref(guide, x):
    return local_ref(x, *local_posterior(x))


def make_local_autonormal(x):
    guide = AutoNormal(normal_local)
    guide(x)
    loc, scale = local_posterior(x)
    guide.locs.z = loc + t([0.3, -0.2, 0.1, 0.25, -0.15])
    guide.scales.z = scale * t([1.3, 0.8, 1.1, 0.9, 1.2])
    return guide


def autonormal_local_ref(guide, x):
    return local_ref(x, guide.locs.z.detach(), guide.scales.z.detach())


def masked_obs_normal(x):
    with plate("data", len(x)):
        z = sample("z", dist.Normal(0.0, 1.0))
        with poutine.mask(mask=KEEP):
            sample("x", dist.Normal(z, SIG), obs=x)


def _masked_guide_params(x):
    return 0.3 * x + 0.1, torch.full_like(x, 0.7)


def masked_guide(x):
    loc, scale = _masked_guide_params(x)
    with plate("data", len(x)):
        sample("z", dist.Normal(loc, scale))


def masked_ref(guide, x):
    return local_ref(x, *_masked_guide_params(x), keep=KEEP)


def normal_items(x):
    with plate("items", len(x)):  # the examples' plate, not named "data"
        z = sample("z", dist.Normal(0.0, 1.0))
        sample("x", dist.Normal(z, SIG), obs=x)


def exact_items_guide(x):
    loc, scale = local_posterior(x)
    with plate("items", len(x)):
        sample("z", dist.Normal(loc, scale))


def make_local_mvn(x):
    guide = AutoMultivariateNormal(normal_local)
    guide(x)
    loc, scale = local_posterior(x)
    with torch.no_grad():
        guide.loc.copy_(loc)
    guide.scale = scale.clone()
    return guide


def local_joint_ref(guide, x):  # the exact posterior, as one block of the whole data set
    loc, scale = local_posterior(x)
    blk = G.block(torch.eye(len(x)), 0.0, SIG, x)
    return gaussian_ref([blk], [(loc, _diag(scale))], {"z": (loc, scale)})


# --------------------------------------------------------------------- Normal-Normal, global
TAU = 2.0
X_GLOBAL = t([1.2, 0.4, 2.0, 1.5, 0.9, 1.8])


def global_block(x):
    return G.block(torch.ones(len(x), 1), 0.0, 1.0, x, P=[[TAU**2]])


def global_posterior(x):
    mean, cov = G.posterior(global_block(x))
    return mean, cov.sqrt().reshape(1)


def normal_global(x):
    mu = sample("mu", dist.Normal(0.0, TAU))
    with plate("data", len(x)):
        sample("x", dist.Normal(mu, 1.0), obs=x)


GLOBAL_Q = (t([1.25]), t([0.52]))  # near, not at, the posterior N(1.27, 0.40^2)


def global_guide(x):
    sample("mu", dist.Normal(GLOBAL_Q[0][0], GLOBAL_Q[1][0]))


def global_ref(guide, x):
    m, s = GLOBAL_Q
    return gaussian_ref([global_block(x)], [(m, _diag(s))], {"mu": (m[0], s[0])})


def bool_mask_global(x):
    with poutine.mask(mask=True):  # Pyro's HMM example: mask=include_prior
        mu = sample("mu", dist.Normal(0.0, TAU))
    with plate("data", len(x)):
        sample("x", dist.Normal(mu, 1.0), obs=x)


def exact_global_guide(x):
    m, s = global_posterior(x)
    sample("mu", dist.Normal(m[0], s[0]))


def exact_global_ref(guide, x):
    m, s = global_posterior(x)
    return gaussian_ref([global_block(x)], [(m, _diag(s))], {"mu": (m[0], s[0])})


# --------------------------------------------------------------------- a model with z.sum()
T_OBS = t(2.5)
X_SUM = t([0.4, -0.8, 1.3, 0.1])


def z_sum_model(x):
    with plate("data", len(x)):
        z = sample("z", dist.Normal(0.0, 1.0))
        sample("x", dist.Normal(z, 1.0), obs=x)
    sample("t", dist.Normal(z.sum(), 1.0), obs=T_OBS)  # not safe to vectorize over particles


def make_z_sum_guide(x):
    guide = AutoNormal(z_sum_model)
    guide(x)
    guide.locs.z = t([0.5, -0.2, 0.9, 0.3])
    guide.scales.z = t([0.6, 0.7, 0.65, 0.6])
    return guide


def z_sum_ref(guide, x):
    n = len(x)
    blk = G.block(
        torch.cat([torch.eye(n), torch.ones(1, n)]), 0.0, 1.0, torch.cat([x, T_OBS[None]])
    )
    loc, scale = guide.locs.z.detach(), guide.scales.z.detach()
    return gaussian_ref([blk], [(loc, _diag(scale))], {"z": (loc, scale)})


# --------------------------------------------------------------------- PPCA and a beta-VAE
W = t([[1.0, 0.5], [-0.3, 0.8], [0.6, -1.1]])
MU = t([0.2, -0.1, 0.5])
SIGMA_X = 0.5
X_PPCA = t([[0.5, 0.9, -0.8], [1.4, -0.6, 1.9], [-0.7, 0.2, 0.3], [0.1, 1.0, -1.2]])


def ppca_blocks(x):
    return [G.block(W, MU, SIGMA_X, xn) for xn in x]


def ppca_posterior(x):
    posts = [G.posterior(b) for b in ppca_blocks(x)]
    return torch.stack([p[0] for p in posts]), posts[0][1]


def ppca(x):
    with plate("data", len(x)):
        z = sample("z", dist.Normal(0.0, 1.0).expand([2]).to_event(1))
        sample("x", dist.Normal(z @ W.T + MU, SIGMA_X).to_event(1), obs=x)


def exact_ppca_guide(x):
    mean, cov = ppca_posterior(x)
    with plate("data", len(x)):
        sample("z", dist.MultivariateNormal(mean, cov))


def exact_ppca_ref(guide, x):
    mean, cov = ppca_posterior(x)
    sd = torch.diagonal(cov).sqrt().expand(mean.shape)
    return gaussian_ref(ppca_blocks(x), [(m, cov) for m in mean], {"z": (mean, sd)})


BETA = 4.0


def beta_vae(x):
    with plate("data", len(x)):
        with poutine.scale(scale=BETA):  # beta-VAE: the KL term weighted by beta
            z = sample("z", dist.Normal(0.0, 1.0).expand([2]).to_event(1))
        sample("x", dist.Normal(z @ W.T + MU, SIGMA_X).to_event(1), obs=x)


def beta_vae_guide(x):  # the beta = 1 posterior, scaled as a beta-VAE's encoder is
    mean, cov = ppca_posterior(x)
    with plate("data", len(x)), poutine.scale(scale=BETA):
        sample("z", dist.MultivariateNormal(mean, cov))


def make_ppca_autonormal(x):
    guide = AutoNormal(ppca)
    guide(x)
    mean, cov = ppca_posterior(x)
    guide.locs.z = mean + 0.2
    guide.scales.z = torch.diagonal(cov).sqrt().expand(mean.shape) * 0.9
    return guide


def ppca_autonormal_ref(guide, x):
    loc, scale = guide.locs.z.detach(), guide.scales.z.detach()
    qs = [(loc[i], _diag(scale[i])) for i in range(len(x))]
    return gaussian_ref(ppca_blocks(x), qs, {"z": (loc, scale)})


def ppca_lowrank_ref(guide, x):
    fn = poutine.trace(guide).get_trace(x).nodes["_AutoLowRankMultivariateNormal_latent"]["fn"]
    n = len(x)
    blk = G.block(torch.block_diag(*[W] * n), MU.repeat(n), SIGMA_X, x.reshape(-1))
    m, S = fn.loc.detach(), fn.covariance_matrix.detach()
    sd = torch.diagonal(S).sqrt().reshape(n, 2)
    return gaussian_ref([blk], [(m, S)], {"z": (m.reshape(n, 2), sd)})


# --------------------------------------------------------------------- two dependent scalars
def dependent_scalars(x):
    z1 = sample("z1", dist.Normal(0.0, 1.0))
    z2 = sample("z2", dist.Normal(z1, 1.0))
    sample("x", dist.Normal(z2, 0.5), obs=x[0])


DEP_Q = (t([0.3, 0.6]), t([0.8, 0.7]))


def dependent_guide(x):
    sample("z1", dist.Normal(DEP_Q[0][0], DEP_Q[1][0]))
    sample("z2", dist.Normal(DEP_Q[0][1], DEP_Q[1][1]))


def dependent_ref(guide, x):
    blk = G.block([[0.0, 1.0]], 0.0, 0.5, x, P=[[1.0, 1.0], [1.0, 2.0]])
    m, s = DEP_Q
    return gaussian_ref([blk], [(m, _diag(s))], {"z1": (m[0], s[0]), "z2": (m[1], s[1])})
