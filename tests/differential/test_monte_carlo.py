"""pvae.evaluate and the Monte Carlo pvae.elbo_decomposition against closed forms.

The reference distribution of each estimate is replicated with the suite's own draws
(:mod:`.montecarlo`): pvae's number must fall within 4 standard deviations of the
estimator's mean. An exact guide makes every log weight log p(x): then the ELBO and the IWAE
estimate are log p(x) to 1e-9. Reported numbers are beta = 1 (unscaled), masked, per
example where the examples are independent given the guide, else joint totals.
"""

import pytest

import pvae

from .cases import params
from .mc_cases import BY_NAME, MC_CASES
from .montecarlo import exact_elbo, expected, truth

ATOL = 1e-9


def _num(case):
    return case.extra.get("num_particles", 1000)


def _per_example(record, case):
    return getattr(record, "per_example", case.examples is not None)


FAST = ("normal_local_exact", "normal_local_autonormal", "masked_obs_normal", "automvn_local",
        "beta_vae", "gmm_vindex")  # fmt: skip


@pytest.mark.parametrize("case", params(MC_CASES, fast=FAST))
def test_evaluate_matches_the_reference_estimators(case):
    guide = case.make_guide(case.data)
    ref = case.reference(guide, case.data)
    k = _num(case)
    ev = pvae.evaluate(case.model, case.data, guide=guide, num_particles=k, seed=0)
    per = _per_example(ev, case)
    want_elbo, want_iwae = expected(ref, k, per, key=case.name)
    assert abs(ev.elbo - want_elbo.mean) <= want_elbo.tolerance, (ev.elbo, want_elbo)
    assert abs(ev.log_evidence - want_iwae.mean) <= want_iwae.tolerance, (
        ev.log_evidence,
        want_iwae,
    )
    assert ev.reconstruction - ev.kl_prior == pytest.approx(ev.elbo, abs=1e-6)
    if case.exact_guide:  # log w = log p(x) for every draw
        assert ev.elbo == pytest.approx(truth(ref, per), abs=ATOL)
        assert ev.log_evidence == pytest.approx(truth(ref, per), abs=ATOL)


@pytest.mark.parametrize("case", params(MC_CASES))
def test_evaluate_says_per_example_or_joint(case):
    guide = case.make_guide(case.data)
    ev = pvae.evaluate(case.model, case.data, guide=guide, num_particles=10, seed=0)
    assert ev.per_example == (case.examples is not None)
    if case.examples is not None:
        assert ev.num_examples == case.examples


def test_evaluate_keeps_the_old_name_as_a_deprecated_alias():
    case = BY_NAME["normal_local_exact"]
    ev = pvae.evaluate(case.model, case.data, guide=case.make_guide(case.data), num_particles=10)
    with pytest.warns(DeprecationWarning):
        old = ev.log_likelihood
    assert old == ev.log_evidence


@pytest.mark.parametrize("case", params(MC_CASES, fast=FAST[2:]))
def test_elbo_decomposition_monte_carlo_matches_the_reference(case):
    guide = case.make_guide(case.data)
    ref = case.reference(guide, case.data)
    k = 1000
    d = pvae.elbo_decomposition(case.model, guide, case.data, num_particles=k)
    per = _per_example(d, case)
    want_elbo, _ = expected(ref, k, per, key=case.name)
    assert abs(d.elbo - want_elbo.mean) <= want_elbo.tolerance, (d.elbo, want_elbo)
    assert d.reconstruction - d.kl_prior == pytest.approx(d.elbo, abs=1e-6)
    assert d.per_example == (case.examples is not None)
    if case.exact_guide:
        assert d.elbo == pytest.approx(truth(ref, per), abs=ATOL)
    if d.log_evidence is not None and ref.log_evidence is not None:
        # given, analytic or quadrature: never a Monte Carlo number
        assert d.log_evidence == pytest.approx(truth(ref, per), abs=1e-6), d.evidence_method
        assert d.kl == pytest.approx(d.log_evidence - d.elbo, abs=ATOL)


SLOW_GIVEN = ["ppca_lowrank", "z_sum_model"]


def test_quadrature_for_two_dependent_scalar_latents():
    case = BY_NAME["dependent_scalars"]
    guide = case.make_guide(case.data)
    ref = case.reference(guide, case.data)
    d = pvae.elbo_decomposition(case.model, guide, case.data, num_particles=2000)
    assert d.log_evidence is not None, d.evidence_method
    assert d.log_evidence == pytest.approx(truth(ref, False), abs=1e-6)
    assert d.kl == pytest.approx(truth(ref, False) - d.elbo, abs=1e-6)


@pytest.mark.parametrize(
    "name", ["normal_global", *(pytest.param(n, marks=pytest.mark.slow) for n in SLOW_GIVEN)]
)
def test_given_log_evidence_gives_the_kl(name):
    case = BY_NAME[name]
    guide = case.make_guide(case.data)
    ref = case.reference(guide, case.data)
    d = pvae.elbo_decomposition(
        case.model, guide, case.data, log_evidence=truth(ref, False), num_particles=4000
    )
    want, _ = expected(ref, 4000, False)
    kl = truth(ref, False) - exact_elbo(ref, False)
    assert abs(d.kl - kl) <= want.tolerance
