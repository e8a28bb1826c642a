"""ConditionalVAE: labels, shapes, conditioning, gradients, bad labels."""

import json

import pyro
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO

from pvae.models import MODELS, ConditionalVAE, ELBOTerms


@pytest.mark.parametrize("net,x_dim,kw", [("mlp", 6, {}), ("conv", (8, 8), {"channels": (2,)})])
def test_shapes_with_integer_and_one_hot_labels(net, x_dim, kw):
    cvae = ConditionalVAE(x_dim, 2, num_classes=3, hidden=(4,), net=net, **kw)
    x = torch.bernoulli(torch.rand(5, *cvae.x_shape))
    y = torch.tensor([0, 1, 2, 2, 1])
    onehot = torch.nn.functional.one_hot(y, 3).float()
    pyro.set_rng_seed(1)
    a = cvae.elbo_terms(x, y)
    pyro.set_rng_seed(1)
    b = cvae.elbo_terms(x, onehot)
    assert isinstance(a, ELBOTerms) and a.kl_prior.shape == (5,)
    torch.testing.assert_close(a.reconstruction, b.reconstruction)
    tr = pyro.poutine.trace(cvae.model).get_trace(x, y)
    assert tr.nodes["z"]["value"].shape == (5, 2)
    assert cvae.encode(x, y)[0].shape == (5, 2)
    assert cvae.decode(torch.zeros(5, 2), 1).batch_shape == (5,)
    assert cvae.reconstruct(x, y).shape == (5, *cvae.x_shape)
    assert cvae.sample(4, y=2).shape == (4, *cvae.x_shape)
    assert cvae.sample(4).shape == (4, *cvae.x_shape)
    assert cvae.interpolate(x[0], x[1], steps=3, y=0).shape == (3, *cvae.x_shape)
    assert cvae.traverse(x[0], 0, [0.0, 1.0], y=1).shape == (2, *cvae.x_shape)


def test_label_changes_the_decoder_and_sample_uses_it():
    cvae = ConditionalVAE(3, 2, num_classes=2, hidden=())
    z = torch.zeros(1, 2)
    lin = cvae.decoder.mlp.linears[0]
    for label in (0, 1):
        expected = torch.sigmoid(lin(torch.cat([z, torch.eye(2)[label : label + 1]], -1)))
        torch.testing.assert_close(cvae.decode(z, label).mean, expected)
    pyro.set_rng_seed(3)
    z = torch.randn(4, 2)
    pyro.set_rng_seed(3)
    torch.testing.assert_close(cvae.sample(4, y=1), cvae.decode(z, 1).mean)


def test_gradients_reach_every_parameter_and_training_runs():
    cvae = ConditionalVAE(4, 2, num_classes=2, hidden=(3,), activation="tanh")
    x = torch.bernoulli(torch.rand(6, 4))
    y = torch.tensor([0, 1, 0, 1, 0, 1])
    Trace_ELBO().loss_and_grads(cvae.model, cvae.guide, x, y)
    for name, p in cvae.named_parameters():
        assert p.grad is not None and bool(p.grad.abs().sum() > 0), name
    svi = SVI(cvae.model, cvae.guide, pyro.optim.Adam({"lr": 0.05}), Trace_ELBO())
    losses = [svi.step(x, y) for _ in range(10)]
    assert all(map(torch.isfinite, map(torch.tensor, losses)))


def test_config_round_trip():
    cvae = ConditionalVAE(5, 2, num_classes=4, hidden=(3,), beta=2.0)
    config = json.loads(json.dumps(cvae.config))
    rebuilt = MODELS["ConditionalVAE"](**config)
    assert rebuilt.num_classes == 4 and rebuilt.beta == 2.0
    rebuilt.load_state_dict(cvae.state_dict())


@pytest.mark.parametrize(
    "y,match",
    [
        (
            torch.tensor([0, 3]),
            r"`y` must hold integer labels in \[0, 3\), got values in \[0, 3\]",
        ),
        (torch.tensor([0.5, 1.0]), r"integer labels"),
        (torch.tensor([0, 1, 2]), r"`y` must be 2 integer labels \(shape \[2\]\)"),
        (torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0]]), "one-hot"),
    ],
)
def test_bad_labels_are_refused(y, match):
    cvae = ConditionalVAE(2, 1, num_classes=3, hidden=())
    with pytest.raises(ValueError, match=match):
        cvae.model(torch.ones(2, 2), y)


def test_bad_num_classes():
    for bad in (0, True, 2.0):
        with pytest.raises(ValueError, match=r"`num_classes` must be a positive integer, got"):
            ConditionalVAE(2, 1, num_classes=bad)


def test_seed_fixes_the_initial_weights_and_leaves_the_rng_alone():
    before = torch.get_rng_state()
    a = ConditionalVAE(4, 2, num_classes=3, hidden=(3,), seed=5)
    b = MODELS["ConditionalVAE"](**json.loads(json.dumps(a.config)))
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    c = ConditionalVAE(4, 2, num_classes=3, hidden=(3,), seed=6)
    assert not torch.equal(a.decoder.mlp.linears[0].weight, c.decoder.mlp.linears[0].weight)


@pytest.mark.parametrize("beta", [0.0, 4.0])
def test_beta_scales_only_the_latent_sites(beta):
    cvae = ConditionalVAE(3, 2, num_classes=2, hidden=(), beta=beta, seed=0)
    x, y = torch.bernoulli(torch.rand(4, 3)), torch.tensor([0, 1, 1, 0])
    guide_tr = pyro.poutine.trace(cvae.guide).get_trace(x, y)
    model_tr = pyro.poutine.trace(pyro.poutine.replay(cvae.model, trace=guide_tr)).get_trace(x, y)
    model_tr.compute_log_prob()
    guide_tr.compute_log_prob()
    for tr in (model_tr, guide_tr):
        assert tr.nodes["z"]["scale"] == beta and tr.nodes["z"]["mask"] is None
        torch.testing.assert_close(
            tr.nodes["z"]["log_prob"], beta * tr.nodes["z"]["unscaled_log_prob"]
        )
    assert model_tr.nodes["x"]["scale"] == 1.0
    # Trace_ELBO's single-sample loss is -(log p(x|z) + beta (log p(z) - log q(z|x)))
    pyro.set_rng_seed(4)
    loss = Trace_ELBO().loss(cvae.model, cvae.guide, x, y)
    pyro.set_rng_seed(4)  # the same draw of z, traced by hand
    guide_tr = pyro.poutine.trace(cvae.guide).get_trace(x, y)
    model_tr = pyro.poutine.trace(pyro.poutine.replay(cvae.model, trace=guide_tr)).get_trace(x, y)
    model_tr.compute_log_prob()
    guide_tr.compute_log_prob()
    z_term = model_tr.nodes["z"]["unscaled_log_prob"] - guide_tr.nodes["z"]["unscaled_log_prob"]
    expected = -(model_tr.nodes["x"]["unscaled_log_prob"] + beta * z_term).sum().item()
    assert loss == pytest.approx(expected, abs=1e-5)


def test_conv_cvae_broadcasts_over_a_particle_plate():
    cvae = ConditionalVAE((8, 8), 2, num_classes=3, net="conv", channels=(2,), hidden=())
    x, y = torch.bernoulli(torch.rand(4, 8, 8)), torch.tensor([0, 1, 2, 0])
    loss = Trace_ELBO(num_particles=3, vectorize_particles=True, max_plate_nesting=1).loss(
        cvae.model, cvae.guide, x, y
    )
    assert torch.isfinite(torch.tensor(loss))
