"""pvae.enumerate_posterior against TraceEnum_ELBO, compute_marginals and brute force.

As documented (docs/guide/conventions.md), ``log_evidence`` is ``-TraceEnum_ELBO.loss`` with
an empty guide: masks inside the sum over latents, an enumerated site's own factor unmasked,
one common scale s outside the sum (s log p(x)); ``unscaled_log_evidence`` is the model's
log p(x); sites of one sum with different scales are refused, as TraceEnum_ELBO refuses
them. Exact: 1e-9 in float64.
"""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import config_enumerate, infer_discrete

import pvae

from .cases import params, t
from .exact_cases import BY_NAME, EXACT_CASES, brute
from .references import traceenum_log_evidence, traceenum_marginals

ATOL = 1e-9
#: Samples must follow the marginals' convention: a masked latent keeps its own factor.
SLOW_SAMPLED = ["mixture", "hmm", "masked_points", "hmm_lengths", "obs_mask_bernoulli"]
REGULAR = [c for c in EXACT_CASES if not c.mixed_scale]
MIXED = [c for c in EXACT_CASES if c.mixed_scale]
#: The fast tier's cases for the costlier per-case tests.
FEW = ("global_local", "masked_latent", "sibling_plates", "hmm")


def posterior(case, method="auto"):
    return pvae.enumerate_posterior(case.model, *case.args, method=method, **case.kwargs)


def _methods(case):
    return ["auto", "sequential"] + (["parallel"] if case.parallel else [])


def _with_methods(cases):
    """Every engine; the fast tier runs the sequential one (parallel: TraceEnum tests)."""
    out = []
    for p in params(cases, fast=FEW + ("coin_control_flow", "obs_mask_bernoulli", "common_scale")):
        for method in _methods(p.values[0]):
            # "auto" repeats another engine; "parallel" is also checked against TraceEnum
            marks = (pytest.mark.slow,) if method != "sequential" else p.marks
            out.append(pytest.param(p.values[0], method, id=f"{p.id}-{method}", marks=marks))
    return out


@pytest.mark.parametrize("case", params(REGULAR, lambda c: c.traceenum))
def test_log_evidence_matches_traceenum(case):
    scale = case.scale or 1.0
    ref = traceenum_log_evidence(case.model, case.args, case.kwargs, nesting=case.nesting)
    post = posterior(case)
    assert post.log_evidence == pytest.approx(ref, abs=ATOL)
    assert post.unscaled_log_evidence == pytest.approx(ref / scale, abs=ATOL)


@pytest.mark.parametrize("case", params(MIXED))
@pytest.mark.parametrize("method", ["auto", "parallel", "sequential"])
def test_mixed_scales_are_refused_as_traceenum_refuses_them(case, method):
    with pytest.raises(ValueError, match="common poutine.scale"):
        traceenum_log_evidence(case.model, case.args, case.kwargs, nesting=case.nesting)
    with pytest.raises(ValueError, match="scale") as err:
        posterior(case, method)
    named = [n for n in brute(case).sites if f"'{n}'" in str(err.value)]
    assert named, f"the message names none of the sites: {err.value}"


@pytest.mark.parametrize(("case", "method"), _with_methods([c for c in REGULAR if c.brute]))
def test_log_evidence_and_marginals_match_brute_force(case, method):
    bf = brute(case)
    post = posterior(case, method)
    assert post.unscaled_log_evidence == pytest.approx(bf.log_evidence, abs=ATOL)
    assert post.log_evidence == pytest.approx((case.scale or 1.0) * bf.log_evidence, abs=ATOL)
    assert sorted(post.sites) == sorted(bf.sites)
    for site in bf.sites:
        expected = bf.marginal(site)
        got = torch.as_tensor(post.marginal(site), dtype=torch.float64)
        assert got.shape == expected.shape, site
        torch.testing.assert_close(got, expected, atol=ATOL, rtol=0, msg=site)


@pytest.mark.parametrize("case", params(REGULAR, lambda c: c.traceenum and c.traceenum_marginals))
def test_marginals_match_compute_marginals(case):
    ref = traceenum_marginals(case.model, case.args, case.kwargs, nesting=case.nesting)
    post = posterior(case, "parallel")
    assert sorted(post.sites) == sorted(ref)
    for site, expected in ref.items():
        got = torch.as_tensor(post.marginal(site), dtype=torch.float64)
        assert got.shape == expected.shape, site
        torch.testing.assert_close(got, expected, atol=ATOL, rtol=0, msg=site)


@pytest.mark.parametrize("case", params(REGULAR, lambda c: not c.parallel))
def test_parallel_refuses_or_is_right_where_it_cannot_enumerate(case):
    bf = brute(case)
    try:
        post = posterior(case, "parallel")
    except ValueError as err:
        assert "sequential" in str(err), f"the message does not give the fix: {err}"
    else:
        assert post.log_evidence == pytest.approx(bf.log_evidence, abs=ATOL)


def _assignments(bf):
    """A full assignment (the MAP row), a partial one, and a partial one of a rare row."""
    best = bf.rows[int(bf.posterior.argmax())].values
    rare = bf.rows[int(bf.posterior.argmin())].values
    names = list(best)
    out = [dict(best), {names[0]: best[names[0]]}]
    shared = [n for n in names if n in rare][:2]
    out.append({n: rare[n] for n in shared})
    return out


@pytest.mark.parametrize("case", params([c for c in REGULAR if c.brute and c.parallel], fast=FEW))
def test_prob_agrees_between_engines_and_with_brute_force(case):
    bf = brute(case)
    par, seq = posterior(case, "parallel"), posterior(case, "sequential")
    for assignment in _assignments(bf):
        expected = bf.prob(**assignment)
        assert par.prob(**assignment) == pytest.approx(expected, abs=ATOL), assignment
        assert seq.prob(**assignment) == pytest.approx(expected, abs=ATOL), assignment


@pytest.mark.parametrize("case", params([c for c in REGULAR if c.brute], fast=FEW))
def test_map_is_a_most_probable_assignment(case):
    bf = brute(case)
    best = float(bf.posterior.max())
    for method in _methods(case):
        found = posterior(case, method).map()
        assert bf.prob(**found) == pytest.approx(best, abs=ATOL), method


@pytest.mark.parametrize("name", ["hmm", "sibling_plates", "vindex_two_level"])
@pytest.mark.slow
def test_map_matches_infer_discrete(name):
    case = BY_NAME[name]
    decoder = infer_discrete(
        config_enumerate(case.model, "parallel"),
        first_available_dim=-1 - case.nesting,
        temperature=0,
    )
    trace = pyro.poutine.trace(decoder).get_trace(*case.args, **case.kwargs)
    found = posterior(case, "parallel").map()
    for site, value in found.items():
        assert torch.equal(
            torch.as_tensor(value, dtype=torch.float64),
            trace.nodes[site]["value"].to(torch.float64),
        ), site


SAMPLED = [
    "global_local",
    "masked_latent",
    *(pytest.param(n, marks=pytest.mark.slow) for n in SLOW_SAMPLED),
]


@pytest.mark.parametrize("name", SAMPLED)
def test_samples_follow_the_exact_marginals(name):
    case = BY_NAME[name]
    bf = brute(case)
    num = 4000
    for method in ("parallel", "sequential"):
        draws = posterior(case, method).sample(num)
        for site in bf.sites:
            m = bf.marginal(site)
            support = bf.supports[site]
            hits = (draws[site].unsqueeze(-1) == support.reshape(-1)).to(torch.float64).mean(0)
            tol = 4 * (m * (1 - m) / num).sqrt() + 1e-9
            assert bool(((hits - m).abs() <= tol).all()), (method, site)


OUT_OF_SUPPORT = [
    ("medical_test", {"disease": 2.0}),
    ("medical_test", {"disease": 0.5}),
    ("mixture", {"assignment": torch.tensor([5, 0, 0, 0, 0])}),
    ("global_local", {"z": t([0.0, 1.0, 3.0, 0.0, 1.0])}),
    ("hmm", {"x_0": 7}),
]


@pytest.mark.parametrize(("name", "assignment"), OUT_OF_SUPPORT)
@pytest.mark.parametrize("method", ["parallel", "sequential"])
def test_prob_of_an_out_of_support_value_is_zero_or_a_clear_error(name, assignment, method):
    post = posterior(BY_NAME[name], method)
    site = next(iter(assignment))
    try:
        p = post.prob(**assignment)
    except ValueError as err:  # an IndexError or RuntimeError here is a bug
        assert site in str(err)
    else:
        assert p == 0.0


def test_prob_accepts_python_numbers_for_scalar_sites():
    case = BY_NAME["global_local"]
    bf = brute(case)
    for method in ("parallel", "sequential"):
        post = posterior(case, method)
        assert post.prob(g=1) == pytest.approx(bf.prob(g=t(1.0)), abs=ATOL)
        assert post.prob(g=1) + post.prob(g=0) == pytest.approx(1.0, abs=ATOL)


def test_published_answers():
    # Bayes' rule by hand: P(disease | positive) = 0.01 * 0.8 / (0.01 * 0.8 + 0.99 * 0.096)
    post = posterior(BY_NAME["medical_test"])
    assert post.prob(disease=1) == pytest.approx(0.008 / (0.008 + 0.99 * 0.096), abs=ATOL)
    assert post.log_evidence == pytest.approx(math.log(0.008 + 0.99 * 0.096), abs=ATOL)
    # a discrete grid prior on a coin's bias: sum_k pi_k p_k^h (1 - p_k)^t
    case = BY_NAME["grid_coin"]
    from .corpus_discrete import GRID, GRID_FLIPS, GRID_PRIOR

    heads = float(GRID_FLIPS.sum())
    tails = len(GRID_FLIPS) - heads
    joint = GRID_PRIOR * GRID**heads * (1 - GRID) ** tails
    post = posterior(case)
    assert post.log_evidence == pytest.approx(math.log(float(joint.sum())), abs=ATOL)
    torch.testing.assert_close(post.marginal("k"), joint / joint.sum(), atol=ATOL, rtol=0)


def _random_subsample(data):
    g = pyro.sample("g", dist.Bernoulli(t(0.4)))
    with pyro.plate("data", len(data), subsample_size=2) as idx:
        pyro.sample("x", dist.Bernoulli(0.2 + 0.6 * g), obs=data[idx])


def _poisson_latent(data):
    n = pyro.sample("n", dist.Poisson(t(2.0)))
    with pyro.plate("data", len(data)):
        pyro.sample("x", dist.Poisson(n + 0.5), obs=data)


def _continuous_latent(data):
    mu = pyro.sample("mu", dist.Normal(t(0.0), t(1.0)))
    with pyro.plate("data", len(data)):
        pyro.sample("x", dist.Normal(mu, 1.0), obs=data)


@pytest.mark.parametrize("method", ["auto", "parallel", "sequential"])
def test_refusals_name_the_site_or_plate(method):
    data = t([1.0, 0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="data"):
        pvae.enumerate_posterior(_random_subsample, data, method=method)
    with pytest.raises(ValueError, match="'n'|`n`") as err:
        pvae.enumerate_posterior(_poisson_latent, t([1.0, 3.0]), method=method)
    assert "continuous" not in str(err.value).lower()  # a Poisson is discrete, unbounded
    with pytest.raises(ValueError, match="'mu'|`mu`"):
        pvae.enumerate_posterior(_continuous_latent, data, method=method)
