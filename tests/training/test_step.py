"""Tests for pvae.training.step.SVIStep: the checked update, against Pyro's SVI and by hand."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.distributions import constraints

from pvae.training.checkpoint import param_store_state, restore_param_store
from pvae.training.step import SVIStep, TrainingDivergedError


def _normal_mean(x):
    loc = pyro.param("loc", torch.tensor(0.0))
    with pyro.plate("data", len(x)):
        pyro.sample("x", dist.Normal(loc, 1.0), obs=x)


def _no_guide(*args):
    pass


# --- a conjugate pair with a latent mean and a fixed (deterministic) initialisation
def _latent_mean(x):
    mu = pyro.sample("mu", dist.Normal(0.0, 3.0))
    with pyro.plate("data", len(x)):
        pyro.sample("x", dist.Normal(mu, 1.0), obs=x)


def _latent_mean_guide(x):
    m = pyro.param("m", torch.tensor(0.5))
    s = pyro.param("s", torch.tensor(1.0), constraint=constraints.positive)
    pyro.sample("mu", dist.Normal(m, s))


def test_update_is_one_gradient_step_on_the_loss():
    """SGD on -log N(x | loc, 1): the gradient in loc is -sum(x - loc), by hand."""
    x = torch.tensor([1.0, 2.0, 6.0])
    step = SVIStep(_normal_mean, _no_guide, optimizer=torch.optim.SGD, lr=0.1)
    assert step.params == {} and step.num_steps == 0
    params = step.init(x)
    assert list(params) == ["loc"] and params["loc"].grad is None
    loss = step.update(x)
    expected_loss = 0.5 * float((x**2).sum()) + 1.5 * math.log(2 * math.pi)
    assert loss == pytest.approx(expected_loss, rel=1e-6)
    assert step.grad_norm == pytest.approx(9.0)  # |-(1 + 2 + 6)|
    assert pyro.param("loc").item() == pytest.approx(0.9)
    assert pyro.param("loc").unconstrained().grad is None  # cleared after the update
    losses = step.run(60, x)
    assert step.num_steps == 61 and losses[-1] < losses[0]
    assert pyro.param("loc").item() == pytest.approx(3.0, abs=1e-4)  # the MLE, mean(x)


def test_init_leaves_the_random_state_as_it_found_it():
    x = torch.randn(5)
    before = torch.get_rng_state()
    step = SVIStep(_latent_mean, _latent_mean_guide)
    assert sorted(step.init(x)) == ["m", "s"]
    assert torch.equal(torch.get_rng_state(), before)
    assert step.init(x) == step.params  # a second call changes nothing


def test_same_steps_as_pyro_svi_with_the_same_optimizer():
    """Differential: SVIStep(Trace_ELBO, Adam) against pyro.infer.SVI, step for step."""
    x = 2.0 + torch.randn(20)
    losses = {}
    for engine in ("pvae", "pyro"):
        pyro.clear_param_store()
        pyro.set_rng_seed(3)
        if engine == "pvae":
            step = SVIStep(_latent_mean, _latent_mean_guide, lr=0.05)
            losses[engine] = [step.update(x) for _ in range(30)]
        else:
            optim = pyro.optim.Adam({"lr": 0.05})
            svi = pyro.infer.SVI(_latent_mean, _latent_mean_guide, optim, pyro.infer.Trace_ELBO())
            losses[engine] = [svi.step(x) for _ in range(30)]
        losses[engine].append((pyro.param("m").item(), pyro.param("s").item()))
    assert losses["pvae"][:-1] == pytest.approx(losses["pyro"][:-1], rel=1e-5)
    assert losses["pvae"][-1] == pytest.approx(losses["pyro"][-1], rel=1e-5)


def _sqrt_model():
    """Loss (w - 2)^2 + sqrt(w) for w > 0, else (w - 2)^2: finite, but its gradient at w < 0
    is NaN (the unused branch sqrt(w) is NaN there, and `torch.where` passes 0 * NaN back)."""
    w = pyro.param("w", torch.tensor(1.0))
    root = torch.where(w > 0, w.sqrt(), torch.zeros(()))
    pyro.factor("f", -((w - 2.0) ** 2) - root)


def test_a_non_finite_gradient_is_caught_before_the_update_and_cleared():
    # SGD at lr 2 from w = 1: w = 4, then -4.5, where the loss is finite and the gradient NaN
    step = SVIStep(_sqrt_model, _no_guide, optimizer=torch.optim.SGD, lr=2.0)
    step.run(2)
    with pytest.raises(TrainingDivergedError, match=r"gradient of `w` became non-finite") as err:
        step.update()
    assert err.value.parameter == "w" and err.value.step == 3
    assert err.value.loss == pytest.approx(6.5**2)  # (-4.5 - 2)^2 + 0: finite
    assert "Lower `lr` (now 2)" in str(err.value)
    w = pyro.param("w").unconstrained()
    assert w.item() == pytest.approx(-4.5) and w.grad is None  # not updated, gradient cleared


def test_a_non_finite_loss_is_caught_before_the_update():
    def model():
        w = pyro.param("w", torch.tensor(1.0))
        pyro.factor("f", -w * torch.tensor(math.inf))

    step = SVIStep(model, _no_guide, lr=0.1)
    with pytest.raises(TrainingDivergedError, match=r"the loss became inf at step 1; the param"):
        step.update()
    assert pyro.param("w").item() == 1.0 and pyro.param("w").unconstrained().grad is None


def test_clip_norm_clips_the_global_gradient_norm():
    """Two parameters, gradient (-3, -4) of norm 5, clipped to 0.5: SGD moves by 0.5 * g/|g|."""

    def model():
        a = pyro.param("a", torch.tensor(0.0))
        b = pyro.param("b", torch.tensor(0.0))
        pyro.factor("f", 3.0 * a + 4.0 * b)  # loss -3a - 4b

    step = SVIStep(model, _no_guide, optimizer=torch.optim.SGD, lr=1.0, clip_norm=0.5)
    step.update()
    assert step.grad_norm == pytest.approx(5.0)  # before clipping
    assert pyro.param("a").item() == pytest.approx(0.3)
    assert pyro.param("b").item() == pytest.approx(0.4)
    pyro.clear_param_store()
    SVIStep(model, _no_guide, optimizer=torch.optim.SGD, lr=1.0).update()  # no clipping
    assert (pyro.param("a").item(), pyro.param("b").item()) == pytest.approx((3.0, 4.0))


def test_set_lr_and_state_dict_continue_the_same_run():
    x = 2.0 + torch.randn(10)
    pyro.set_rng_seed(1)
    whole = SVIStep(_latent_mean, _latent_mean_guide, lr=0.05)
    whole.run(5, x)
    whole.set_lr(0.01)
    expected = whole.run(5, x)
    pyro.clear_param_store()
    pyro.set_rng_seed(1)
    first = SVIStep(_latent_mean, _latent_mean_guide, lr=0.05)
    first.run(5, x)
    state, rng, values = first.state_dict(), torch.get_rng_state(), param_store_state()
    pyro.clear_param_store()
    pyro.set_rng_seed(99)
    restore_param_store(values)  # as a checkpoint does
    second = SVIStep(_latent_mean, _latent_mean_guide, lr=0.05)
    second.load_state_dict(state)
    second.set_lr(0.01)
    torch.set_rng_state(rng)
    assert second.run(5, x) == expected and second.num_steps == 10 and second.lr == 0.01


def test_arguments_are_checked():
    for kwargs, match in [
        ({"lr": math.inf}, r"`lr` must be a positive, finite number, got inf"),
        ({"lr": math.nan}, r"`lr` must be a positive, finite number, got nan"),
        ({"lr": 0}, r"`lr` must be a positive, finite number"),
        ({"clip_norm": math.nan}, r"`clip_norm` must be a positive, finite number, got nan"),
        ({"num_particles": True}, r"`num_particles` must be a positive integer, got True"),
        ({"num_particles": 2.0}, r"`num_particles` must be a positive integer"),
        ({"optimizer": 3}, r"`optimizer` must be None \(Adam\), a torch.optim"),
        ({"elbo": "bogus"}, r"`elbo` must be one of 'trace', 'meanfield', 'jit', 'analytic'"),
        ({"elbo": "analytic"}, r'`elbo="analytic"` needs a torch.nn.Module'),
        ({"elbo": pyro.infer.Trace_ELBO(), "num_particles": 4}, r"set it|`num_particles`=4"),
    ]:
        with pytest.raises(ValueError, match=match):
            SVIStep(_normal_mean, _no_guide, **kwargs)
    with pytest.raises(ValueError, match="pass `guide=`"):
        SVIStep(_normal_mean)
    step = SVIStep(_normal_mean, _no_guide)
    with pytest.raises(ValueError, match="`lr` must be a positive, finite number"):
        step.set_lr(-1.0)
    with pytest.raises(ValueError, match="`num_steps` must be a positive integer"):
        step.run(2.5, torch.zeros(2))
    assert repr(step).startswith("SVIStep(elbo=Trace_ELBO, optimizer=Adam, lr=0.001")
