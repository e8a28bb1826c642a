"""Fuzz the model constructors (``VAE``, ``ConditionalVAE``, ``Autoencoder``) and their
data checks; a model that builds is run on valid data, and its analytic KL checked against
the Gaussian closed form computed with NumPy from the encoder's output."""

from __future__ import annotations

import math

import numpy as np
import pyro.distributions as dist
import torch
from hypothesis import strategies as st

import pvae

from .contract import call, finite, fuzz
from .strategies import hostile_data, hostile_scalar, seeds, sizes, tensors, wrong_types

VAE_NAMES = ["`x_dim`", "`z_dim`", "`hidden`", "`likelihood`", "`scale`", "`activation`",
             "`net`", "`channels`", "`beta`", "`validate`", "`seed`", "`custom`",
             "`num_classes`", "`code_dim`", "`output_activation`", "`device`",
             "`encoder`", "`decoder`"]  # fmt: skip
td = torch.distributions
likelihoods = st.one_of(
    st.sampled_from(["bernoulli", "continuous_bernoulli", "gaussian"]),
    st.sampled_from([
        lambda p: td.Bernoulli(logits=p),  # plain torch.distributions
        lambda p: td.Normal(p, 1.0),
        lambda p: dist.Bernoulli(logits=p),
        lambda p: td.Independent(td.Normal(p, 1.0), 1),
    ]),
    hostile_scalar,
)  # fmt: skip


def _valid_x(model, n=3):
    shape = (n, *model.x_shape)
    name = getattr(model.likelihood, "name", "")
    if name in ("bernoulli", "<lambda>"):
        return torch.bernoulli(torch.full(shape, 0.5), generator=torch.Generator().manual_seed(0))
    return torch.rand(shape, generator=torch.Generator().manual_seed(0))


def _check_kl(model, x, terms):
    loc, scale = (t.detach().double().numpy() for t in model.encode(x))
    ref = 0.5 * (scale**2 + loc**2 - 1 - 2 * np.log(scale)).sum(-1)
    np.testing.assert_allclose(terms.kl_prior.detach().double().numpy(), ref, rtol=1e-4,
                               atol=1e-5)  # fmt: skip


@st.composite
def vae_kwargs(draw):
    x_dim = draw(st.one_of(st.integers(1, 4), st.sampled_from([(2, 2), (1, 4, 4), [3]]), sizes,
                           st.sampled_from([(), (0, 2), (2, -1), (1, 2, 3, 4), "4"])))  # fmt: skip
    z_dim = draw(st.one_of(st.integers(1, 3), sizes))
    hidden = draw(st.one_of(st.sampled_from([(), (4,), (3, 2)]), st.lists(sizes, max_size=2),
                            hostile_scalar))  # fmt: skip
    kwargs = {"x_dim": x_dim, "z_dim": z_dim, "hidden": hidden}
    optional = {
        "likelihood": likelihoods,
        "scale": st.one_of(st.sampled_from([1.0, 0.1, "learned", 1e-30, 1e30, math.inf]),
                           hostile_scalar),
        "beta": st.one_of(st.sampled_from([0.0, 0.5, 4.0, 1e300, 1e7, -1.0]), hostile_scalar),
        "activation": st.one_of(st.sampled_from(["relu", "tanh", "nope"]), wrong_types),
        "net": st.one_of(st.sampled_from(["mlp", "conv"]), wrong_types),
        "validate": st.one_of(st.booleans(), hostile_scalar),
        "seed": seeds,
        "custom": st.one_of(st.booleans(), wrong_types),
    }  # fmt: skip
    for key, strategy in optional.items():
        if draw(st.integers(0, 3)) == 0:
            kwargs[key] = draw(strategy)
    return kwargs


def _build_and_run(entry, cls, kwargs, **extra):
    model = call(entry, cls, **kwargs, **extra, names=VAE_NAMES)
    assert isinstance(kwargs.get("z_dim"), int) and kwargs["z_dim"] >= 1
    assert 0 <= model.beta <= 1e6
    x = _valid_x(model)
    args = (x,) if cls is not pvae.ConditionalVAE else (x, torch.tensor([0, 1, 0]))
    terms = call(
        entry + ".elbo_terms", model.elbo_terms, *args, names=["`x`", "`y`", "`likelihood`"]
    )
    for value in (*terms.reconstruction.tolist(), *terms.kl_prior.tolist()):
        finite(value, f"{entry} ELBO term")
    if cls is pvae.VAE:
        _check_kl(model, x, terms)
    return model


def test_vae(tier):
    fuzz(vae_kwargs(), lambda kw: _build_and_run("VAE", pvae.VAE, kw), tier, fast=60)


def test_conditional_vae(tier):
    def check(case):
        kwargs, num_classes = case
        _build_and_run("ConditionalVAE", pvae.ConditionalVAE, kwargs, num_classes=num_classes)

    fuzz(st.tuples(vae_kwargs(), st.one_of(st.integers(2, 3), sizes)), check, tier, fast=40)


def test_autoencoder(tier):
    @st.composite
    def kwargs(draw):
        kw = draw(vae_kwargs())
        kw = {"x_dim": kw["x_dim"], "code_dim": kw.pop("z_dim"), "hidden": kw["hidden"]}
        if draw(st.booleans()):
            kw["output_activation"] = draw(st.one_of(st.sampled_from([None, "sigmoid"]),
                                                     wrong_types))  # fmt: skip
        if draw(st.booleans()):
            kw["seed"] = draw(seeds)
        return kw

    def check(kw):
        model = call("Autoencoder", pvae.Autoencoder, **kw, names=VAE_NAMES)
        x = torch.rand(3, *model.x_shape, generator=torch.Generator().manual_seed(0))
        out = model.reconstruct(x)
        assert out.shape == x.shape and torch.isfinite(out).all()

    fuzz(kwargs(), check, tier, fast=50)


def test_model_data_checks(tier):
    """Hostile data into a built model: refused by name, or finite terms."""
    vae = pvae.VAE(4, 2, (4,), likelihood="gaussian", seed=0)
    cvae = pvae.ConditionalVAE(4, 2, 3, (4,), likelihood="gaussian", seed=0)

    def check(case):
        x, y, which = case
        if which == "vae":
            terms = call("VAE.elbo_terms", vae.elbo_terms, x, names=["`x`"])
        else:
            terms = call("ConditionalVAE.elbo_terms", cvae.elbo_terms, x, y,
                         names=["`x`", "`y`"])  # fmt: skip
        assert torch.isfinite(terms.reconstruction).all() and torch.isfinite(terms.kl_prior).all()

    cases = st.tuples(
        st.one_of(tensors(max_dims=3), hostile_data,
                  st.just(torch.zeros(3, 4)), st.just(torch.full((2, 4), 1e30))),
        st.one_of(st.just(torch.tensor([0, 1, 2])), tensors(max_dims=2), hostile_data),
        st.sampled_from(["vae", "cvae"]),
    )  # fmt: skip
    fuzz(cases, check, tier, fast=100)
