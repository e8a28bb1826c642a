"""The discrete corpus as a list of :class:`~.cases.ExactCase` records."""

from __future__ import annotations

from . import corpus_discrete as d
from . import corpus_markov as m
from .cases import ExactCase, discrete_autoguide
from .references import BruteForce


def _fixed(guide):
    return lambda: guide


def _auto(model, args, seed, sites=None):
    return lambda: discrete_autoguide(model, args, seed, sites)


EXACT_CASES = [
    ExactCase(
        "medical_test", ("single Bernoulli latent", "published answer"), d.medical_test,
        nesting=0, guide=_fixed(d._medical_guide), guided=("disease",), fast=True,
    ),
    ExactCase(
        "coin_control_flow", ("Python control flow on a sampled value", "plate obs"),
        d.coin_control_flow, (d.FLIPS,), traceenum=False, parallel=False,
        guide=_fixed(d._coin_guide), guided=("fair",), fast=True,
    ),
    ExactCase(
        "sprinkler", ("Bayes net", "Vindex CPT"), d.sprinkler, nesting=0,
        guide=_fixed(d._sprinkler_guide), guided=("cloudy", "sprinkler", "rain"),
    ),
    ExactCase(
        "grid_coin", ("Categorical over a grid", "closed form"), d.grid_coin, (d.GRID_FLIPS,),
        guide=_fixed(d._grid_guide), guided=("k",),
    ),
    ExactCase(
        "coin_list_data", ("SVI Part I data: a list of 0-d tensors", "sequential plate"),
        d.coin_list_data, (d.LIST_FLIPS,), nesting=0, guide=_fixed(d._coin_list_guide),
        guided=("biased",),
    ),
    ExactCase(
        "with_deterministic", ("pyro.deterministic",), d.with_deterministic, (d.FLIPS,),
    ),
    ExactCase(
        "binomial_latent", ("Binomial latent (support 0..3)", "Poisson likelihood"),
        d.binomial_latent, (d.t([2.0, 4.0, 1.0]),), traceenum_marginals=False,
        guide=_fixed(d._binomial_guide), guided=("n",),
    ),
    ExactCase(
        "onehot_latent", ("OneHotCategorical latent (event dim 1)",), d.onehot_latent,
        (d.t([0.3, 1.9, 2.4]),), guide=_fixed(d._onehot_guide), guided=("z",),
    ),
    ExactCase(
        "branching_sites", ("sites that exist on one branch only", "control flow"),
        d.branching_sites, (d.t(0.8),), nesting=0, traceenum=False, parallel=False,
    ),
    ExactCase(
        "z_sum_count", ("z.sum() over a plate: unsafe for parallel enumeration",),
        d.z_sum_count, (d.Z_COUNT,), traceenum=False, parallel=False,
    ),
    ExactCase(
        "chain_site_infer", ("site-level infer={'enumerate': 'parallel'}", "Categorical chain"),
        d.chain_site_infer, (d.t(0.4),), nesting=0,
    ),
    ExactCase(
        "global_local", ("global discrete", "local discrete in plate"), d.global_local,
        (d.DATA5,), guide=_auto(d.global_local, (d.DATA5,), 40), guided=("g", "z"), fast=True,
    ),
    ExactCase(
        "mixture", ("discrete locals", "continuous likelihood", "per example"), d.mixture,
        (d.MIX_X,), guide=_fixed(d._mixture_guide), guided=("assignment",), examples=5,
    ),
    ExactCase(
        "masked_latent", ("poutine.mask on a latent only",), d.masked_latent, (d.DATA5,),
        fast=True,
    ),
    ExactCase(
        "masked_points", ("poutine.mask on latent and observation", "masked guide"),
        d.masked_points, (d.DATA5,), guide=_fixed(d._masked_points_guide), guided=("g", "z"),
    ),
    ExactCase(
        "masked_obs", ("poutine.mask on an observation",), d.masked_obs, (d.DATA5,),
        guide=_auto(d.masked_obs, (d.DATA5,), 41), guided=("g", "z"), fast=True,
    ),
    ExactCase(
        "obs_mask_bernoulli", ("obs_mask with a Bernoulli likelihood", "partial guide"),
        d.obs_mask_bernoulli, (d.OBS3,), guide=_fixed(d._obs_mask_guide), guided=("g", "z"),
        fast=True,
    ),
    ExactCase(
        "obs_mask_categorical", ("obs_mask with a Categorical likelihood", "partial guide"),
        d.obs_mask_categorical, (d.CAT_DATA,), guide=_fixed(d._obs_mask_cat_guide),
        guided=("g",),
    ),
    ExactCase(
        "python_bool_masks", ("poutine.mask(mask=True)", "poutine.mask(mask=False) on obs"),
        d.python_bool_masks, (d.FLIPS,), guide=_fixed(d._bool_mask_guide), guided=("g",),
        fast=True,
    ),
    ExactCase(
        "common_scale", ("poutine.scale around the whole model",), d.common_scale, (d.DATA5,),
        scale=2.5, guide=_auto(d.common_scale, (d.DATA5,), 42), guided=("g", "z"), fast=True,
    ),
    ExactCase(
        "scale_on_observations", ("poutine.scale on observations only",),
        d.scale_on_observations, (d.DATA5,), guide=_auto(d.scale_on_observations, (d.DATA5,), 43),
        guided=("g", "z"), mixed_scale=True,
    ),
    ExactCase(
        "beta_discrete", ("beta-VAE style poutine.scale on z in model and guide",),
        d.beta_discrete, (d.BETA_X,), guide=_fixed(d._beta_guide), guided=("z",), examples=4,
        mixed_scale=True, fast=True,
    ),
    ExactCase(
        "subsample_explicit", ("plate with explicit subsample= indices",),
        d.subsample_explicit, (d.SUB_DATA,), mixed_scale=True,
    ),
    ExactCase(
        "subsample_common", ("explicit subsample= with every site in the plate (scale N/B)",),
        d.subsample_common, (d.SUB_DATA,), scale=2.0,
    ),
    ExactCase(
        "nested_plates", ("nested plates at dims -2 and -1",), d.nested_plates, (d.NEST_X,),
        nesting=2, guide=_auto(d.nested_plates, (d.NEST_X,), 44), guided=("h", "z"),
        examples=2,
    ),
    ExactCase(
        "nested_mask_scale", ("nested plates", "broadcast tensor mask", "common scale"),
        d.nested_mask_scale, (d.NEST2_X,), nesting=2, scale=0.5,
        guide=_fixed(d._nested_mask_guide), guided=("g", "h", "z"),
    ),
    ExactCase(
        "sibling_plates", ("two plates at dim -1 with different sizes (GMM tutorial)",),
        d.sibling_plates, (d.COMP_OBS, d.SIB_X),
        guide=_auto(d.sibling_plates, (d.COMP_OBS, d.SIB_X), 45),
        guided=("regime", "on", "assignment"), fast=True,
    ),
    ExactCase(
        "two_observations", ("two observed sites per example",), d.two_observations,
        (d.TWO_B, d.TWO_N), guide=_auto(d.two_observations, (d.TWO_B, d.TWO_N), 46),
        guided=("a",), examples=4,
    ),
    ExactCase(
        "param_cpt", ("pyro.param CPTs (enumeration tutorial)",), d.param_cpt, (d.PARAM_X,),
        examples=4,
    ),
    ExactCase(
        "vindex_two_level", ("@config_enumerate", "Vindex", "Categorical likelihood"),
        d.vindex_two_level, (d.VI_DATA,), guide=_auto(d.vindex_two_level, (d.VI_DATA,), 47),
        guided=("c", "d"),
    ),
    ExactCase(
        "large_mixture", ("10 data points: TraceEnum only",), d.large_mixture, (d.BIG_X,),
        brute=False,
    ),
    ExactCase(
        "hmm", ("pyro.markov chain", "tones plate"), m.hmm, (m.SEQ,),
        guide=_fixed(m.hmm_guide), guided=("x_0", "x_1", "x_2", "x_3"), fast=True,
    ),
    ExactCase(
        "hmm_lengths", ("vectorized HMM", "poutine.mask(t < lengths)", "pyro.markov"),
        m.hmm_lengths, (m.SEQS, m.LENGTHS), nesting=2, guide=_fixed(m.hmm_lengths_guide),
        guided=("x_0", "x_1", "x_2"), examples=2,
    ),
    ExactCase(
        "hmm_regime", ("pyro.markov with a global regime", "partial guide"), m.hmm_regime,
        (m.YS,), nesting=0, guide=_fixed(m.hmm_regime_guide), guided=("regime",),
    ),
    ExactCase(
        "hmm_include_prior", ("poutine.mask(mask=include_prior)", "pyro.markov"),
        m.hmm_include_prior, (m.YS,), nesting=0, guide=_fixed(m.hmm_include_prior_guide),
        guided=("c",),
    ),
    ExactCase(
        "hmm_no_prior", ("poutine.mask(mask=False) on an enumerated latent",),
        m.hmm_include_prior, (m.YS,), {"include_prior": False}, nesting=0,
    ),
]  # fmt: skip

BY_NAME = {case.name: case for case in EXACT_CASES}
#: Cases whose guide leaves some latents to the model (TraceEnum_ELBO style).
PARTIAL = ("obs_mask_bernoulli", "obs_mask_categorical", "hmm_regime", "hmm_include_prior")

_BRUTE: dict = {}


def brute(case: ExactCase) -> BruteForce:
    """The brute-force table of a case, computed once per session (it is deterministic)."""
    if case.name not in _BRUTE:
        _BRUTE[case.name] = BruteForce(case.model, case.args, case.kwargs)
    return _BRUTE[case.name]
