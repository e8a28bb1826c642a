"""The references checked against each other, so a failure elsewhere is pvae's, not ours.

Brute force against TraceEnum_ELBO (log evidence, marginals, the ELBO of a discrete guide);
the closed forms of the continuous corpus against Pyro's Trace_ELBO with many particles;
the unscaling handler against TraceEnum_ELBO's common-scale convention.
"""

import math

import pytest
import torch
from pyro.infer import Trace_ELBO, TraceEnum_ELBO

from .cases import params
from .exact_cases import EXACT_CASES
from .mc_cases import MC_CASES
from .references import (
    BruteForce,
    brute_force_elbo,
    traceenum_elbo,
    traceenum_log_evidence,
    traceenum_marginals,
    unscaled,
)

BOTH = [c for c in EXACT_CASES if c.traceenum and c.brute]


@pytest.mark.parametrize("case", params(BOTH, fast=("global_local", "obs_mask_bernoulli", "hmm")))
def test_brute_force_agrees_with_traceenum(case):
    bf = BruteForce(case.model, case.args, case.kwargs)
    ref = traceenum_log_evidence(
        unscaled(case.model), case.args, case.kwargs, nesting=case.nesting
    )
    assert bf.log_evidence == pytest.approx(ref, abs=1e-9)
    if case.scale is not None:  # TraceEnum_ELBO: one common scale outside the log-sum-exp
        scaled = traceenum_log_evidence(
            case.model, case.args, case.kwargs, nesting=case.nesting, scale=case.scale
        )
        assert scaled == pytest.approx(ref, abs=1e-9)
    if case.traceenum_marginals:
        marginals = traceenum_marginals(
            unscaled(case.model), case.args, case.kwargs, nesting=case.nesting
        )
        assert sorted(marginals) == sorted(bf.sites)
        for site, m in marginals.items():
            torch.testing.assert_close(m, bf.marginal(site), atol=1e-9, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("case", params(BOTH, lambda c: c.guide is not None))
def test_brute_force_elbo_agrees_with_traceenum_guide_enumeration(case):
    guide = case.guide()
    ref = brute_force_elbo(case.model, guide, case.guided, case.args, case.kwargs)
    te = traceenum_elbo(
        unscaled(case.model), unscaled(guide), case.args, case.kwargs, nesting=case.nesting
    )
    assert ref.elbo == pytest.approx(te, abs=1e-9)
    assert ref.reconstruction - ref.kl_prior == pytest.approx(ref.elbo, abs=1e-9)
    assert ref.kl >= -1e-12


def _trace_elbo(case, guide, num, vectorize=True):
    elbo = Trace_ELBO(
        num_particles=num, vectorize_particles=vectorize, max_plate_nesting=max(case.nesting, 1)
    )
    with torch.no_grad():
        return -elbo.loss(unscaled(case.model), unscaled(guide), case.data)


VECTORIZABLE = [
    c for c in MC_CASES if c.name not in ("z_sum_model", "control_flow", "gmm_tutorial")
]


@pytest.mark.slow
@pytest.mark.parametrize("case", params(VECTORIZABLE, lambda c: not c.name.startswith("gmm")))
def test_closed_forms_agree_with_trace_elbo(case):
    guide = case.make_guide(case.data)
    ref = case.reference(guide, case.data)
    log_w = ref.draws(20_000, 5).sum(-1)
    mean = sum(ref.elbo) if ref.elbo is not None else float(log_w.mean())
    sd = float(log_w.std())
    pyro_elbo = _trace_elbo(case, guide, 20_000)
    assert abs(pyro_elbo - mean) <= 4 * sd / math.sqrt(20_000) * math.sqrt(2) + 1e-9
    if ref.elbo is not None:
        assert abs(float(log_w.mean()) - mean) <= 4 * sd / math.sqrt(20_000) + 1e-9
    if ref.log_evidence is not None:  # E_q[w] = p(x): the weights' mean, within 4 SE
        w = (log_w - sum(ref.log_evidence)).exp()
        assert abs(float(w.mean()) - 1) <= 4 * float(w.std()) / math.sqrt(len(w)) + 1e-9


@pytest.mark.slow
@pytest.mark.parametrize("name", ["z_sum_model", "control_flow"])
def test_unvectorizable_closed_forms_agree_with_sequential_trace_elbo(name):
    case = next(c for c in MC_CASES if c.name == name)
    guide = case.make_guide(case.data)
    log_w = case.reference(guide, case.data).draws(20_000, 6).sum(-1)
    pyro_elbo = _trace_elbo(case, guide, 1500, vectorize=False)
    assert abs(pyro_elbo - sum(case.reference(guide, case.data).elbo)) <= 4 * float(
        log_w.std()
    ) / math.sqrt(1500)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gmm_vindex"])
def test_gmm_formula_agrees_with_traceenum_elbo(name):
    case = next(c for c in MC_CASES if c.name == name)
    guide = case.make_guide(case.data)
    log_w = case.reference(guide, case.data).draws(20_000, 7).sum(-1)
    elbo = TraceEnum_ELBO(num_particles=20_000, vectorize_particles=True, max_plate_nesting=1)
    with torch.no_grad():
        value = -elbo.loss(case.model, guide, case.data)
    assert abs(value - float(log_w.mean())) <= 4 * float(log_w.std()) / math.sqrt(10_000)
