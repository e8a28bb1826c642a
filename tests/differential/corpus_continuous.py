"""The continuous corpus: models with continuous latents, their guides and closed forms.

Each case gives a guide with fixed parameters (no training: autoguides get their
parameters set) and a :class:`~.montecarlo.Ref`, whose log weights are computed by the
formulas here -- conjugate Normal-Normal, Beta-Bernoulli, PPCA, a Poisson sum truncated far
in the tail -- so pvae's Monte Carlo numbers can be checked within 4 standard deviations.
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer.autoguide import AutoMultivariateNormal, AutoNormal
from pyro.ops.indexing import Vindex

from . import gaussian as G
from .cases import t
from .montecarlo import Ref, seeded

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


# --------------------------------------------------------------------- Beta-Bernoulli (SVI I)
COIN = t([1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0])


def beta_bernoulli(data):
    f = sample("latent_fairness", dist.Beta(10.0, 10.0))
    with plate("data", len(data)):
        sample("obs", dist.Bernoulli(f), obs=data)


def _beta_post(data):
    heads = float(data.sum())
    return 10.0 + heads, 10.0 + len(data) - heads


def exact_beta_guide(data):
    a, b = _beta_post(data)
    sample("latent_fairness", dist.Beta(t(a), t(b)))


def _log_joint_coin(f, data):
    heads, tails = float(data.sum()), len(data) - float(data.sum())
    prior = torch.distributions.Beta(t(10.0), t(10.0)).log_prob(f)
    return prior + heads * torch.log(f) + tails * torch.log1p(-f)


def exact_beta_ref(guide, data):
    a, b = _beta_post(data)
    q = torch.distributions.Beta(t(a), t(b))

    def draws(num, seed):
        with seeded(seed):
            f = q.sample((num,))
        return (_log_joint_coin(f, data) - q.log_prob(f))[:, None]

    log_z = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    log_z -= 2 * math.lgamma(10.0) - math.lgamma(20.0)
    mean, var = a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))
    return Ref(draws, [log_z], [log_z], {"latent_fairness": (t(mean), t(var**0.5))})


def make_beta_autonormal(data):
    guide = AutoNormal(beta_bernoulli)
    guide(data)
    guide.locs.latent_fairness = t(0.35)
    guide.scales.latent_fairness = t(0.42)
    return guide


def beta_autonormal_ref(guide, data):
    loc = float(guide.locs.latent_fairness.detach())
    scale = float(guide.scales.latent_fairness.detach())
    exact = exact_beta_ref(None, data)

    def draws(num, seed):
        gen = torch.Generator().manual_seed(seed)
        u = loc + scale * torch.randn(num, generator=gen, dtype=torch.float64)
        f = torch.sigmoid(u)
        log_q = torch.distributions.Normal(loc, scale).log_prob(u) - torch.log(f * (1 - f))
        return (_log_joint_coin(f, data) - log_q)[:, None]

    return Ref(draws, exact.log_evidence, None)


# --------------------------------------------------------------------- Poisson latent
POIS_X = t([3.0, 5.0, 4.0])
POIS_Q = 4.2


def poisson_latent(x):
    z = sample("z", dist.Poisson(t(3.0)))
    with plate("data", len(x)):
        sample("x", dist.Poisson(z + 0.5), obs=x)


def poisson_guide(x):
    sample("z", dist.Poisson(t(POIS_Q)))


def _pois_joint(z, x):
    prior = torch.distributions.Poisson(t(3.0)).log_prob(z)
    lik = torch.distributions.Poisson((z + 0.5).unsqueeze(-1)).log_prob(x).sum(-1)
    return prior + lik


def poisson_ref(guide, x):
    zs = torch.arange(0, 200, dtype=torch.float64)  # the tail beyond 200 is < 1e-100
    log_joint = _pois_joint(zs, x)
    log_q = torch.distributions.Poisson(t(POIS_Q)).log_prob(zs)
    elbo = float((log_q.exp() * (log_joint - log_q)).sum())

    def draws(num, seed):
        with seeded(seed):
            z = torch.distributions.Poisson(t(POIS_Q)).sample((num,))
        q = torch.distributions.Poisson(t(POIS_Q)).log_prob(z)
        return (_pois_joint(z, x) - q)[:, None]

    return Ref(draws, [float(torch.logsumexp(log_joint, 0))], [elbo])


# --------------------------------------------------------------------- control flow
CF_X = t([0.9])


def control_flow(x):
    z = sample("z", dist.Normal(0.0, 1.0))
    if z > 0:  # Python control flow on a continuous sampled value
        sample("x", dist.Normal(1.5, 1.0), obs=x[0])
    else:
        sample("x", dist.Normal(-1.0, 0.5), obs=x[0])


CF_Q = (0.4, 0.9)


def control_flow_guide(x):
    sample("z", dist.Normal(t(CF_Q[0]), t(CF_Q[1])))


def control_flow_ref(guide, x):
    m, s = CF_Q
    hi = float(torch.distributions.Normal(1.5, 1.0).log_prob(x[0]))
    lo = float(torch.distributions.Normal(-1.0, 0.5).log_prob(x[0]))
    p_pos = 0.5 * (1 + math.erf(m / (s * math.sqrt(2))))
    elbo = -0.5 * math.log(2 * math.pi) - (m**2 + s**2) / 2
    elbo += p_pos * hi + (1 - p_pos) * lo + 0.5 * math.log(2 * math.pi * math.e * s**2)
    log_z = math.log(0.5 * math.exp(hi) + 0.5 * math.exp(lo))

    def draws(num, seed):
        gen = torch.Generator().manual_seed(seed)
        z = m + s * torch.randn(num, generator=gen, dtype=torch.float64)
        log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z) + torch.where(z > 0, hi, lo)
        return (log_p - torch.distributions.Normal(m, s).log_prob(z))[:, None]

    return Ref(draws, [log_z], [elbo], {"z": (t(m), t(s))})


# --------------------------------------------------------------------- GMM tutorial
GMM_X = t([-2.1, -1.7, -2.4, 1.9, 2.3, 2.0, 1.6])
GMM_W, GMM_SCALE = t([0.4, 0.6]), 0.5


def gmm(data):  # Pyro's GMM tutorial, weights and scale fixed
    with plate("components", 2):
        locs = sample("locs", dist.Normal(0.0, 10.0))
    with plate("data", len(data)):
        assignment = sample("assignment", dist.Categorical(GMM_W), infer={"enumerate": "parallel"})
        sample("obs", dist.Normal(locs[assignment], GMM_SCALE), obs=data)


def gmm_vindex(data):  # the same model, written to broadcast over particles
    with plate("components", 2):
        locs = sample("locs", dist.Normal(0.0, 10.0))
    with plate("data", len(data)):
        assignment = sample("assignment", dist.Categorical(GMM_W), infer={"enumerate": "parallel"})
        loc = Vindex(locs.unsqueeze(-2))[..., assignment]
        sample("obs", dist.Normal(loc, GMM_SCALE), obs=data)


GMM_Q = (t([-2.0, 1.9]), t([0.3, 0.25]))


def make_gmm_guide(model):
    def make(data):
        guide = AutoNormal(poutine.block(model, expose=["locs"]))
        guide(data)
        guide.locs.locs, guide.scales.locs = GMM_Q
        return guide

    return make


def gmm_conditional(locs, data):
    """p(assignment_n = k | locs, x_n), ``[..., N, 2]``."""
    logits = torch.log(GMM_W) + torch.distributions.Normal(locs.unsqueeze(-2), GMM_SCALE).log_prob(
        data.unsqueeze(-1)
    )
    return torch.softmax(logits, -1)


def gmm_ref(guide, data):
    loc, scale = (p.detach() for p in (guide.locs.locs, guide.scales.locs))

    def draws(num, seed):
        gen = torch.Generator().manual_seed(seed)
        locs = loc + scale * torch.randn((num, 2), generator=gen, dtype=torch.float64)
        comp = torch.distributions.Normal(locs.unsqueeze(-2), GMM_SCALE).log_prob(data[:, None])
        lik = torch.logsumexp(torch.log(GMM_W) + comp, -1).sum(-1)
        prior = torch.distributions.Normal(0.0, 10.0).log_prob(locs).sum(-1)
        log_q = torch.distributions.Normal(loc, scale).log_prob(locs).sum(-1)
        return (lik + prior - log_q)[:, None]

    return Ref(draws, None, None, {"locs": (loc, scale)})
