"""The factor engine's runs: direct log-densities, validation over whole tables.

References: torch's own ``log_prob``, closed forms (log p, log 0 = -inf), and Pyro's
argument validation messages' conditions.
"""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch

from pvae.exact import enumerate_posterior, runs

F64 = torch.float64


@pytest.mark.parametrize("kind", ["categorical", "bernoulli"])
def test_direct_log_probs_equal_torch_and_keep_exact_zeros(kind):
    g = torch.Generator().manual_seed(0)
    if kind == "categorical":
        probs = torch.rand(4, 1, 3, generator=g, dtype=F64)
        probs[0, 0, 1] = 0.0
        fn = dist.Categorical(probs / probs.sum(-1, keepdim=True))
        value = torch.arange(3).reshape(3, 1, 1, 1)
    else:
        probs = torch.rand(4, 1, generator=g, dtype=F64)
        probs[1, 0], probs[2, 0] = 0.0, 1.0
        fn = dist.Bernoulli(probs)
        value = torch.tensor([0.0, 1.0], dtype=F64).reshape(2, 1, 1)
    direct = runs._direct_log_prob(fn, value)
    reference = fn.log_prob(value)  # torch clamps: log eps where the probability is 0
    impossible = reference < math.log(torch.finfo(F64).eps) + 1e-6
    assert direct.shape == reference.shape and bool(impossible.any())
    assert bool((direct[impossible] == -math.inf).all())
    torch.testing.assert_close(direct[~impossible], reference[~impossible], rtol=0, atol=1e-12)


def test_one_value_of_a_categorical_is_read_off_probs():
    probs = torch.tensor([0.25, 0.0, 0.75], dtype=F64)
    fn = dist.Categorical(probs)
    for k in range(3):
        direct = runs._direct_log_prob(fn, torch.tensor(k))
        expected = math.log(float(probs[k])) if k != 1 else -math.inf  # log 0, exactly
        assert direct.shape == () and float(direct) == expected


def test_distributions_given_by_logits_are_left_to_torch():
    def site(fn):
        return {"fn": fn, "args": (), "kwargs": {}}

    r = runs.Run(
        {
            "a": site(dist.Categorical(logits=torch.zeros(3))),
            "b": site(dist.Poisson(1.0)),
            "c": site(dist.Categorical(torch.ones(3) / 3)),
        },
        {},
        F64,
    )
    assert (r.direct("a"), r.direct("b"), r.direct("c")) == (False, False, True)


def long_chain(invalid):
    """70 binary latents (the factor engine); z_5 is 1 with probability 1e-12, and where it
    is, z_6's probability is ``invalid``."""
    z = pyro.sample("z_0", dist.Bernoulli(torch.tensor(0.5, dtype=F64)))
    for t in range(1, 70):
        p = torch.tensor([0.3, 0.6], dtype=F64)
        if t == 5:
            p = torch.tensor([1e-12, 1e-12], dtype=F64)
        if t == 6:
            p = torch.tensor([0.3, invalid], dtype=F64)
        z = pyro.sample(f"z_{t}", dist.Bernoulli(p[z.long()]))
    pyro.sample("x", dist.Bernoulli(torch.tensor([0.2, 0.9], dtype=F64)[z.long()]),
                obs=torch.tensor(1.0, dtype=F64))  # fmt: skip


@pytest.mark.parametrize("invalid", [1.4, -0.2, math.nan])
def test_a_parameter_invalid_at_an_undrawn_parent_value_is_refused_by_name(invalid):
    """Pyro validates a plain run at its drawn values only (z_5 = 0 there); the factor
    engine validates the whole table, so the probability at z_5 = 1 is named."""
    with pytest.raises(ValueError, match=r"site 'z_6'.*'probs'.*sites it depends on"):
        enumerate_posterior(long_chain, invalid, method="factor")
    post = enumerate_posterior(long_chain, 0.6, method="factor")  # the valid model
    # x is 64 steps away: the chain forgets z_5 (second eigenvalue 0.3), so p(z_5=1 | x)
    # is its prior 1e-12 to far better than the tolerance
    assert post.prob(z_5=1) == pytest.approx(1e-12, rel=1e-9)


@pytest.mark.parametrize("row", [[0.0, 0.0], [-0.2, 1.2], [math.nan, 1.0]])
@pytest.mark.parametrize("method", ["factor", "auto"])
def test_a_categorical_row_invalid_at_an_undrawn_parent_value_is_refused_by_name(row, method):
    """Categorical tables are read straight off ``probs`` and validated all at once; a row
    that is not a probability vector, at a parent value the plain run did not draw
    (z_1 = 1 has prior 1e-12), is still refused, naming its site."""
    cpt = torch.tensor([[0.4, 0.6], row], dtype=F64)

    def model():
        z = pyro.sample("z_0", dist.Categorical(torch.tensor([0.5, 0.5], dtype=F64)))
        z = pyro.sample("z_1", dist.Categorical(torch.tensor([[1.0, 1e-12], [1.0, 1e-12]],
                                                             dtype=F64)[z]))  # fmt: skip
        z = pyro.sample("z_2", dist.Categorical(cpt[z]))
        pyro.sample("x", dist.Categorical(torch.tensor([[0.2, 0.8], [0.5, 0.5]], dtype=F64)[z]),
                    obs=torch.tensor(1))  # fmt: skip

    with pytest.raises(ValueError, match=r"site 'z_2'.*'probs'.*outside"):
        enumerate_posterior(model, method=method)


def test_an_observation_outside_its_support_is_refused():
    def model():
        z = pyro.sample("z_0", dist.Bernoulli(torch.tensor(0.5, dtype=F64)))
        for t in range(1, 70):
            z = pyro.sample(
                f"z_{t}", dist.Bernoulli(torch.tensor([0.3, 0.6], dtype=F64)[z.long()])
            )
        pyro.sample("x", dist.Bernoulli(0.2 + 0.5 * z), obs=torch.tensor(2.0, dtype=F64))

    with pyro.validation_enabled(False), pytest.raises(ValueError, match=r"'x'.*support"):
        enumerate_posterior(model, method="factor")


@pytest.mark.parametrize("value", [2.0, 1.5, -1.0, math.nan])
def test_an_observed_categorical_value_outside_its_support_is_refused_by_name(value):
    """A Categorical observation's table is one column of ``probs``; a value that is not
    one of 0..K-1 (here K = 2) names no column and is refused, validation on or off."""

    def model():
        z = pyro.sample("z", dist.Categorical(torch.tensor([0.5, 0.5], dtype=F64)))
        cpt = torch.tensor([[0.2, 0.8], [0.5, 0.5]], dtype=F64)
        pyro.sample("x", dist.Categorical(cpt[z]), obs=torch.tensor(value, dtype=F64))

    with pyro.validation_enabled(False), pytest.raises(ValueError, match=r"'x'.*support"):
        enumerate_posterior(model, method="factor")


@pytest.mark.parametrize("value", [torch.tensor(True), torch.tensor(1), torch.tensor(1.0)])
def test_an_observed_categorical_value_of_any_dtype_reads_its_column(value):
    """p(x = 1) = 0.5 * 0.8 + 0.5 * 0.5 whether the observation is a bool, an integer or
    a float tensor."""

    def model():
        z = pyro.sample("z", dist.Categorical(torch.tensor([0.5, 0.5], dtype=F64)))
        cpt = torch.tensor([[0.2, 0.8], [0.5, 0.5]], dtype=F64)
        pyro.sample("x", dist.Categorical(cpt[z]), obs=value)

    post = enumerate_posterior(model, method="factor")
    assert post.log_evidence == pytest.approx(math.log(0.65), abs=1e-15)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_low_precision_categorical_tables_are_read_exactly(dtype):
    """CPTs in a narrow dtype (bfloat16 too, which NumPy lacks) are read off ``probs`` and
    logged in float64: p(x = 1) = 0.5 * 0.5 + 0.5 * 0.75 exactly, as every value here is
    exact in every dtype."""

    def model():
        a = pyro.sample("a", dist.Categorical(torch.tensor([0.5, 0.5], dtype=dtype)))
        cpt = torch.tensor([[0.5, 0.5], [0.25, 0.75]], dtype=dtype)
        pyro.sample("b", dist.Categorical(cpt[a]), obs=torch.tensor(1))

    post = enumerate_posterior(model)
    assert post.method == "factor"
    assert post.log_evidence == pytest.approx(math.log(0.625), abs=1e-15)
    assert post.marginal("a").tolist() == pytest.approx([0.4, 0.6], abs=1e-15)


@pytest.mark.parametrize("method", ["auto", "parallel", "factor"])
def test_an_invalid_parameter_at_the_drawn_value_is_reported_as_pyro_reports_it(method):
    """The plain run skips Pyro's validation; when it fails (torch's sampler on negative
    probabilities), it is run again with validation, which names the parameter."""

    def model():
        z = pyro.sample("z", dist.Categorical(torch.tensor([-0.5, 1.5], dtype=F64)))
        pyro.sample("x", dist.Bernoulli(torch.tensor([0.2, 0.7], dtype=F64)[z]),
                    obs=torch.tensor(1.0, dtype=F64))  # fmt: skip

    with pytest.raises(ValueError, match=r"Expected parameter probs.*Simplex"):
        enumerate_posterior(model, method=method)


def test_an_invalid_observation_scale_is_named_by_the_factor_engine():
    def model():
        z = pyro.sample("z", dist.Bernoulli(torch.tensor(0.5, dtype=F64)))
        pyro.sample("x", dist.Normal(z, torch.tensor(-1.0, dtype=F64)),
                    obs=torch.tensor(0.3, dtype=F64))  # fmt: skip

    with pytest.raises(ValueError, match=r"site 'x'.*'scale'.*GreaterThan"):
        enumerate_posterior(model)


@pytest.mark.parametrize("method", ["auto", "factor", "parallel", "sequential"])
def test_an_impossible_observation_that_depends_on_no_latent_is_refused(method):
    """x has probability 0 whatever z is: p(x) = 0 and the posterior is undefined, as the
    sequential engine always said; the vectorized engines returned log p(x) = -inf beside
    a posterior given y alone."""

    def model():
        z = pyro.sample("z", dist.Categorical(torch.tensor([0.3, 0.7], dtype=F64)))
        one = torch.tensor(1.0, dtype=F64)
        pyro.sample("y", dist.Bernoulli(torch.tensor([0.2, 0.9], dtype=F64)[z]), obs=one)
        pyro.sample("x", dist.Bernoulli(torch.tensor(0.0, dtype=F64)), obs=one)

    with pytest.raises(ValueError, match=r"evidence p\(x\) is 0"):
        enumerate_posterior(model, method=method)
