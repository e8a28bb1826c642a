"""EnumELBO's direct DiCE path: Pyro's TraceEnum_ELBO value and gradients, and a hand sum."""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import TraceEnum_ELBO
from pyro.infer.traceenum_elbo import _compute_dice_elbo
from torch.nn import functional as F

from pvae.models import VAE, MixtureVAE, SemiSupervisedVAE
from pvae.training.dice import _direct_costs, dice_elbo
from pvae.training.elbos import EnumELBO


def binary(n, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.full((n, d), 0.4, dtype=torch.float64), generator=g)


def m2_and_data():
    m2 = SemiSupervisedVAE(5, 4, z_dim=2, hidden=(6, 3), alpha=0.0, seed=1).double()
    x, y = binary(7, 5, seed=2), torch.tensor([-1, 2, -1, -1, 0, -1, 3])
    return m2, x, y


def traces(model, guide, *args, max_plate_nesting=1):
    elbo = TraceEnum_ELBO(max_plate_nesting=max_plate_nesting)
    ((model_trace, guide_trace),) = elbo._get_traces(model, guide, args, {})
    return model_trace, guide_trace


def test_m2_takes_the_direct_path_with_pyros_value_and_gradients():
    m2, x, y = m2_and_data()
    model_trace, guide_trace = traces(m2.model, m2.guide, x, y)
    assert _direct_costs(model_trace, guide_trace) is not None
    ours, pyros = dice_elbo(model_trace, guide_trace), _compute_dice_elbo(model_trace, guide_trace)
    assert ours.item() == pytest.approx(pyros.item(), abs=1e-9)
    params = list(m2.parameters())
    g_ours = torch.autograd.grad(ours, params, retain_graph=True)
    g_pyro = torch.autograd.grad(pyros, params)
    for a, b in zip(g_ours, g_pyro, strict=True):
        assert torch.allclose(a, b, atol=1e-9, rtol=1e-9)


def test_m2_enum_loss_is_pyros_trace_enum_elbo_and_the_hand_sum_over_labels():
    """Same z draws: -loss = sum_n sum_y q(y|x_n) [log p(y) p(z) p(x|y,z) - log q(z|x,y) q(y|x)],
    q(y|x_n) a point mass on the label where labelled; networks applied to cat(x, one_hot(y))."""
    m2, x, y = m2_and_data()
    k, n = 4, len(x)
    pyro.set_rng_seed(5)
    ours = EnumELBO().differentiable_loss(m2.model, m2.guide, x, y)
    pyro.set_rng_seed(5)
    pyros = TraceEnum_ELBO(max_plate_nesting=1).differentiable_loss(m2.model, m2.guide, x, y)
    assert ours.item() == pytest.approx(pyros.item(), abs=1e-9)

    pyro.set_rng_seed(5)
    with torch.no_grad():
        labels = torch.arange(k).reshape(k, 1)
        one_hot = F.one_hot(labels, k).double().expand(k, n, k)
        loc, scale = m2.head(m2.encoder.net(torch.cat([x.expand(k, n, 5), one_hot], -1)))
        q_z = dist.Normal(loc, scale)
        z = q_z.rsample()  # [K, N, 2], the guide's draw
        logits = m2.decoder.net(torch.cat([z, one_hot], -1))
        log_lik = dist.Bernoulli(logits=logits).log_prob(x).sum(-1)
        log_p = -math.log(k) + dist.Normal(0.0, 1.0).log_prob(z).sum(-1) + log_lik
        cost = log_p - q_z.log_prob(z).sum(-1)  # [K, N]: L(x_n, y) for one draw
        log_q = F.log_softmax(m2.classifier(x), -1).T  # [K, N]
        total = 0.0
        for i in range(n):
            if y[i] >= 0:
                total += float(cost[y[i], i])  # q(y|x) = 1 on the label, log q = 0
            else:
                total += float((log_q[:, i].exp() * (cost[:, i] - log_q[:, i])).sum())
    assert -ours.item() == pytest.approx(total, abs=1e-9)


def test_loss_and_grads_match_pyro_and_average_particles():
    m2, x, y = m2_and_data()
    for elbo_cls in (EnumELBO, TraceEnum_ELBO):
        m2.zero_grad()
        pyro.set_rng_seed(2)
        elbo = elbo_cls(num_particles=3, vectorize_particles=True, max_plate_nesting=1)
        loss = elbo.loss_and_grads(m2.model, m2.guide, x, y)
        grads = [p.grad.clone() for p in m2.parameters()]
        pyro.set_rng_seed(2)
        again = elbo.loss(m2.model, m2.guide, x, y)
        if elbo_cls is EnumELBO:
            ours = (loss, again, grads)
    assert ours[0] == pytest.approx(loss, abs=1e-9) and ours[1] == pytest.approx(again, abs=1e-9)
    for a, b in zip(ours[2], grads, strict=True):
        assert torch.allclose(a, b, atol=1e-9, rtol=1e-9)


def test_weight_zero_cells_with_infinite_cost_are_dropped_as_pyro_drops_them(float64):
    def model():
        with pyro.plate("data", 2):
            c = pyro.sample("c", dist.Categorical(torch.tensor([0.5, 0.5])))
            impossible = torch.tensor([-math.inf, -0.5])  # c = 1 cannot explain example 0
            pyro.factor("f", torch.where(c == 0, 0.0, impossible))
            pyro.sample("x", dist.Normal(c.double(), 1.0), obs=torch.tensor([1.0, 0.0]))

    def guide():
        logits = pyro.param("logits", torch.tensor([[2.0, -1e4], [0.3, -0.2]]))
        with pyro.plate("data", 2):
            pyro.sample("c", dist.Categorical(logits=logits), infer={"enumerate": "parallel"})

    model_trace, guide_trace = traces(model, guide)
    assert _direct_costs(model_trace, guide_trace) is not None
    ours, pyros = dice_elbo(model_trace, guide_trace), _compute_dice_elbo(model_trace, guide_trace)
    assert math.isfinite(ours.item()) and ours.item() == pytest.approx(pyros.item(), abs=1e-9)
    (g_ours,) = torch.autograd.grad(ours, [pyro.param("logits")], retain_graph=True)
    (g_pyro,) = torch.autograd.grad(pyros, [pyro.param("logits")])
    assert torch.isfinite(g_ours).all() and torch.allclose(g_ours, g_pyro, atol=1e-9)


@pytest.mark.filterwarnings(r"ignore:(?s).*TraceEnum_ELBO found no sample sites:UserWarning")
def test_a_score_function_site_is_one_factor_too():
    def model(x):
        with pyro.plate("data", len(x)):
            c = pyro.sample("c", dist.Bernoulli(0.3))
            pyro.sample("x", dist.Normal(2.0 * c, 1.0), obs=x)

    def guide(x):
        p = pyro.param("p", torch.tensor([0.2, 0.7, 0.5]))
        with pyro.plate("data", len(x)):
            pyro.sample("c", dist.Bernoulli(p))  # not enumerated: a draw, a DiCE factor

    x = torch.tensor([0.1, 2.5, 1.0])
    pyro.set_rng_seed(0)
    model_trace, guide_trace = traces(model, guide, x)
    assert _direct_costs(model_trace, guide_trace) is not None
    ours, pyros = dice_elbo(model_trace, guide_trace), _compute_dice_elbo(model_trace, guide_trace)
    assert ours.item() == pytest.approx(pyros.item(), abs=1e-6)
    (g_ours,) = torch.autograd.grad(ours, [pyro.param("p")], retain_graph=True)
    (g_pyro,) = torch.autograd.grad(pyros, [pyro.param("p")])
    assert torch.allclose(g_ours, g_pyro, atol=1e-6)


@pytest.mark.filterwarnings(r"ignore:(?s).*TraceEnum_ELBO found no sample sites:UserWarning")
def test_a_guide_without_factors_sums_its_costs_as_pyro_does():
    vae = VAE(5, 2, hidden=(4,), seed=0).double()
    x = binary(6, 5)
    model_trace, guide_trace = traces(vae.model, vae.guide, x)
    assert _direct_costs(model_trace, guide_trace)[0] is None
    ours, pyros = dice_elbo(model_trace, guide_trace), _compute_dice_elbo(model_trace, guide_trace)
    assert ours.item() == pytest.approx(pyros.item(), abs=1e-9)
    params = list(vae.parameters())
    g_ours = torch.autograd.grad(ours, params, retain_graph=True)
    for a, b in zip(g_ours, torch.autograd.grad(pyros, params), strict=True):
        assert torch.allclose(a, b, atol=1e-9, rtol=1e-9)


def test_other_structures_are_left_to_pyro():
    mix = MixtureVAE(4, 3, z_dim=2, hidden=(5,), seed=0)  # the model enumerates c
    x = binary(6, 4).float()
    assert _direct_costs(*traces(mix.model, mix.guide, x)) is None

    def model():
        with pyro.plate("data", 3):
            a = pyro.sample("a", dist.Bernoulli(0.4))
            b = pyro.sample("b", dist.Bernoulli(0.5 + 0.3 * a))
            pyro.sample("x", dist.Normal(a + b, 1.0), obs=torch.tensor([0.0, 1.0, 2.0]))

    def guide():
        with pyro.plate("data", 3):
            for name in "ab":  # two enumerated sites: a product of factors, Pyro's ring
                pyro.sample(name, dist.Bernoulli(0.3), infer={"enumerate": "parallel"})

    model_trace, guide_trace = traces(model, guide)
    assert _direct_costs(model_trace, guide_trace) is None
    pyro.set_rng_seed(1)
    ours = EnumELBO().loss(model, guide)
    pyro.set_rng_seed(1)
    assert ours == pytest.approx(TraceEnum_ELBO(max_plate_nesting=1).loss(model, guide), abs=1e-6)
