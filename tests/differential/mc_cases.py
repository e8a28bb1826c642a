"""The continuous corpus as a list of :class:`~.cases.MCCase` records."""

from __future__ import annotations

import torch
from pyro.infer.autoguide import AutoLowRankMultivariateNormal

from . import corpus_continuous as c
from . import corpus_gaussian as cg
from .cases import MCCase, t


def _fixed(guide):
    return lambda data: guide


def _make_lowrank(data):
    guide = AutoLowRankMultivariateNormal(cg.ppca, rank=2)
    guide(data)
    mean, cov = cg.ppca_posterior(data)
    factor = t([[0.2, 0.0], [0.1, 0.1], [0.0, 0.2], [0.1, -0.1], [0.05, 0.1], [0.0, 0.1]])
    with torch.no_grad():
        guide.loc.copy_((mean + 0.1).reshape(-1))
        guide.cov_factor.copy_(factor)
    guide.scale = cov.diagonal().sqrt().repeat(len(data)) * 0.8
    return guide


X3 = cg.X_PPCA[:3]

MC_CASES = [
    MCCase(
        "normal_local_exact", ("conjugate Normal-Normal", "local latents", "exact encoder"),
        cg.normal_local, _fixed(cg.exact_local_guide), cg.X_LOCAL, cg.exact_local_ref, examples=5,
        exact_guide=True, fast=True,
    ),
    MCCase(
        "normal_local_autonormal", ("AutoNormal over a local plate",), cg.normal_local,
        cg.make_local_autonormal, cg.X_LOCAL, cg.autonormal_local_ref, examples=5, fast=True,
    ),
    MCCase(
        "masked_obs_normal", ("poutine.mask on observations",), cg.masked_obs_normal,
        _fixed(cg.masked_guide), cg.X_LOCAL, cg.masked_ref, examples=5, fast=True,
    ),
    MCCase(
        "items_plate", ("data plate not named 'data'", "num_particles = plate size"),
        cg.normal_items, _fixed(cg.exact_items_guide), cg.X_TEN, cg.exact_local_ref, examples=10,
        exact_guide=True, extra={"num_particles": 10},
    ),
    MCCase(
        "automvn_local", ("AutoMultivariateNormal packs every example: joint numbers",),
        cg.normal_local, cg.make_local_mvn, cg.X_LOCAL, cg.local_joint_ref, exact_guide=True,
        fast=True,
    ),
    MCCase(
        "normal_global", ("continuous global latent: joint numbers",), cg.normal_global,
        _fixed(cg.global_guide), cg.X_GLOBAL, cg.global_ref, fast=True,
    ),
    MCCase(
        "bool_mask_global", ("poutine.mask(mask=True) on a global (HMM example)",),
        cg.bool_mask_global, _fixed(cg.exact_global_guide), cg.X_GLOBAL, cg.exact_global_ref,
        exact_guide=True, fast=True,
    ),
    MCCase(
        "z_sum_model", ("z.sum(): not safe to vectorize over particles", "AutoNormal"),
        cg.z_sum_model, cg.make_z_sum_guide, cg.X_SUM, cg.z_sum_ref,
    ),
    MCCase(
        "ppca_exact", ("PPCA closed form", "MultivariateNormal guide"), cg.ppca,
        _fixed(cg.exact_ppca_guide), cg.X_PPCA, cg.exact_ppca_ref, examples=4, exact_guide=True,
    ),
    MCCase(
        "beta_vae", ("beta-VAE: poutine.scale(beta) on z in model and guide",), cg.beta_vae,
        _fixed(cg.beta_vae_guide), cg.X_PPCA, cg.exact_ppca_ref, examples=4, exact_guide=True,
        fast=True,
    ),
    MCCase(
        "ppca_autonormal", ("AutoNormal on PPCA (mean field)",), cg.ppca, cg.make_ppca_autonormal,
        cg.X_PPCA, cg.ppca_autonormal_ref, examples=4,
    ),
    MCCase(
        "ppca_lowrank", ("AutoLowRankMultivariateNormal: joint numbers",), cg.ppca,
        _make_lowrank, X3, cg.ppca_lowrank_ref,
    ),
    MCCase(
        "dependent_scalars", ("two dependent scalar latents",), cg.dependent_scalars,
        _fixed(cg.dependent_guide), t([1.3]), cg.dependent_ref, nesting=0,
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
