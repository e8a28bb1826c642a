"""The rest of the continuous corpus: Beta-Bernoulli, a Poisson latent, control flow, GMM.

Each case gives a guide with fixed parameters and a :class:`~.montecarlo.Ref` whose log
weights are computed by the formulas here -- Beta-Bernoulli's closed form, a Poisson sum
truncated far in the tail, the GMM's likelihood with the assignment summed by hand -- so
pvae's Monte Carlo numbers can be checked within 4 standard deviations. The linear-Gaussian
models are in :mod:`.corpus_gaussian`.
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer.autoguide import AutoNormal
from pyro.ops.indexing import Vindex

from .cases import t
from .montecarlo import Ref, seeded

plate, sample = pyro.plate, pyro.sample


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
