"""The discrete corpus: models whose latents are all finite, written in Pyro's idioms.

Every number about these models is exact, so pvae's answer must match its references to
1e-9 in float64. Each model is written the way Pyro's tutorials, examples and tests write
them (the idioms are listed per case); guides are hand-written mean-field guides or
:class:`~pyro.infer.autoguide.AutoDiscreteParallel` with fixed random probabilities.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.distributions import constraints
from pyro.infer import config_enumerate
from pyro.ops.indexing import Vindex

from .cases import random_bernoulli, random_probs, t

plate, sample = pyro.plate, pyro.sample


# --------------------------------------------------------------------- single-site classics
def medical_test():
    disease = sample("disease", dist.Bernoulli(t(0.01)))
    sample("test", dist.Bernoulli(0.8 * disease + 0.096 * (1 - disease)), obs=t(1.0))


def _medical_guide():
    sample("disease", dist.Bernoulli(t(0.3)))


FLIPS = t([1.0, 1.0, 0.0, 1.0])


def coin_control_flow(flips):
    fair = sample("fair", dist.Bernoulli(t(0.5)))
    p = 0.5 if int(fair) == 1 else 0.9  # Python control flow on a sampled value
    with plate("data", len(flips)):
        sample("x", dist.Bernoulli(t(p)), obs=flips)


def _coin_guide(flips):
    sample("fair", dist.Bernoulli(t(0.35)))


WET = t([[0.01, 0.9], [0.9, 0.99]])


def sprinkler():
    cloudy = sample("cloudy", dist.Bernoulli(t(0.5)))
    on = sample("sprinkler", dist.Bernoulli(0.5 - 0.4 * cloudy))
    rain = sample("rain", dist.Bernoulli(0.2 + 0.6 * cloudy))
    sample("wet", dist.Bernoulli(Vindex(WET)[on.long(), rain.long()]), obs=t(1.0))


Q_SPRINKLER = random_bernoulli((3,), 11)


def _sprinkler_guide():
    for name, q in zip(("cloudy", "sprinkler", "rain"), Q_SPRINKLER, strict=True):
        sample(name, dist.Bernoulli(q))


GRID = t([0.1, 0.3, 0.5, 0.7, 0.9])
GRID_PRIOR = t([0.1, 0.2, 0.4, 0.2, 0.1])
GRID_FLIPS = t([1.0, 1.0, 0.0, 1.0, 1.0, 1.0])


def grid_coin(flips):
    k = sample("k", dist.Categorical(GRID_PRIOR))
    with plate("data", len(flips)):
        sample("flip", dist.Bernoulli(GRID[k]), obs=flips)


def _grid_guide(flips):
    sample("k", dist.Categorical(random_probs((), 5, 12)))


LIST_FLIPS = [t(1.0), t(1.0), t(0.0), t(1.0), t(1.0)]


def coin_list_data(data):
    biased = sample("biased", dist.Bernoulli(t(0.3)))
    f = 0.5 + 0.35 * biased
    for i in pyro.plate("data_loop", len(data)):  # a sequential plate over a Python list
        sample(f"obs_{i}", dist.Bernoulli(f), obs=data[i])


def _coin_list_guide(data):
    sample("biased", dist.Bernoulli(t(0.6)))


def with_deterministic(data):
    g = sample("g", dist.Bernoulli(t(0.6)))
    p = pyro.deterministic("p", 0.2 + 0.6 * g)
    with plate("data", len(data)):
        sample("x", dist.Bernoulli(p), obs=data)


def binomial_latent(counts):
    n = sample("n", dist.Binomial(3, t(0.4)))
    with plate("data", len(counts)):
        sample("obs", dist.Poisson(1.0 + n), obs=counts)


def _binomial_guide(counts):
    sample("n", dist.Binomial(3, t(0.6)))


LOCS3 = t([-1.0, 0.5, 2.0])


def onehot_latent(data):
    z = sample("z", dist.OneHotCategorical(t([0.2, 0.5, 0.3])))
    loc = (z * LOCS3).sum(-1)
    with plate("data", len(data)):
        sample("obs", dist.Normal(loc, 1.0), obs=data)


def _onehot_guide(data):
    sample("z", dist.OneHotCategorical(random_probs((), 3, 13)))


def branching_sites(x):
    a = sample("a", dist.Bernoulli(t(0.4)))
    if a.item() == 1:  # sites that exist on one branch only
        b = sample("b", dist.Categorical(t([0.2, 0.5, 0.3])))
        sample("x", dist.Normal(b.to(x.dtype), 1.0), obs=x)
    else:
        c = sample("c", dist.Bernoulli(t(0.7)))
        sample("x", dist.Normal(2 * c - 1, 0.5), obs=x)


Z_COUNT = t(2.0)


def z_sum_count(count):
    with plate("data", 3):
        z = sample("z", dist.Bernoulli(t(0.3)))
    total = z.sum()  # sums every dim: not safe under parallel enumeration
    sample("count", dist.Poisson(0.5 + total), obs=count)


def chain_site_infer(y):
    a = sample("a", dist.Categorical(t([0.5, 0.3, 0.2])), infer={"enumerate": "parallel"})
    b = sample("b", dist.Categorical(Vindex(CHAIN_AB)[a]))
    c = sample("c", dist.Bernoulli(Vindex(CHAIN_BC)[b]), infer={"enumerate": "parallel"})
    sample("y", dist.Normal(2.0 * c - 0.5 * b.to(y.dtype), 0.8), obs=y)


CHAIN_AB = random_probs((3,), 3, 14)
CHAIN_BC = random_bernoulli((3,), 15)


# --------------------------------------------------------------------- plates, masks, scales
DATA5 = t([0.0, 1.0, 1.0, 0.0, 1.0])
MASK5 = torch.tensor([True, False, True, False, True])


def global_local(data):
    g = sample("g", dist.Bernoulli(t(0.3)))
    with plate("data", len(data)):
        z = sample("z", dist.Bernoulli(0.2 + 0.5 * g))
        sample("x", dist.Bernoulli(0.1 + 0.8 * z), obs=data)


MIX_X = t([-1.2, 0.1, 2.3, 1.9, -0.4])
MIX_W = t([0.5, 0.3, 0.2])
Q_MIX = random_probs((5,), 3, 16)


def mixture(data):
    with plate("data", len(data)):
        a = sample("assignment", dist.Categorical(MIX_W))
        sample("obs", dist.Normal(LOCS3[a], 0.7), obs=data)


def _mixture_guide(data):
    with plate("data", len(data)):
        sample("assignment", dist.Categorical(Q_MIX))


def masked_latent(data):
    g = sample("g", dist.Bernoulli(t(0.4)))
    with plate("data", len(data)):
        with poutine.mask(mask=MASK5):  # a mask on a latent only: its own factor is kept
            z = sample("z", dist.Bernoulli(0.3 + 0.4 * g))
        sample("x", dist.Bernoulli(0.15 + 0.7 * z), obs=data)


def masked_points(data):
    g = sample("g", dist.Bernoulli(t(0.4)))
    with plate("data", len(data)), poutine.mask(mask=MASK5):  # drops whole data points
        z = sample("z", dist.Bernoulli(0.3 + 0.4 * g))
        sample("x", dist.Bernoulli(0.15 + 0.7 * z), obs=data)


Q_G, Q_Z, Q_Z3 = t(0.55), random_bernoulli((5,), 17), random_bernoulli((3,), 18)


def _masked_points_guide(data):
    sample("g", dist.Bernoulli(Q_G))
    with plate("data", len(data)), poutine.mask(mask=MASK5):
        sample("z", dist.Bernoulli(Q_Z))


def masked_obs(data):
    g = sample("g", dist.Bernoulli(t(0.4)))
    with plate("data", len(data)):
        z = sample("z", dist.Bernoulli(0.3 + 0.4 * g))
        with poutine.mask(mask=MASK5):
            sample("x", dist.Bernoulli(0.15 + 0.7 * z), obs=data)


OBS3, OBS_MASK3 = t([1.0, 0.0, 1.0]), torch.tensor([True, False, True])


def obs_mask_bernoulli(data):
    g = sample("g", dist.Bernoulli(t(0.35)))
    with plate("data", len(data)):
        z = sample("z", dist.Bernoulli(0.25 + 0.5 * g))
        sample("x", dist.Bernoulli(0.1 + 0.8 * z), obs=data, obs_mask=OBS_MASK3)


def _obs_mask_guide(data):
    sample("g", dist.Bernoulli(Q_G))
    with plate("data", len(data)):
        sample("z", dist.Bernoulli(Q_Z3))


CAT_DATA = torch.tensor([0, 2, 1, 3])
CAT_MASK = torch.tensor([True, False, True, False])
CAT_CPT = random_probs((3,), 4, 18)


def obs_mask_categorical(data):
    g = sample("g", dist.Categorical(t([0.5, 0.3, 0.2])))
    with plate("data", len(data)):
        sample("x", dist.Categorical(CAT_CPT[g]), obs=data, obs_mask=CAT_MASK)


def _obs_mask_cat_guide(data):
    sample("g", dist.Categorical(random_probs((), 3, 19)))


def python_bool_masks(data):
    with poutine.mask(mask=True):  # Python bools, as Pyro's HMM example writes them
        g = sample("g", dist.Bernoulli(t(0.3)))
    with plate("data", len(data)):
        sample("x", dist.Bernoulli(0.2 + 0.6 * g), obs=data)
    with poutine.mask(mask=False):
        sample("ignored", dist.Bernoulli(0.2 + 0.6 * g), obs=t(1.0))


def _bool_mask_guide(data):
    sample("g", dist.Bernoulli(t(0.45)))


def common_scale(data):
    with poutine.scale(scale=2.5):
        g = sample("g", dist.Categorical(t([0.2, 0.5, 0.3])))
        with plate("data", len(data)):
            z = sample("z", dist.Bernoulli(t([0.2, 0.5, 0.8])[g]))
            sample("x", dist.Bernoulli(0.1 + 0.8 * z), obs=data)


def scale_on_observations(data):
    g = sample("g", dist.Bernoulli(t(0.3)))
    with plate("data", len(data)):
        z = sample("z", dist.Bernoulli(0.2 + 0.5 * g))
        with poutine.scale(scale=0.3):
            sample("x", dist.Bernoulli(0.1 + 0.8 * z), obs=data)


BETA_X = t([-0.9, 0.4, 2.2, 1.1])
Q_BETA = random_probs((4,), 3, 20)


def beta_discrete(data):
    with plate("data", len(data)):
        with poutine.scale(scale=4.0):  # beta-VAE style: the code's KL weighted by beta
            z = sample("z", dist.Categorical(t([0.3, 0.3, 0.4])))
        sample("x", dist.Normal(LOCS3[z], 0.8), obs=data)


def _beta_guide(data):
    with plate("data", len(data)), poutine.scale(scale=4.0):
        sample("z", dist.Categorical(Q_BETA))


SUB_DATA = t([1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
SUB_IDX = torch.tensor([0, 2, 5])


def subsample_explicit(data):
    g = sample("g", dist.Bernoulli(t(0.4)))
    with plate("data", len(data), subsample=SUB_IDX) as idx:
        z = sample("z", dist.Bernoulli(0.2 + 0.6 * g))
        sample("x", dist.Bernoulli(0.1 + 0.8 * z), obs=data[idx])


def subsample_common(data):
    with plate("data", len(data), subsample=SUB_IDX) as idx:
        z = sample("z", dist.Categorical(t([0.2, 0.5, 0.3])))
        sample("x", dist.Bernoulli(t([0.1, 0.5, 0.9])[z]), obs=data[idx])


NEST_X = t([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])


def nested_plates(x):
    with plate("data", 2, dim=-2):
        h = sample("h", dist.Bernoulli(t(0.5)))
        with plate("items", 3, dim=-1):
            z = sample("z", dist.Bernoulli(0.2 + 0.6 * h))
            sample("x", dist.Bernoulli(0.1 + 0.8 * z), obs=x)


MASK_23 = torch.tensor([[True, False], [False, True]])
NEST2_X = t([[1.0, 0.0], [0.0, 1.0]])
Q_H, Q_Z23 = random_bernoulli((2, 1), 21), random_bernoulli((2, 2), 22)


def nested_mask_scale(x):
    with poutine.scale(scale=0.5):
        g = sample("g", dist.Bernoulli(t(0.5)))
        with plate("groups", 2, dim=-2):
            h = sample("h", dist.Bernoulli(0.3 + 0.4 * g))
            with plate("items", 2, dim=-1), poutine.mask(mask=MASK_23):
                z = sample("z", dist.Bernoulli(0.2 + 0.6 * h))
                sample("x", dist.Bernoulli(0.1 + 0.8 * z), obs=x)


def _nested_mask_guide(x):
    sample("g", dist.Bernoulli(t(0.4)))
    with plate("groups", 2, dim=-2):
        sample("h", dist.Bernoulli(Q_H))
        with plate("items", 2, dim=-1), poutine.mask(mask=MASK_23):
            sample("z", dist.Bernoulli(Q_Z23))


COMP_OBS, SIB_X = t([1.0, 0.0]), t([-0.8, 2.1, 1.7])
SIB_W, SIB_LOCS = t([[0.7, 0.3], [0.2, 0.8]]), t([-1.0, 2.0])


def sibling_plates(comp_obs, data):
    g = sample("regime", dist.Bernoulli(t(0.4)))
    with plate("components", len(comp_obs)):  # GMM-tutorial layout: two plates at dim -1
        on = sample("on", dist.Bernoulli(0.3 + 0.4 * g))
        sample("comp_obs", dist.Bernoulli(0.2 + 0.6 * on), obs=comp_obs)
    with plate("data", len(data)):
        a = sample("assignment", dist.Categorical(SIB_W[g.long()]))
        sample("obs", dist.Normal(SIB_LOCS[a], 1.0), obs=data)


TWO_B, TWO_N = t([1.0, 0.0, 1.0, 1.0]), t([0.3, -1.1, 1.4, 0.9])
TWO_PB = t([0.2, 0.5, 0.9])


def two_observations(xb, xn):
    with plate("data", len(xb)):
        a = sample("a", dist.Categorical(t([0.3, 0.3, 0.4])))
        sample("xb", dist.Bernoulli(TWO_PB[a]), obs=xb)
        sample("xn", dist.Normal(LOCS3[a], 0.5), obs=xn)


PARAM_X = t([-1.3, 0.2, 1.1, 0.8])


def param_cpt(data):
    w = pyro.param("weights", t([0.6, 0.4]), constraint=constraints.simplex)
    locs = pyro.param("locs", t([-1.0, 1.0]))
    with plate("data", len(data)):
        a = sample("a", dist.Categorical(w))
        sample("obs", dist.Normal(locs[a], 1.0), obs=data)


VI_PI, VI_T, VI_E = random_probs((), 2, 23), random_probs((2,), 3, 24), random_probs((2, 3), 4, 25)
VI_DATA = torch.tensor([3, 0, 1, 1])


@config_enumerate
def vindex_two_level(data):
    c = sample("c", dist.Categorical(VI_PI))
    with plate("data", len(data)):
        d = sample("d", dist.Categorical(Vindex(VI_T)[c]))
        sample("obs", dist.Categorical(Vindex(VI_E)[c, d]), obs=data)


BIG_X = t([-1.5, -0.2, 0.4, 2.2, 1.8, -0.9, 0.0, 2.9, 1.2, -2.0])


def large_mixture(data):
    g = sample("g", dist.Bernoulli(t(0.5)))
    with plate("data", len(data)):
        a = sample("a", dist.Categorical(t([[0.5, 0.3, 0.2], [0.1, 0.3, 0.6]])[g.long()]))
        sample("obs", dist.Normal(LOCS3[a], 0.6), obs=data)
