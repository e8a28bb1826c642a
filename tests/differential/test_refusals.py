"""Where a number cannot be right, pvae must refuse with a ValueError naming the culprit.

A continuous latent the guide does not sample, a point mass (AutoDelta) on a continuous
latent where importance weights are needed, a randomly subsampled plate, a guide site that
is not a model site.
"""

import pyro
import pyro.distributions as dist
import pytest
from pyro.infer.autoguide import AutoDelta

import pvae

from . import corpus_continuous as c
from . import corpus_gaussian as cg
from .cases import t

plate, sample = pyro.plate, pyro.sample
X = cg.X_LOCAL


def _evaluate(model, guide, x):
    return pvae.evaluate(model, x, guide=guide, num_particles=50)


def _psis(model, guide, x):
    return pvae.psis_khat(model, guide, x, num_particles=50)


def _decomposition(model, guide, x):
    return pvae.elbo_decomposition(model, guide, x, num_particles=50)


def _export(model, guide, x):
    return pvae.to_inference_data(model, guide, x, num_samples=20)


WEIGHTS = [_evaluate, _psis, _decomposition]
ALL = [*WEIGHTS, _export]


def two_latents(x):
    z = sample("z", dist.Normal(0.0, 1.0))
    w = sample("w", dist.Normal(z, 1.0))
    with plate("data", len(x)):
        sample("x", dist.Normal(w, 1.0), obs=x)


def guide_without_w(x):
    sample("z", dist.Normal(t(0.0), t(1.0)))


def guide_with_extra(x):
    sample("z", dist.Normal(t(0.0), t(1.0)))
    sample("w", dist.Normal(t(0.0), t(1.0)))
    sample("v", dist.Normal(t(0.0), t(1.0)))


def random_subsample(x):
    mu = sample("mu", dist.Normal(0.0, 1.0))
    with plate("data", len(x), subsample_size=2) as idx:
        sample("x", dist.Normal(mu, 1.0), obs=x[idx])


def mu_guide(x):
    sample("mu", dist.Normal(t(0.0), t(1.0)))


def poisson_model(x):
    n = sample("n", dist.Poisson(t(3.0)))
    with plate("data", len(x)):
        sample("x", dist.Normal(n, 1.0), obs=x)


def empty_guide(x):
    pass


@pytest.mark.parametrize("fn", ALL)
def test_a_continuous_latent_the_guide_leaves_out(fn):
    with pytest.raises(ValueError, match="'w'|`w`"):
        fn(two_latents, guide_without_w, X)


@pytest.mark.parametrize("fn", [_evaluate, _decomposition])
def test_a_guide_site_that_is_not_in_the_model(fn):
    with pytest.raises(ValueError, match="'v'|`v`"):
        fn(two_latents, guide_with_extra, X)


@pytest.mark.parametrize("fn", ALL)
def test_a_randomly_subsampled_plate(fn):
    with pytest.raises(ValueError, match="'data'|`data`"):
        fn(random_subsample, mu_guide, X)


@pytest.mark.parametrize("fn", WEIGHTS)
def test_autodelta_on_a_continuous_latent_has_no_importance_weights(fn):
    guide = AutoDelta(pyro.poutine.block(c.gmm, expose=["locs"]))
    guide(c.GMM_X)
    with pytest.raises(ValueError, match="'locs'|`locs`"):
        fn(c.gmm, guide, c.GMM_X)


@pytest.mark.parametrize("fn", WEIGHTS)
def test_an_unguided_poisson_latent_cannot_be_summed_out(fn):
    with pytest.raises(ValueError, match="'n'|`n`"):
        fn(poisson_model, empty_guide, t([2.0, 3.5]))
