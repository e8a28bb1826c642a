"""Tests for pvae.training.elbos: AnalyticELBO against Pyro's TraceMeanField_ELBO."""

import pyro
import pytest
import torch

from pvae.models import VAE, ConditionalVAE
from pvae.training.elbos import AnalyticELBO, make_elbo, uses_fixed_shapes
from pvae.training.step import SVIStep


def _vae(beta=1.0):
    torch.manual_seed(0)
    return VAE(6, 2, hidden=(5,), likelihood="continuous_bernoulli", beta=beta)


def _grads(vae):
    return [p.grad.clone() for p in vae.parameters()]


@pytest.mark.parametrize("beta", [1.0, 0.25])
@pytest.mark.parametrize("num_particles", [1, 3])
def test_loss_and_gradients_are_trace_meanfield_elbos(beta, num_particles):
    """Same draws (one rsample per example and particle), same loss and gradients."""
    x = torch.rand(7, 6)
    vae = _vae(beta)
    results = []
    for elbo in (AnalyticELBO(num_particles), pyro.infer.TraceMeanField_ELBO(num_particles)):
        vae.zero_grad(set_to_none=True)
        pyro.set_rng_seed(4)
        loss = elbo.loss_and_grads(vae.model, vae.guide, x)
        results.append((loss, _grads(vae)))
    (a, grads_a), (b, grads_b) = results
    assert a == pytest.approx(b, rel=1e-5)
    for ga, gb in zip(grads_a, grads_b, strict=True):
        torch.testing.assert_close(ga, gb, rtol=1e-4, atol=1e-6)
    pyro.set_rng_seed(4)
    assert AnalyticELBO(num_particles).loss(vae.model, vae.guide, x) == pytest.approx(a, rel=1e-6)


def test_pyro_svi_trains_with_it_step_for_step_as_with_trace_meanfield():
    """pyro.infer.SVI(vae.model, vae.guide, optim, AnalyticELBO()) on a fresh, never-run VAE."""
    x = torch.rand(32, 6)
    trajectories = []
    for elbo in (AnalyticELBO(), pyro.infer.TraceMeanField_ELBO()):
        pyro.clear_param_store()
        vae = _vae()
        svi = pyro.infer.SVI(vae.model, vae.guide, pyro.optim.Adam({"lr": 0.02}), elbo)
        pyro.set_rng_seed(1)
        losses = [svi.step(x) for _ in range(40)]
        trajectories.append((losses, [p.detach().clone() for p in vae.parameters()]))
        assert len(pyro.get_param_store()) == len(list(vae.parameters()))  # no duplicates
    (ours, params_ours), (theirs, params_theirs) = trajectories
    assert ours == pytest.approx(theirs, rel=1e-4)
    assert sum(ours[-5:]) < sum(ours[:5])  # it trained
    for a, b in zip(params_ours, params_theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_conditional_vae_and_the_step_object():
    torch.manual_seed(0)
    cvae = ConditionalVAE(4, 2, num_classes=3, hidden=(5,), likelihood="continuous_bernoulli")
    x, y = torch.rand(12, 4), torch.arange(12) % 3
    step = SVIStep(cvae, elbo="analytic", lr=0.05)
    losses = step.run(30, x, y)
    assert len(step.params) == len(list(cvae.parameters())) and losses[-1] < losses[0]


def test_refuses_what_it_cannot_compute():
    vae = _vae()

    def model(x):
        pass

    with pytest.raises(ValueError, match="`AnalyticELBO` needs the `model` method of a torch"):
        AnalyticELBO().loss(model, vae.guide, torch.rand(2, 6))
    with pytest.raises(ValueError, match="`guide` must be the same object's `guide`"):
        AnalyticELBO().loss(vae.model, model, torch.rand(2, 6))
    with pytest.raises(NotImplementedError, match="without traces"):
        AnalyticELBO()._get_trace(vae.model, vae.guide, (), {})
    with pytest.raises(ValueError, match="`num_particles` must be a positive integer"):
        AnalyticELBO(0)


def test_make_elbo_names():
    assert (
        type(make_elbo("analytic", 2)) is AnalyticELBO
        and make_elbo("analytic", 2).num_particles == 2
    )
    jit = make_elbo("jit")
    assert uses_fixed_shapes(jit) and jit.ignore_jit_warnings
    own = pyro.infer.Trace_ELBO(num_particles=5)
    assert make_elbo(own) is own
