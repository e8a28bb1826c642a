"""pvae.to_inference_data: draws with the guide's (or the exact posterior's) moments.

The ``posterior`` group must hold the guide's draws (moments within 4 standard errors of
the guide's own), or exact-posterior draws (frequencies within 4 standard errors of the
exact marginals); sites the guide leaves to the model come from their exact conditional
given the guide's draw; ``log_likelihood`` is log p(x_i | z) of those very draws, a masked
observation contributing nothing.
"""

import math

import numpy as np
import pytest
import torch
from pyro import poutine

import pvae

from . import corpus_continuous as c
from .cases import params
from .exact_cases import BY_NAME as EXACT
from .exact_cases import brute
from .mc_cases import BY_NAME, MC_CASES

S = 2000
SLOW_EXACT = ["mixture", "hmm", "sibling_plates", "hmm_lengths"]


def _export(model, guide, *args, num_samples=S):
    return pvae.to_inference_data(model, guide, *args, num_samples=num_samples)


NO_MOMENTS = ("poisson_latent", "beta_bernoulli_autonormal")


FAST_MOMENTS = ("normal_global", "gmm_vindex")


@pytest.mark.parametrize(
    "case", params(MC_CASES, lambda c: c.name not in NO_MOMENTS, fast=FAST_MOMENTS)
)
def test_guide_draws_have_the_guide_moments(case):
    guide = case.make_guide(case.data)
    ref = case.reference(guide, case.data)
    idata = _export(case.model, guide, case.data)
    for site, (mean, sd) in ref.moments.items():
        draws = torch.as_tensor(np.asarray(idata.posterior[site].values))
        assert tuple(draws.shape) == (1, S, *mean.shape), site
        draws = draws[0].to(torch.float64)
        tol_mean = 4 * sd / math.sqrt(S) + 1e-9
        tol_sd = 4 * sd / math.sqrt(2 * S) * 1.5 + 1e-9
        assert bool(((draws.mean(0) - mean).abs() <= tol_mean).all()), (site, draws.mean(0), mean)
        assert bool(((draws.std(0) - sd).abs() <= tol_sd).all()), (site, draws.std(0), sd)


def _observed_log_lik(model, latents: dict, data):
    """Pointwise masked log p(x | z) of one draw, by conditioning the model on it."""
    trace = poutine.trace(poutine.condition(model, data=latents)).get_trace(data)
    out = {}
    for name, site in trace.nodes.items():
        if site["type"] != "sample" or name in latents or not site["is_observed"]:
            continue
        if site["infer"].get("_deterministic") or type(site["fn"]).__name__ == "_Subsample":
            continue
        lp = site["fn"].log_prob(site["value"]).detach()
        mask = site["mask"]
        keep = torch.ones_like(lp, dtype=torch.bool)
        if mask is not None:
            keep = keep & torch.as_tensor(mask, dtype=torch.bool)
        out[name] = (lp, keep)
    return out


LOG_LIK = [
    "normal_local_autonormal",
    "masked_obs_normal",
    "normal_global",
    "z_sum_model",
    "ppca_lowrank",
    "beta_bernoulli_exact",
    "control_flow",
    "poisson_latent",
]


@pytest.mark.parametrize("case", params([BY_NAME[n] for n in LOG_LIK]))
def test_log_likelihood_group_is_that_of_the_posterior_draws(case):
    guide = case.make_guide(case.data)
    idata = _export(case.model, guide, case.data, num_samples=200)
    latents = list(idata.posterior.data_vars)
    for s in range(0, 200, 20):
        draw = {n: torch.as_tensor(np.asarray(idata.posterior[n].values[0, s])) for n in latents}
        for name, (lp, keep) in _observed_log_lik(case.model, draw, case.data).items():
            got = torch.as_tensor(np.asarray(idata.log_likelihood[name].values[0, s]))
            got = got.reshape(lp.shape).to(torch.float64)
            torch.testing.assert_close(got[keep], lp[keep], atol=1e-9, rtol=1e-9, msg=name)
            masked = got[~keep]
            assert bool(((masked == 0) | masked.isnan()).all()), (name, masked)


@pytest.mark.parametrize(
    "name", ["global_local", *(pytest.param(n, marks=pytest.mark.slow) for n in SLOW_EXACT)]
)
def test_exact_posterior_draws_have_the_exact_marginals(name):
    case = EXACT[name]
    post = pvae.enumerate_posterior(case.model, *case.args, **case.kwargs)
    idata = pvae.to_inference_data(case.model, post, *case.args, num_samples=4000)
    bf = brute(case)
    for site in bf.sites:
        draws = torch.as_tensor(np.asarray(idata.posterior[site].values))[0].to(torch.float64)
        support = bf.supports[site].reshape(-1).to(torch.float64)
        hits = (draws.unsqueeze(-1) == support).to(torch.float64).mean(0)
        m = bf.marginal(site)
        tol = 4 * (m * (1 - m) / 4000).sqrt() + 1e-9
        assert bool(((hits - m).abs() <= tol).all()), (site, hits, m)


@pytest.mark.parametrize(
    "name", ["gmm_vindex", pytest.param("gmm_tutorial", marks=pytest.mark.slow)]
)
def test_model_enumerated_sites_come_from_their_exact_conditional(name):
    case = BY_NAME[name]
    guide = case.make_guide(case.data)
    idata = _export(case.model, guide, case.data)
    assert "assignment" in idata.posterior, "a model-enumerated site is missing"
    locs = torch.as_tensor(np.asarray(idata.posterior["locs"].values))[0]
    a = torch.as_tensor(np.asarray(idata.posterior["assignment"].values))[0]
    assert tuple(a.shape) == (S, len(case.data))
    p = c.gmm_conditional(locs.to(torch.float64), case.data)[..., 1]  # [S, N]
    hits = (a == 1).to(torch.float64).mean(0)
    want = p.mean(0)
    tol = 4 * ((p * (1 - p)).mean(0) / S).sqrt() + 1e-3
    assert bool(((hits - want).abs() <= tol).all()), (hits, want)
    # the prior (0.4, 0.6) would be far off for these well-separated clusters
    assert bool(((want - 0.6).abs() > 0.3).all())


def test_posterior_sites_are_the_model_latents_only():
    case = BY_NAME["normal_local_autonormal"]
    idata = _export(case.model, case.make_guide(case.data), case.data, num_samples=10)
    assert sorted(idata.posterior.data_vars) == ["z"]  # no AutoNormal auxiliary sites
    assert sorted(idata.log_likelihood.data_vars) == ["x"]
