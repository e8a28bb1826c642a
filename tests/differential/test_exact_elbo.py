"""pvae.elbo_decomposition and pvae.compare on discrete guides: every number is exact.

References: a brute-force sum over every joint assignment (guided latents' model factors
masked, as Trace_ELBO has them; the model's other latents summed out with their own
factors unmasked) and TraceEnum_ELBO with the guide enumerated in parallel. Reported
numbers are unscaled (beta = 1) and per example where the record says so.
"""

import math

import pyro
import pytest
import torch

import pvae

from .cases import divisor, params
from .exact_cases import BY_NAME, EXACT_CASES, PARTIAL, brute
from .references import (
    brute_force_elbo,
    guide_log_density,
    traceenum_elbo,
    unscaled,
)

ATOL = 1e-9
GUIDED = [c for c in EXACT_CASES if c.guide is not None and c.brute]
FLAGS = ("global_local", "beta_discrete", "hmm", "obs_mask_bernoulli")


def _latents(case):
    return brute(case)


def _full(case, bf):
    return sorted(case.guided) == sorted(bf.sites)


@pytest.mark.parametrize("case", params(GUIDED, fast=FLAGS + ("sibling_plates", "common_scale")))
def test_elbo_decomposition_matches_brute_force(case):
    guide = case.guide()
    bf = _latents(case)
    ref = brute_force_elbo(case.model, guide, case.guided, case.args, case.kwargs, bf=bf)
    d = pvae.elbo_decomposition(case.model, guide, *case.args, **case.kwargs)
    n = divisor(d, case.examples)
    assert d.log_evidence == pytest.approx(ref.log_evidence / n, abs=ATOL)
    assert d.elbo == pytest.approx(ref.elbo / n, abs=ATOL)
    assert d.kl == pytest.approx(ref.kl / n, abs=ATOL)
    assert d.log_evidence - d.elbo - d.kl == pytest.approx(0.0, abs=ATOL)
    assert d.reconstruction - d.kl_prior == pytest.approx(d.elbo, abs=ATOL)
    if _full(case, bf):  # E_q log p(x|z) and KL(q || p(z)) are unambiguous here
        assert d.reconstruction == pytest.approx(ref.reconstruction / n, abs=ATOL)
        assert d.kl_prior == pytest.approx(ref.kl_prior / n, abs=ATOL)


@pytest.mark.parametrize("case", params(GUIDED, lambda c: c.traceenum, fast=FLAGS))
def test_elbo_matches_traceenum_with_guide_enumeration(case):
    guide = case.guide()
    ref = traceenum_elbo(
        unscaled(case.model), unscaled(guide), case.args, case.kwargs, nesting=case.nesting
    )
    d = pvae.elbo_decomposition(case.model, guide, *case.args, **case.kwargs)
    assert d.elbo == pytest.approx(ref / divisor(d, case.examples), abs=ATOL)


@pytest.mark.parametrize("case", params(GUIDED, fast=FLAGS))
def test_records_say_whether_numbers_are_per_example(case):
    d = pvae.elbo_decomposition(case.model, case.guide(), *case.args, **case.kwargs)
    assert d.per_example == (case.examples is not None)
    if case.examples is not None:
        assert d.num_examples == case.examples


def _kl(p, q):
    terms = torch.where(p > 0, p * (p.clamp_min(1e-300).log() - q.clamp_min(1e-300).log()), 0.0)
    return terms.sum(-1)


def _kl_pq(case, guide, bf, unmasked=False):
    """Joint KL(p(z|x) || q(z)); with ``unmasked``, of the marginals of the elements the
    guide does not mask (the other defensible reading of a masked guide)."""
    log_q = [guide_log_density(guide, row.values, case.args, case.kwargs)[0] for row in bf.rows]
    post = bf.posterior.tolist()
    if not unmasked:
        return sum(p * (math.log(p) - lq) for p, lq in zip(post, log_q, strict=True) if p > 0)
    trace = pyro.poutine.trace(guide).get_trace(*case.args, **case.kwargs)
    masks = {}
    for name in case.guided:
        site = trace.nodes[name]
        mask = site["mask"]
        shape = site["fn"].batch_shape
        keep = torch.ones(shape, dtype=torch.bool)
        if mask is not None:
            keep = keep & torch.as_tensor(mask, dtype=torch.bool)
        masks[name] = keep
    groups: dict = {}
    for row, p, lq in zip(bf.rows, post, log_q, strict=True):
        k = tuple(tuple(row.values[n][masks[n]].reshape(-1).tolist()) for n in case.guided)
        acc = groups.setdefault(k, [0.0, 0.0])
        acc[0] += p
        acc[1] += math.exp(lq)
    return sum(p * (math.log(p) - math.log(q)) for p, q in groups.values() if p > 0)


@pytest.mark.parametrize("case", params(GUIDED, lambda c: c.name not in PARTIAL))
def test_compare_matches_brute_force(case):
    bf = _latents(case)
    assert _full(case, bf)
    guide = case.guide()
    ref = brute_force_elbo(case.model, guide, case.guided, case.args, case.kwargs, bf=bf)
    if case.mixed_scale:  # no ExactPosterior (refused, as TraceEnum_ELBO refuses), but
        r = pvae.compare(case.model, guide, *case.args, **case.kwargs)  # a guide analysis
    else:
        post = pvae.enumerate_posterior(case.model, *case.args, **case.kwargs)
        r = pvae.compare(post, guide, *case.args, **case.kwargs)
    n = divisor(r, case.examples)
    assert r.kl_qp == pytest.approx(ref.kl / n, abs=ATOL)
    assert r.kl == pytest.approx(ref.kl / n, abs=ATOL)
    assert r.log_evidence == pytest.approx(ref.log_evidence / n, abs=ATOL)
    assert r.elbo == pytest.approx(ref.elbo / n, abs=ATOL)
    if r.kl_pq is not None:
        assert r.kl_pq * n == pytest.approx(_kl_pq(case, guide, bf), abs=ATOL) or (
            r.kl_pq * n == pytest.approx(_kl_pq(case, guide, bf, unmasked=True), abs=ATOL)
        )
    rows = {(s, i, v): (p, q) for s, i, v, p, q in r.rows}
    for site in bf.sites:
        support = bf.supports[site]
        if support.dim() > 1:
            continue  # one-hot values: compared through the KLs only
        p = bf.marginal(site)
        q = ref.q_marginal(site, support)
        # summed over a site's elements, in the record's units
        assert r.site_kl_qp[site] == pytest.approx(float(_kl(q, p).sum()) / n, abs=ATOL), site
        assert r.site_kl_pq[site] == pytest.approx(float(_kl(p, q).sum()) / n, abs=ATOL), site
        tv = 0.5 * (p - q).abs().sum(-1)
        assert r.site_tv[site] == pytest.approx(float(tv.mean()), abs=ATOL), site
        if p.dim() > 2:
            continue  # rows index one plate dim
        for j, value in enumerate(support.tolist()):
            for i in [None] if p.dim() == 1 else range(p.shape[0]):
                pk, qk = (p[j], q[j]) if i is None else (p[i, j], q[i, j])
                got = rows[(site, i, float(value))]
                assert got[0] == pytest.approx(float(pk), abs=ATOL), (site, i, value)
                assert got[1] == pytest.approx(float(qk), abs=ATOL), (site, i, value)


@pytest.mark.parametrize(
    "name", ["sibling_plates", pytest.param("hmm_lengths", marks=pytest.mark.slow)]
)
def test_compare_accepts_the_model_itself(name):
    case = BY_NAME[name]
    guide = case.guide()
    r = pvae.compare(case.model, guide, *case.args, **case.kwargs)
    bf = _latents(case)
    ref = brute_force_elbo(case.model, guide, case.guided, case.args, case.kwargs, bf=bf)
    assert r.kl_qp == pytest.approx(ref.kl / divisor(r, case.examples), abs=ATOL)
