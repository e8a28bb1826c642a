"""The continuous corpus as a list of :class:`~.cases.MCCase` records."""

from __future__ import annotations

import torch
from pyro.infer.autoguide import AutoLowRankMultivariateNormal

from . import corpus_continuous as c
from .cases import MCCase, t


def _fixed(guide):
    return lambda data: guide


def _make_lowrank(data):
    guide = AutoLowRankMultivariateNormal(c.ppca, rank=2)
    guide(data)
    mean, cov = c.ppca_posterior(data)
    factor = t([[0.2, 0.0], [0.1, 0.1], [0.0, 0.2], [0.1, -0.1], [0.05, 0.1], [0.0, 0.1]])
    with torch.no_grad():
        guide.loc.copy_((mean + 0.1).reshape(-1))
        guide.cov_factor.copy_(factor)
    guide.scale = cov.diagonal().sqrt().repeat(len(data)) * 0.8
    return guide


X3 = c.X_PPCA[:3]

MC_CASES = [
    MCCase(
        "normal_local_exact", ("conjugate Normal-Normal", "local latents", "exact encoder"),
        c.normal_local, _fixed(c.exact_local_guide), c.X_LOCAL, c.exact_local_ref, examples=5,
        exact_guide=True, fast=True,
    ),
    MCCase(
        "normal_local_autonormal", ("AutoNormal over a local plate",), c.normal_local,
        c.make_local_autonormal, c.X_LOCAL, c.autonormal_local_ref, examples=5, fast=True,
    ),
    MCCase(
        "masked_obs_normal", ("poutine.mask on observations",), c.masked_obs_normal,
        _fixed(c.masked_guide), c.X_LOCAL, c.masked_ref, examples=5, fast=True,
    ),
    MCCase(
        "items_plate", ("data plate not named 'data'", "num_particles = plate size"),
        c.normal_items, _fixed(c.exact_items_guide), c.X_TEN, c.exact_local_ref, examples=10,
        exact_guide=True, extra={"num_particles": 10},
    ),
    MCCase(
        "automvn_local", ("AutoMultivariateNormal packs every example: joint numbers",),
        c.normal_local, c.make_local_mvn, c.X_LOCAL, c.local_joint_ref, exact_guide=True,
        fast=True,
    ),
    MCCase(
        "normal_global", ("continuous global latent: joint numbers",), c.normal_global,
        _fixed(c.global_guide), c.X_GLOBAL, c.global_ref, fast=True,
    ),
    MCCase(
        "bool_mask_global", ("poutine.mask(mask=True) on a global (HMM example)",),
        c.bool_mask_global, _fixed(c.exact_global_guide), c.X_GLOBAL, c.exact_global_ref,
        exact_guide=True, fast=True,
    ),
    MCCase(
        "z_sum_model", ("z.sum(): not safe to vectorize over particles", "AutoNormal"),
        c.z_sum_model, c.make_z_sum_guide, c.X_SUM, c.z_sum_ref,
    ),
    MCCase(
        "ppca_exact", ("PPCA closed form", "MultivariateNormal guide"), c.ppca,
        _fixed(c.exact_ppca_guide), c.X_PPCA, c.exact_ppca_ref, examples=4, exact_guide=True,
    ),
    MCCase(
        "beta_vae", ("beta-VAE: poutine.scale(beta) on z in model and guide",), c.beta_vae,
        _fixed(c.beta_vae_guide), c.X_PPCA, c.exact_ppca_ref, examples=4, exact_guide=True,
        fast=True,
    ),
    MCCase(
        "ppca_autonormal", ("AutoNormal on PPCA (mean field)",), c.ppca, c.make_ppca_autonormal,
        c.X_PPCA, c.ppca_autonormal_ref, examples=4,
    ),
    MCCase(
        "ppca_lowrank", ("AutoLowRankMultivariateNormal: joint numbers",), c.ppca,
        _make_lowrank, X3, c.ppca_lowrank_ref,
    ),
    MCCase(
        "dependent_scalars", ("two dependent scalar latents",), c.dependent_scalars,
        _fixed(c.dependent_guide), t([1.3]), c.dependent_ref, nesting=0,
    ),
    MCCase(
        "beta_bernoulli_exact", ("Beta-Bernoulli closed form (SVI Part I)",), c.beta_bernoulli,
        _fixed(c.exact_beta_guide), c.COIN, c.exact_beta_ref, exact_guide=True, fast=True,
    ),
    MCCase(
        "beta_bernoulli_autonormal", ("AutoNormal on a constrained latent",), c.beta_bernoulli,
        c.make_beta_autonormal, c.COIN, c.beta_autonormal_ref,
    ),
    MCCase(
        "poisson_latent", ("Poisson latent with a Poisson guide",), c.poisson_latent,
        _fixed(c.poisson_guide), c.POIS_X, c.poisson_ref,
    ),
    MCCase(
        "control_flow", ("Python control flow on a continuous latent",), c.control_flow,
        _fixed(c.control_flow_guide), c.CF_X, c.control_flow_ref, nesting=0,
    ),
    MCCase(
        "gmm_tutorial", ("GMM tutorial: continuous globals, enumerated discrete locals",
                         "sibling plates at dim -1", "locs[assignment]"),
        c.gmm, c.make_gmm_guide(c.gmm), c.GMM_X, c.gmm_ref,
    ),
    MCCase(
        "gmm_vindex", ("GMM with Vindex: broadcasts over particles",), c.gmm_vindex,
        c.make_gmm_guide(c.gmm_vindex), c.GMM_X, c.gmm_ref, fast=True,
    ),
]  # fmt: skip

BY_NAME = {case.name: case for case in MC_CASES}
