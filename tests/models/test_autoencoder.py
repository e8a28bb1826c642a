"""Autoencoder: the lecture's single-layer formula, the squared-error loss, training."""

import json

import pyro
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO

from pvae.models import MODELS, VAE, Autoencoder


def test_single_layer_is_sigmoid_wx_plus_b_with_its_own_weights():
    ae = Autoencoder(5, 3).double()
    x = torch.rand(4, 5, dtype=torch.float64)
    (enc,), (dec,) = ae.encoder.linears, ae.decoder.linears
    h = torch.sigmoid(x @ enc.weight.T + enc.bias)
    torch.testing.assert_close(ae.encode(x), h, atol=1e-12, rtol=0)
    x_hat = h @ dec.weight.T + dec.bias
    torch.testing.assert_close(ae.reconstruct(x), x_hat, atol=1e-12, rtol=0)
    error = ((x - x_hat) ** 2).sum(-1)
    torch.testing.assert_close(ae.reconstruction_error(x), error, atol=1e-12, rtol=0)
    assert sum(p.numel() for p in ae.parameters()) == 5 * 3 + 3 + 3 * 5 + 5


def test_pyro_loss_is_exactly_the_summed_squared_error():
    ae = Autoencoder((2, 3), 2, hidden=(4,)).double()
    x = torch.rand(7, 2, 3, dtype=torch.float64)
    loss = Trace_ELBO().loss(ae.model, ae.guide, x)
    expected = ((x - ae.reconstruct(x)) ** 2).sum().item()
    assert loss == pytest.approx(expected, abs=1e-9)
    t = ae.elbo_terms(x)
    assert -(t.reconstruction - ae.beta * t.kl_prior).sum().item() == pytest.approx(
        expected, abs=1e-9
    )


def test_svi_training_lowers_the_squared_error_and_gradients_reach_every_parameter():
    pyro.set_rng_seed(0)
    ae = Autoencoder(4, 2, hidden=(8,), activation="tanh")
    x = torch.rand(32, 4)
    Trace_ELBO().loss_and_grads(ae.model, ae.guide, x)
    for name, p in ae.named_parameters():
        assert p.grad is not None and bool(p.grad.abs().sum() > 0), name
    svi = SVI(ae.model, ae.guide, pyro.optim.Adam({"lr": 0.02}), Trace_ELBO())
    losses = [svi.step(x) for _ in range(200)]
    assert losses[-1] < 0.5 * losses[0]
    assert losses[-1] == pytest.approx(ae.reconstruction_error(x).sum().item(), rel=0.05)


def test_seed_fixes_the_initial_weights_and_leaves_the_rng_alone():
    before = torch.get_rng_state()
    a, b = Autoencoder(4, 2, hidden=(3,), seed=0), Autoencoder(4, 2, hidden=(3,), seed=0)
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    c = Autoencoder(4, 2, hidden=(3,), seed=1)
    assert not torch.equal(a.encoder.linears[0].weight, c.encoder.linears[0].weight)


def test_attributes_config_and_sample():
    ae = Autoencoder((8, 8), 3, hidden=(5,))
    assert ae.objective == "squared_error" and VAE.objective == "elbo"
    assert ae.z_dim == ae.code_dim == 3
    config = json.loads(json.dumps(ae.config))
    rebuilt = MODELS["Autoencoder"](**config)
    rebuilt.load_state_dict(ae.state_dict())
    ae.beta = 0.3  # KL annealing may set it; there is no KL term
    assert ae.sample(6).shape == (6, 8, 8)
    pyro.set_rng_seed(2)
    codes = torch.rand(6, 3)
    pyro.set_rng_seed(2)
    torch.testing.assert_close(ae.sample(6), ae.decode(codes))


@pytest.mark.parametrize(
    "x,match",
    [
        (torch.ones(2, 4), r"`x` must have shape \[N, 3\], got \[2, 4\]"),
        (torch.tensor([[0.0, float("nan"), 1.0]]), "1 NaN value"),
        (torch.ones(2, 3, dtype=torch.int64), "`x` must have dtype torch.float32"),
    ],
)
def test_bad_input_is_refused(x, match):
    ae = Autoencoder(3, 2)
    for call in (ae.model, ae.guide, ae.encode, ae.reconstruction_error):
        with pytest.raises(ValueError, match=match):
            call(x)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match=r"`code_dim` must be a positive integer, got 0"):
        Autoencoder(3, 0)
    with pytest.raises(ValueError, match=r"`code_dim` must be a positive integer, got True"):
        Autoencoder(3, True)
    with pytest.raises(ValueError, match="`activation` must be one of"):
        Autoencoder(3, 2, activation="step")
    with pytest.raises(ValueError, match="`output_activation` must be one of"):
        Autoencoder(3, 2, output_activation="step")
    with pytest.raises(ValueError, match="`seed` must be None or an integer from 0 to"):
        Autoencoder(3, 2, seed=-1)
    with pytest.raises(ValueError, match=r"`n` must be a positive integer, got 2.5"):
        Autoencoder(3, 2).sample(2.5)
    with pytest.raises(ValueError, match=r"`h` must have shape \[N, 2\]"):
        Autoencoder(3, 2).decode(torch.zeros(2, 3))
