"""VAE: shapes, a hand-computed ELBO, beta as a KL weight, gradients, seeds, bad input."""

import copy
import json
import math

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO
from torch import nn

from pvae import _traces
from pvae.models import MODELS, VAE, ELBOTerms
from pvae.models.latent import slerp

LIKELIHOODS = [
    ("bernoulli", {}),
    ("continuous_bernoulli", {}),
    ("gaussian", {"scale": 0.5}),
    ("gaussian", {"scale": "learned"}),
    (lambda p: dist.Laplace(p, 0.3), {}),
]
NETS = [
    ("mlp", 6, {}),
    ("mlp", (4, 4), {}),
    ("conv", (8, 8), {"channels": (2, 3)}),
    ("conv", (1, 28, 28), {"channels": (2, 3)}),
]


def _data(lik, shape, n=5):
    x = torch.rand(n, *shape)
    return torch.bernoulli(x) if lik == "bernoulli" else x


@pytest.mark.parametrize("net,x_dim,net_kw", NETS)
@pytest.mark.parametrize("lik,lik_kw", LIKELIHOODS)
def test_shapes_for_every_likelihood_and_net(lik, lik_kw, net, x_dim, net_kw):
    vae = VAE(x_dim, 2, hidden=(4,), likelihood=lik, net=net, **lik_kw, **net_kw)
    shape = vae.x_shape
    x = _data(lik, shape)
    guide_tr = pyro.poutine.trace(vae.guide).get_trace(x)
    model_tr = pyro.poutine.trace(pyro.poutine.replay(vae.model, trace=guide_tr)).get_trace(x)
    model_tr.compute_log_prob()
    assert guide_tr.nodes["z"]["value"].shape == (5, 2)
    assert model_tr.nodes["x"]["log_prob"].shape == (5,)
    assert model_tr.nodes["z"]["log_prob"].shape == (5,)
    assert [f.name for f in model_tr.nodes["x"]["cond_indep_stack"]] == ["data"]
    loc, scale = vae.encode(x)
    assert loc.shape == scale.shape == (5, 2) and bool((scale > 0).all())
    d = vae.decode(loc)
    assert d.batch_shape == (5,) and tuple(d.event_shape) == shape
    assert vae.reconstruct(x).shape == (5, *shape)
    assert vae.sample(3).shape == (3, *shape)
    assert vae.interpolate(x[0], x[1], steps=4).shape == (4, *shape)
    assert vae.interpolate(x[:1], x[1:2], steps=4, method="slerp").shape == (4, *shape)
    assert vae.traverse(x[0], 1, [-1.0, 0.0, 1.0]).shape == (3, *shape)
    terms = vae.elbo_terms(x)
    assert isinstance(terms, ELBOTerms)
    assert terms.reconstruction.shape == terms.kl_prior.shape == (5,)
    assert bool(torch.isfinite(terms.reconstruction).all()) and bool((terms.kl_prior >= 0).all())


def _fixed_vae(beta=1.0):
    """x_dim=2, z_dim=1, single affine encoder head and decoder, float64, fixed weights."""
    vae = VAE(2, 1, hidden=(), likelihood="bernoulli", beta=beta).double()
    f64 = {"dtype": torch.float64}
    with torch.no_grad():
        vae.encoder.head.loc.weight.copy_(torch.tensor([[0.5, -0.3]], **f64))
        vae.encoder.head.loc.bias.copy_(torch.tensor([0.1], **f64))
        vae.encoder.head.scale.weight.copy_(torch.tensor([[0.2, 0.1]], **f64))
        vae.encoder.head.scale.bias.copy_(torch.tensor([-0.5], **f64))
        vae.decoder.mlp.linears[0].weight.copy_(torch.tensor([[1.5], [-2.0]], **f64))
        vae.decoder.mlp.linears[0].bias.copy_(torch.tensor([0.2, 0.3], **f64))
    return vae


X = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
F64 = {"dtype": torch.float64}


def _hand(eps):
    """Per-example log p(x|z), log p(z), log q(z|x), analytic KL, in plain Python floats."""
    rows = []
    for (x1, x2), e in zip(X, eps, strict=True):
        loc = 0.5 * x1 - 0.3 * x2 + 0.1
        scale = math.log1p(math.exp(0.2 * x1 + 0.1 * x2 - 0.5)) + 1e-6
        z = loc + scale * e
        logits = (1.5 * z + 0.2, -2.0 * z + 0.3)
        log_px = sum(
            x * a - math.log1p(math.exp(a)) for x, a in zip((x1, x2), logits, strict=True)
        )
        log_pz = -0.5 * z * z - 0.5 * math.log(2 * math.pi)
        log_qz = -0.5 * e * e - math.log(scale) - 0.5 * math.log(2 * math.pi)
        kl = -math.log(scale) + 0.5 * (scale * scale + loc * loc - 1.0)
        rows.append((log_px, log_pz, log_qz, kl))
    return rows


def _eps(seed):
    torch.manual_seed(seed)
    return torch.empty(3, 1, dtype=torch.float64).normal_()[:, 0].tolist()


def test_trace_elbo_equals_hand_computed_value():
    vae, x = _fixed_vae(), torch.tensor(X, dtype=torch.float64)
    rows = _hand(_eps(3))
    pyro.set_rng_seed(3)
    loss = Trace_ELBO().loss(vae.model, vae.guide, x)
    expected = -sum(px + pz - qz for px, pz, qz, _ in rows)
    assert loss == pytest.approx(expected, abs=1e-9)


def test_elbo_terms_equal_hand_computed_values():
    vae, x = _fixed_vae(), torch.tensor(X, dtype=torch.float64)
    rows = _hand(_eps(4))
    pyro.set_rng_seed(4)
    terms = vae.elbo_terms(x)
    torch.testing.assert_close(
        terms.reconstruction,
        torch.tensor([r[0] for r in rows], dtype=torch.float64),
        atol=1e-9,
        rtol=0,
    )
    torch.testing.assert_close(
        terms.kl_prior,
        torch.tensor([r[3] for r in rows], dtype=torch.float64),
        atol=1e-9,
        rtol=0,
    )


def test_elbo_terms_match_trace_elbo_in_expectation():
    vae, x = _fixed_vae(), torch.tensor(X, dtype=torch.float64)
    elbo = -Trace_ELBO(num_particles=20000, vectorize_particles=True).loss(vae.model, vae.guide, x)
    t = vae.elbo_terms(x.repeat(20000, 1))
    analytic = (t.reconstruction - t.kl_prior).reshape(20000, 3).mean(0).sum().item()
    # Monte Carlo standard errors: 0.004 (Trace_ELBO) and 0.0015 (analytic KL) nats
    assert elbo == pytest.approx(analytic, abs=0.025)


@pytest.mark.parametrize("beta", [0.0, 0.25, 2.0, 4.0])
def test_beta_changes_loss_by_beta_minus_one_times_kl(beta):
    x = torch.tensor(X, dtype=torch.float64)
    rows = _hand(_eps(5))
    mc_kl = sum(qz - pz for _, pz, qz, _ in rows)
    unit, vae = _fixed_vae(), _fixed_vae(beta)
    pyro.set_rng_seed(5)
    base = Trace_ELBO().loss(unit.model, unit.guide, x)
    pyro.set_rng_seed(5)
    scaled = Trace_ELBO().loss(vae.model, vae.guide, x)
    assert scaled - base == pytest.approx((beta - 1.0) * mc_kl, abs=1e-9)
    pyro.set_rng_seed(5)
    t = vae.elbo_terms(x)
    assert (t.reconstruction - beta * t.kl_prior).sum().item() == pytest.approx(
        sum(px - beta * kl for px, _, _, kl in rows), abs=1e-9
    )


def _quadrature_terms(beta):
    """Per-example E_q log p(x|z) by 80-point Gauss-Hermite quadrature, and the closed-form KL.

    Independent of Pyro and of the VAE's code: the weights of `_fixed_vae` written out.
    """
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)  # E f(e), e ~ N(0, 1)
    weights = weights / weights.sum()
    terms = []
    for x1, x2 in X:
        loc = 0.5 * x1 - 0.3 * x2 + 0.1
        scale = math.log1p(math.exp(0.2 * x1 + 0.1 * x2 - 0.5)) + 1e-6
        z = loc + scale * nodes
        a1, a2 = 1.5 * z + 0.2, -2.0 * z + 0.3
        log_px = x1 * a1 - np.logaddexp(0, a1) + x2 * a2 - np.logaddexp(0, a2)
        kl = -math.log(scale) + 0.5 * (scale * scale + loc * loc - 1.0)
        terms.append((float(weights @ log_px), kl))
    return terms


def _monte_carlo_sd(beta, num):
    """Standard deviation of one particle's -(log p(x|z) + beta (log p(z) - log q(z|x)))."""
    rng = np.random.default_rng(0)
    eps = rng.standard_normal((num, 3))
    total = np.zeros(num)
    for n, (x1, x2) in enumerate(X):
        loc = 0.5 * x1 - 0.3 * x2 + 0.1
        scale = math.log1p(math.exp(0.2 * x1 + 0.1 * x2 - 0.5)) + 1e-6
        z = loc + scale * eps[:, n]
        a1, a2 = 1.5 * z + 0.2, -2.0 * z + 0.3
        log_px = x1 * a1 - np.logaddexp(0, a1) + x2 * a2 - np.logaddexp(0, a2)
        log_ratio = -0.5 * z * z + 0.5 * eps[:, n] ** 2 + math.log(scale)  # log p(z) - log q
        total -= log_px + beta * log_ratio
    return float(total.std())


@pytest.mark.parametrize("beta", [0.0, 4.0])
def test_trace_elbo_is_minus_reconstruction_plus_beta_kl(beta):
    """Pyro's Trace_ELBO on the beta-VAE = -(E_q log p(x|z) - beta KL(q || p(z))), summed."""
    vae, x = _fixed_vae(beta), torch.tensor(X, dtype=torch.float64)
    num = 40000
    pyro.set_rng_seed(11)
    loss = Trace_ELBO(num_particles=num, vectorize_particles=True, max_plate_nesting=1).loss(
        vae.model, vae.guide, x
    )
    expected = -sum(rec - beta * kl for rec, kl in _quadrature_terms(beta))
    se = _monte_carlo_sd(beta, num) / math.sqrt(num)  # 0.0055 nats at beta 0, 0.016 at 4
    assert abs(loss - expected) < 4 * se, (loss, expected, se)


@pytest.mark.parametrize("beta", [0.0, 4.0])
def test_beta_weights_the_objective_but_the_traced_model_is_the_beta_one_model(beta):
    x = torch.tensor(X, dtype=torch.float64)
    weighted, unit = _fixed_vae(beta), _fixed_vae(1.0)
    guide_tr = pyro.poutine.trace(weighted.guide).get_trace(x)
    traces = {}
    for name, vae in (("weighted", weighted), ("unit", unit)):
        replayed = pyro.poutine.replay(vae.model, trace=guide_tr)
        traces[name] = pyro.poutine.trace(replayed).get_trace(x)
        traces[name].compute_log_prob()
    z, z1 = traces["weighted"].nodes["z"], traces["unit"].nodes["z"]
    assert z["scale"] == beta and z1["scale"] == 1.0
    assert z["mask"] is None and z1["mask"] is None  # the model's own mask, not beta's
    torch.testing.assert_close(z["unscaled_log_prob"], z1["unscaled_log_prob"], rtol=0, atol=0)
    torch.testing.assert_close(z["log_prob"], beta * z1["unscaled_log_prob"], rtol=0, atol=1e-12)
    torch.testing.assert_close(_traces.log_density(z), _traces.log_density(z1), rtol=0, atol=0)
    assert guide_tr.nodes["z"]["scale"] == beta and guide_tr.nodes["z"]["mask"] is None
    # the importance-weight core sees the beta = 1 model: the same log weights
    weights = []
    for vae in (weighted, unit):
        pyro.set_rng_seed(2)
        weights.append(_traces.log_weights(vae.model, vae.guide, (x,), {}, 16).log_weight)
    torch.testing.assert_close(weights[0], weights[1], rtol=0, atol=0)


def test_beta_is_settable_and_validated():
    vae = VAE(2, 1, hidden=())
    vae.beta = 0.5
    assert vae.beta == 0.5 and vae.config["beta"] == 1.0  # config: the constructor's
    for bad in (-1, float("inf"), True, "1"):
        with pytest.raises(ValueError, match="`beta` must be a finite number >= 0, got"):
            vae.beta = bad
    with pytest.raises(ValueError, match=r"got -0.5 \(float\). Pass e.g. `beta=1.0`"):
        VAE(2, 1, beta=-0.5)


def test_elbo_terms_kl_is_a_deprecated_alias_of_kl_prior():
    t = VAE(2, 1, hidden=(), seed=0).elbo_terms(torch.ones(3, 2))
    assert t._fields == ("reconstruction", "kl_prior")
    with pytest.warns(DeprecationWarning, match=r"`ELBOTerms.kl` is renamed `kl_prior`"):
        kl = t.kl
    assert kl is t.kl_prior


@pytest.mark.parametrize(
    "make",
    [
        lambda seed: VAE(5, 2, hidden=(4,), seed=seed),
        lambda seed: VAE((8, 8), 2, hidden=(3,), net="conv", channels=(2,), seed=seed),
        lambda seed: VAE(5, 2, likelihood="gaussian", scale="learned", seed=seed),
    ],
)
def test_seed_fixes_the_initial_weights_and_leaves_the_rng_alone(make):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a, b, c = make(0), make(0), make(1)
    assert torch.equal(torch.get_rng_state(), before)  # seeded construction restores it
    for (name, p), q, r in zip(a.named_parameters(), b.parameters(), c.parameters(), strict=True):
        assert torch.equal(p, q), name
        if name != "likelihood.log_scale":  # initialised at 0 whatever the seed
            assert not torch.equal(p, r), name
    assert a.config["seed"] == 0
    rebuilt = MODELS["VAE"](**a.config)  # the config rebuilds the initial weights too
    assert all(
        torch.equal(p, q) for p, q in zip(a.parameters(), rebuilt.parameters(), strict=True)
    )
    make(None)
    assert not torch.equal(torch.get_rng_state(), before)  # seed=None draws from the caller's


def test_seed_is_validated():
    for bad in (-1, 1.5, True, "0"):
        with pytest.raises(ValueError, match="`seed` must be None or an integer from 0 to"):
            VAE(3, 2, seed=bad)


@pytest.mark.parametrize("net,x_dim,net_kw", NETS[:3])
def test_gradients_reach_every_parameter(net, x_dim, net_kw):
    # tanh, not relu: a dead relu unit in a tiny random net legitimately gets no gradient
    vae = VAE(x_dim, 2, (4,), "gaussian", scale="learned", net=net, activation="tanh", **net_kw)
    x = torch.rand(6, *vae.x_shape)
    Trace_ELBO().loss_and_grads(vae.model, vae.guide, x)
    for name, p in vae.named_parameters():
        assert p.grad is not None and bool(p.grad.abs().sum() > 0), name
    vae.zero_grad()
    t = vae.elbo_terms(x)
    (t.reconstruction - t.kl_prior).sum().backward()
    for name, p in vae.named_parameters():
        assert p.grad is not None and bool(p.grad.abs().sum() > 0), name


def test_param_store_holds_the_module_tensors():
    vae = VAE(3, 2, hidden=(4,))
    vae.guide(torch.ones(2, 3))
    store = pyro.get_param_store()
    stored = {id(store[n]) for n in store.keys()}
    assert {id(p) for p in vae.parameters()} <= stored


def test_same_seed_same_result_and_models_do_not_share_parameters():
    x = torch.bernoulli(torch.rand(8, 5))

    def run():
        pyro.set_rng_seed(7)
        vae = VAE(5, 2, hidden=(4,), seed=3)
        svi = SVI(vae.model, vae.guide, pyro.optim.Adam({"lr": 0.01}), Trace_ELBO())
        return vae, [svi.step(x) for _ in range(5)]

    (vae1, losses1), (vae2, losses2) = run(), run()
    assert losses1 == losses2
    for a, b in zip(vae1.parameters(), vae2.parameters(), strict=True):
        assert torch.equal(a, b) and a is not b
    copied = copy.deepcopy(vae1)
    assert copied._pyro_name != vae1._pyro_name


def test_sample_and_interpolate_semantics():
    vae = VAE(3, 2, hidden=())
    pyro.set_rng_seed(0)
    z = torch.randn(4, 2)
    pyro.set_rng_seed(0)
    torch.testing.assert_close(vae.sample(4), vae.decode(z).mean)
    x1, x2 = torch.tensor([1.0, 0.0, 1.0]), torch.tensor([0.0, 1.0, 1.0])
    for method in ("linear", "slerp"):
        path = vae.interpolate(x1, x2, steps=3, method=method)
        torch.testing.assert_close(path[0], vae.reconstruct(x1[None])[0])
        torch.testing.assert_close(path[-1], vae.reconstruct(x2[None])[0])
    loc = vae.encode(x1[None])[0]
    grid = vae.traverse(x1, 0, [-1.0, 2.0])
    z = loc.repeat(2, 1)
    z[:, 0] = torch.tensor([-1.0, 2.0])
    torch.testing.assert_close(grid, vae.decode(z).mean)


def test_config_is_json_and_rebuilds():
    vae = VAE((8, 8), 3, hidden=(5,), likelihood="gaussian", scale="learned", beta=0.5)
    config = json.loads(json.dumps(vae.config))
    rebuilt = MODELS[type(vae).__name__](**config)
    assert rebuilt.x_shape == (8, 8) and rebuilt.beta == 0.5 and not config["custom"]
    assert rebuilt.state_dict().keys() == vae.state_dict().keys()
    rebuilt.load_state_dict(vae.state_dict())
    assert "likelihood.log_scale" in vae.state_dict()


def test_custom_parts_are_flagged_and_used():
    class Enc(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 4)

        def forward(self, x):
            loc, raw = self.lin(x).chunk(2, -1)
            return loc, nn.functional.softplus(raw)

    vae = VAE(3, 2, encoder=Enc(), decoder=nn.Linear(2, 3))
    assert vae.config["custom"] is True
    t = vae.elbo_terms(torch.bernoulli(torch.rand(4, 3)))
    assert t.kl_prior.shape == (4,)
    with pytest.raises(ValueError, match="pass those parts again"):
        VAE(**vae.config)


@pytest.mark.parametrize(
    "x,match",
    [
        (
            torch.rand(4, 3),
            r"`x` must lie in \{0, 1\} for likelihood='bernoulli'.*continuous_bernoulli",
        ),
        (torch.ones(4, 5), r"`x` must have shape \[N, 3\], got \[4, 5\]"),
        (torch.ones(4, 3, dtype=torch.float64), "`x` must have dtype torch.float32"),
        (torch.ones(4, 3, dtype=torch.long), "`x` must have dtype torch.float32"),
        (torch.tensor([[0.0, float("nan"), 1.0]]), "1 NaN value"),
        ([[0.0, 1.0, 1.0]], "`x` must be a torch.Tensor"),
    ],
)
def test_bad_input_is_refused(x, match):
    vae = VAE(3, 2, hidden=())
    for call in (vae.model, vae.guide, vae.encode, vae.elbo_terms):
        with pytest.raises(ValueError, match=match):
            call(x)


def test_bernoulli_on_intensities_suggests_binarizing():
    vae = VAE(3, 2, hidden=())
    with pytest.raises(ValueError, match=r'binarize="static"'):
        SVI(vae.model, vae.guide, pyro.optim.Adam({}), Trace_ELBO()).step(torch.rand(4, 3))
    VAE(3, 2, hidden=(), validate=False).elbo_terms(torch.ones(4, 3))  # ok: binary


def test_other_supports():
    with pytest.raises(ValueError, match=r"`x` must lie in \[0, 1\]"):
        VAE(3, 2, likelihood="continuous_bernoulli").model(torch.full((2, 3), 2.0))
    with pytest.raises(ValueError, match=r"must lie in \[-1e\+12, 1e\+12\]"):
        VAE(3, 2, likelihood="gaussian").model(torch.tensor([[0.0, float("inf"), 1.0]]))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"x_dim": 3, "z_dim": 0}, r"`z_dim` must be a positive integer, got 0 \(int\)"),
        ({"x_dim": 3, "z_dim": True}, r"`z_dim` must be a positive integer, got True \(bool\)"),
        ({"x_dim": 3, "z_dim": 2.0}, r"got 2.0 \(float\). Pass a whole number, e.g. `z_dim=8`"),
        ({"x_dim": 0, "z_dim": 2}, r"`x_dim` must be a positive integer or an image shape"),
        ({"x_dim": (8, -8), "z_dim": 2}, r"`x_dim` must be a positive integer, got -8"),
        ({"x_dim": 3, "z_dim": 2, "likelihood": "bernouli"}, "`likelihood` must be one of"),
        ({"x_dim": 3, "z_dim": 2, "net": "conv"}, "needs an image `x_dim`"),
        ({"x_dim": 3, "z_dim": 2, "net": "cnn"}, r"`net` must be one of 'mlp', 'conv', got"),
        ({"x_dim": 3, "z_dim": 2, "hidden": 8}, "`hidden` must be a sequence"),
        ({"x_dim": 3, "z_dim": 2, "hidden": (8, 0)}, "`hidden` must be a positive integer"),
        ({"x_dim": 3, "z_dim": 2, "activation": "swish"}, "`activation` must be one of"),
        ({"x_dim": 3, "z_dim": 2, "likelihood": "gaussian", "scale": -1.0}, "`scale` must be"),
        ({"x_dim": 3, "z_dim": 2, "validate": 1}, r"`validate` must be True or False, got 1"),
        ({"x_dim": 3, "z_dim": 2, "custom": True}, "pass those parts again"),
    ],
)
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VAE(**kwargs)


def test_latent_operation_arguments_are_checked():
    vae = VAE(3, 2, hidden=())
    with pytest.raises(ValueError, match=r"`z` must have shape \[N, 2\], got \[4, 3\]"):
        vae.decode(torch.zeros(4, 3))
    with pytest.raises(ValueError, match=r"`dim` must be an integer in \[0, 2\), got 2"):
        vae.traverse(torch.ones(3), 2, [0.0])
    with pytest.raises(ValueError, match=r"`dim` must be a non-negative integer, got 0.0"):
        vae.traverse(torch.ones(3), 0.0, [0.0])
    with pytest.raises(ValueError, match="`method` must be one of 'linear', 'slerp', got 'cubic'"):
        vae.interpolate(torch.ones(3), torch.zeros(3), method="cubic")
    with pytest.raises(ValueError, match=r"`steps` must be a positive integer, got 0 \(int\)"):
        vae.interpolate(torch.ones(3), torch.zeros(3), steps=0)
    for bad in (2.5, True, 0):
        with pytest.raises(ValueError, match=r"`n` must be a positive integer, got .* e.g. `n="):
            vae.sample(bad)
    with pytest.raises(ValueError, match="`x1` must be one example, got 2"):
        vae.interpolate(torch.ones(2, 3), torch.zeros(3))


@pytest.mark.parametrize("lik", ["bernoulli", lambda p: dist.Laplace(p, 0.3)])
@pytest.mark.parametrize("net,x_dim,net_kw", [NETS[1], NETS[2]])
def test_vectorized_particles_broadcast(lik, net, x_dim, net_kw):
    """Evaluation puts a particle plate left of "data": every site must broadcast over it."""
    vae = VAE(x_dim, 2, hidden=(4,), likelihood=lik, net=net, **net_kw)
    x = torch.bernoulli(torch.rand(5, *vae.x_shape))

    def vectorized(fn):
        def wrapped(x):
            with pyro.plate("particles", 3, dim=-2):
                return fn(x)

        return wrapped

    guide_tr = pyro.poutine.trace(vectorized(vae.guide)).get_trace(x)
    model_tr = pyro.poutine.trace(
        pyro.poutine.replay(vectorized(vae.model), trace=guide_tr)
    ).get_trace(x)
    model_tr.compute_log_prob()
    assert guide_tr.nodes["z"]["value"].shape == (3, 5, 2)
    assert model_tr.nodes["x"]["log_prob"].shape == (3, 5)


def test_device_argument_and_device_mismatch():
    vae = VAE(3, 2, hidden=(), device="cpu")
    assert vae.device == torch.device("cpu")
    if torch.cuda.is_available():  # checked on a GPU machine; skipped silently on CPU-only CI
        gpu = VAE(3, 2, hidden=(4,), device="cuda")
        x = torch.bernoulli(torch.rand(4, 3, device="cuda"))
        loss = Trace_ELBO().loss(gpu.model, gpu.guide, x)
        assert math.isfinite(loss) and gpu.sample(2).device.type == "cuda"
        assert gpu.elbo_terms(x).kl_prior.device.type == "cuda"
        with pytest.raises(ValueError, match="`x` is on cpu but the model is on cuda"):
            gpu.model(x.cpu())


def test_slerp_walks_the_great_circle():
    a, b = torch.tensor([2.0, 0.0], **F64), torch.tensor([0.0, 2.0], **F64)
    path = slerp(a, b, torch.tensor([0.0, 0.5, 1.0], **F64))
    r = math.sqrt(2.0)
    torch.testing.assert_close(path, torch.tensor([[2.0, 0.0], [r, r], [0.0, 2.0]], **F64))
    same = slerp(a, a, torch.tensor([0.0, 1.0], **F64))  # parallel: falls back to linear
    torch.testing.assert_close(same, torch.stack([a, a]))


# -- issue 15: constructor arguments a hostile user passes ----------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scale": float("inf")}, "`scale` must be"),
        ({"scale": float("inf"), "likelihood": "bernoulli"}, "`scale` must be"),
        ({"scale": 1e-30, "likelihood": "gaussian"}, "`scale` must be"),
        ({"beta": 1e300}, "`beta` must be at most"),
        ({"z_dim": 2**31}, "parameters, more than"),
        ({"hidden": (2**20, 2**20)}, "parameters, more than"),
    ],
)
def test_hostile_constructor_arguments_are_refused_by_name(kwargs, match):
    args = {"x_dim": 4, "z_dim": 2, "hidden": (8,), **kwargs}
    with pytest.raises(ValueError, match=match):
        VAE(**args)


def test_a_likelihood_from_plain_torch_distributions_works_like_pyros():
    """``torch.distributions.Bernoulli`` (no ``.to_event``) gives the same log p(x|z) as
    ``pyro.distributions.Bernoulli``: the reference is Pyro's own distribution."""
    import pyro.distributions as dist

    x = torch.tensor([[0.0, 1.0, 1.0, 0.0]])
    plain = VAE(4, 2, (8,), likelihood=lambda p: torch.distributions.Bernoulli(logits=p), seed=0)
    pyros = VAE(4, 2, (8,), likelihood=lambda p: dist.Bernoulli(logits=p), seed=0)
    z = torch.zeros(1, 2)
    assert torch.allclose(plain.decode(z).log_prob(x), pyros.decode(z).log_prob(x))
    assert plain.decode(z).event_shape == (4,)
