"""pvae.models.networks: MLP, Gaussian head, MLP and conv encoder/decoder builders."""

import pytest
import torch
import torch.nn.functional as F

from pvae.models.networks import (
    MLP,
    ConvDecoder,
    ConvEncoder,
    GaussianHead,
    MLPDecoder,
    MLPEncoder,
)


def test_mlp_is_the_composition_of_its_layers():
    mlp = MLP(3, 2, hidden=(4,), activation="tanh", out_activation="sigmoid")
    x = torch.randn(5, 3)
    a, b = mlp.linears
    torch.testing.assert_close(mlp(x), torch.sigmoid(b(torch.tanh(a(x)))))


def test_gaussian_head_is_loc_and_softplus_scale():
    head = GaussianHead(3, 2)
    h = torch.randn(5, 3)
    loc, scale = head(h)
    torch.testing.assert_close(loc, head.loc(h))
    torch.testing.assert_close(scale, F.softplus(head.scale(h)) + 1e-6)
    with torch.no_grad():
        head.scale.bias.fill_(-200.0)  # softplus underflows; the floor keeps scale > 0
    assert bool((head(torch.zeros(1, 3))[1] > 0).all())


@pytest.mark.parametrize("shape", [(6,), (4, 4), (1, 8, 8)])
def test_mlp_encoder_decoder_shapes_with_conditioning(shape):
    enc = MLPEncoder(shape, 2, hidden=(5,), cond_dim=3)
    dec = MLPDecoder(2, shape, hidden=(5,), cond_dim=3)
    c = torch.eye(3)[[0, 1, 2, 0]]
    loc, scale = enc(torch.zeros(4, *shape), c)
    assert loc.shape == scale.shape == (4, 2)
    assert dec(loc, c).shape == (4, *shape)


@pytest.mark.parametrize(
    "shape,channels",
    [
        ((8, 8), (2, 3)),
        ((28, 28), (2, 3)),
        ((1, 28, 28), (2, 3, 4)),
        ((3, 7, 9), (2,)),
        ((8, 8), ()),
    ],
)
def test_conv_encoder_decoder_restore_the_image_shape(shape, channels):
    enc = ConvEncoder(shape, 2, channels=channels, hidden=(5,))
    dec = ConvDecoder(2, shape, channels=channels, hidden=(5,))
    loc, scale = enc(torch.zeros(3, *shape))
    assert loc.shape == scale.shape == (3, 2)
    assert dec(loc).shape == (3, *shape)
    c = torch.eye(2)[[0, 1, 1]]
    cond = ConvDecoder(2, shape, channels=channels, cond_dim=2)
    assert cond(loc, c).shape == (3, *shape)
    assert ConvEncoder(shape, 2, channels=channels, cond_dim=2)(torch.zeros(3, *shape), c)[
        0
    ].shape == (3, 2)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: MLP(0, 2), r"`in_dim` must be a positive integer, got 0"),
        (lambda: MLP(2, 2, hidden=(4, -1)), r"`hidden` must be a positive integer, got -1"),
        (lambda: MLP(2, 2, activation="swish"), r"`activation` must be one of"),
        (lambda: ConvEncoder((8,), 2), r"`image_shape` must be \(H, W\) or \(C, H, W\)"),
        (lambda: GaussianHead(3, 0), r"`z_dim` must be a positive integer, got 0"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()
