r"""Amortized encoders and decoders: the neural networks inside the models.

A variational autoencoder needs two networks (Kingma & Welling 2014):

* an **encoder** (recognition model) mapping an example :math:`x` to the parameters of
  :math:`q(z \mid x) = \mathcal{N}(\mathrm{loc}(x), \mathrm{diag}\,\mathrm{scale}(x)^2)`,
* a **decoder** (generative model) mapping a code :math:`z` to the parameters of
  :math:`p(x \mid z)` (logits for Bernoulli pixels, the mean for a Gaussian).

Every encoder here has the signature ``encoder(x, c=None) -> (loc, scale)`` with ``x`` of
shape ``[N, *x_shape]`` and ``loc``, ``scale`` of shape ``[N, z_dim]``; every decoder has
``decoder(z, c=None) -> params`` with ``params`` of shape ``[N, *x_shape]``. The optional
``c`` (shape ``[N, cond_dim]``) is a conditioning vector, e.g. a one-hot label for the
conditional VAE. Any ``torch.nn.Module`` with these signatures can replace them
(``VAE(..., encoder=my_encoder, decoder=my_decoder)``).

Image data of shape ``[N, H, W]`` or ``[N, C, H, W]`` works with both the MLP nets (which
flatten it) and the conv nets (stride-2 convolutions that halve the height and width per
layer; the decoder mirrors them with transposed convolutions), e.g. 8x8 digits and 28x28
Fashion-MNIST.

References
----------
1. Kingma, D. P. and Welling, M. (2014). Auto-Encoding Variational Bayes. ICLR.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from pvae._checks import one_of, positive_int
from pvae.models.base import positive_ints

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "ConvDecoder",
    "ConvEncoder",
    "GaussianHead",
    "MLPDecoder",
    "MLPEncoder",
]

#: Activation names accepted by ``activation=`` arguments.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus,
    "tanh": nn.Tanh,
    "identity": nn.Identity,
}


def _activation(name: str | None, arg: str = "activation") -> nn.Module:
    return nn.Identity() if name is None else ACTIVATIONS[one_of(arg, name, ACTIVATIONS)]()


def _image_shape(shape: Sequence[int], arg: str = "image_shape") -> tuple[int, int, int]:
    """Return (C, H, W) for an image shape given as (H, W) or (C, H, W)."""
    shape = positive_ints(arg, shape)
    if len(shape) not in (2, 3):
        raise ValueError(f"`{arg}` must be (H, W) or (C, H, W), got {shape}.")
    return (1, *shape) if len(shape) == 2 else shape  # type: ignore[return-value]


def _cat(h: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    """Append ``c`` to the features ``h``, broadcasting ``c`` over extra leading dims of ``h``
    (e.g. vectorized particles in front of the data dimension)."""
    if c is None:
        return h
    return torch.cat([h, c.to(h.dtype).expand(*h.shape[:-1], c.shape[-1])], dim=-1)


class MLP(nn.Module):
    """A multilayer perceptron ``Linear -> activation -> ... -> Linear [-> out_activation]``.

    Parameters
    ----------
    in_dim, out_dim : int
        Input and output features.
    hidden : sequence of int
        Hidden layer widths; ``()`` gives a single affine map.
    activation : str
        Activation between layers, one of :data:`ACTIVATIONS`.
    out_activation : str, optional
        Activation after the last layer (``None``: none).

    Examples
    --------
    >>> mlp = MLP(4, 2, hidden=(8,))
    >>> mlp(torch.zeros(3, 4)).shape
    torch.Size([3, 2])
    >>> len(mlp.linears)
    2
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: Sequence[int] = (),
        activation: str = "relu",
        out_activation: str | None = None,
    ) -> None:
        super().__init__()
        _activation(activation), _activation(out_activation, "out_activation")  # validate
        dims = [positive_int("in_dim", in_dim), *positive_ints("hidden", hidden)]
        dims.append(positive_int("out_dim", out_dim))
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            layers.append(nn.Linear(a, b))
            last = i == len(dims) - 2
            layers.append(_activation(out_activation if last else activation))
        self.net = nn.Sequential(*layers)
        self.in_dim, self.out_dim = dims[0], dims[-1]

    @property
    def linears(self) -> list[nn.Linear]:
        """The affine layers, first to last (their ``weight`` and ``bias`` are the parameters)."""
        return [m for m in self.net if isinstance(m, nn.Linear)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class GaussianHead(nn.Module):
    r"""Map features to the ``(loc, scale)`` of a diagonal Gaussian.

    .. math::
        \mathrm{loc} = W_\mu h + b_\mu, \qquad
        \mathrm{scale} = \mathrm{softplus}(W_\sigma h + b_\sigma) + s_{\min}

    Parameters
    ----------
    in_dim : int
        Input features.
    z_dim : int
        Latent dimension.
    min_scale : float
        Floor :math:`s_{\min}` added to the scale so it never underflows to 0.

    Examples
    --------
    >>> loc, scale = GaussianHead(4, 2)(torch.zeros(3, 4))
    >>> loc.shape, bool((scale > 0).all())
    (torch.Size([3, 2]), True)
    """

    def __init__(self, in_dim: int, z_dim: int, min_scale: float = 1e-6) -> None:
        super().__init__()
        self.loc = nn.Linear(positive_int("in_dim", in_dim), positive_int("z_dim", z_dim))
        self.scale = nn.Linear(in_dim, z_dim)
        self.min_scale = float(min_scale)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.loc(h), F.softplus(self.scale(h)) + self.min_scale


def _gaussian_mlp(
    in_dim: int, z_dim: int, hidden: Sequence[int], activation: str
) -> tuple[nn.Module, GaussianHead]:
    """The fully connected part of an encoder: an MLP body (``nn.Identity`` when ``hidden``
    is empty) with widths ``hidden``, then a :class:`GaussianHead`."""
    hidden = positive_ints("hidden", hidden)
    if not hidden:
        return nn.Identity(), GaussianHead(in_dim, z_dim)
    body = MLP(in_dim, hidden[-1], hidden[:-1], activation, activation)
    return body, GaussianHead(hidden[-1], z_dim)


class MLPEncoder(nn.Module):
    """Gaussian encoder ``q(z | x[, c])``: flatten ``x``, append ``c``, MLP, :class:`GaussianHead`.

    Parameters
    ----------
    x_shape : int or sequence of int
        Shape of one example (``64`` or ``(8, 8)``).
    z_dim : int
        Latent dimension.
    hidden : sequence of int
        Hidden widths (``()``: the head reads the input directly).
    activation : str
        Hidden activation.
    cond_dim : int
        Width of the conditioning vector ``c`` (0: unconditional).

    Examples
    --------
    >>> loc, scale = MLPEncoder((8, 8), z_dim=2, hidden=(16,))(torch.zeros(5, 8, 8))
    >>> loc.shape, scale.shape
    (torch.Size([5, 2]), torch.Size([5, 2]))
    """

    def __init__(
        self,
        x_shape: int | Sequence[int],
        z_dim: int,
        hidden: Sequence[int] = (256,),
        activation: str = "relu",
        cond_dim: int = 0,
    ) -> None:
        super().__init__()
        shape = (x_shape,) if isinstance(x_shape, int) else tuple(x_shape)
        in_dim = math.prod(positive_ints("x_shape", shape)) + cond_dim
        self.body, self.head = _gaussian_mlp(in_dim, z_dim, hidden, activation)
        self.num_event_dims = len(shape)

    def forward(
        self, x: torch.Tensor, c: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h = x.reshape(*x.shape[: x.dim() - self.num_event_dims], -1)
        return self.head(self.body(_cat(h, c)))


class MLPDecoder(nn.Module):
    """Decoder ``p(x | z[, c])`` parameters: MLP from ``[z, c]`` to ``x_shape``.

    Parameters
    ----------
    z_dim : int
        Latent dimension.
    x_shape : int or sequence of int
        Shape of one example.
    hidden : sequence of int
        Hidden widths, in the decoder's order (first layer first).
    activation : str
        Hidden activation.
    cond_dim : int
        Width of the conditioning vector ``c``.

    Examples
    --------
    >>> MLPDecoder(2, (8, 8), hidden=(16,))(torch.zeros(5, 2)).shape
    torch.Size([5, 8, 8])
    """

    def __init__(
        self,
        z_dim: int,
        x_shape: int | Sequence[int],
        hidden: Sequence[int] = (256,),
        activation: str = "relu",
        cond_dim: int = 0,
    ) -> None:
        super().__init__()
        shape = (x_shape,) if isinstance(x_shape, int) else tuple(x_shape)
        self.x_shape = positive_ints("x_shape", shape)
        self.mlp = MLP(
            positive_int("z_dim", z_dim) + cond_dim, math.prod(shape), hidden, activation
        )

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        out = self.mlp(_cat(z, c))
        return out.reshape(*out.shape[:-1], *self.x_shape)


def _conv_sizes(size: int, layers: int) -> list[int]:
    sizes = [size]
    for _ in range(layers):
        sizes.append((sizes[-1] - 1) // 2 + 1)  # Conv2d(kernel 3, stride 2, padding 1)
    return sizes


def _conv_geometry(
    image_shape: Sequence[int], channels: Sequence[int]
) -> tuple[int, tuple[int, ...], list[int], list[int]]:
    """Validated ``(C, channels, heights, widths)``: input channels, then the feature-map
    sizes before the first and after each stride-2 convolution (shared by both conv nets)."""
    c, h, w = _image_shape(image_shape)
    channels = positive_ints("channels", channels)
    return c, channels, _conv_sizes(h, len(channels)), _conv_sizes(w, len(channels))


class ConvEncoder(nn.Module):
    """Gaussian encoder for images ``[N, H, W]`` or ``[N, C, H, W]``.

    Each of ``len(channels)`` layers is a 3x3 convolution with stride 2 (halving height and
    width, rounding up) and an activation; the features are flattened, ``c`` is appended,
    and an MLP with widths ``hidden`` feeds a :class:`GaussianHead`.

    Parameters
    ----------
    image_shape : sequence of int
        ``(H, W)`` or ``(C, H, W)``.
    z_dim : int
        Latent dimension.
    channels : sequence of int
        Output channels of each convolution.
    hidden : sequence of int
        Widths of the fully connected layers after the convolutions.
    activation : str
        Activation after each layer.
    cond_dim : int
        Width of the conditioning vector ``c``.

    Examples
    --------
    >>> enc = ConvEncoder((28, 28), z_dim=2, channels=(4, 8))
    >>> [t.shape for t in enc(torch.zeros(3, 28, 28))]
    [torch.Size([3, 2]), torch.Size([3, 2])]
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        z_dim: int,
        channels: Sequence[int] = (16, 32),
        hidden: Sequence[int] = (),
        activation: str = "relu",
        cond_dim: int = 0,
    ) -> None:
        super().__init__()
        c, channels, hs, ws = _conv_geometry(image_shape, channels)
        layers: list[nn.Module] = []
        for a, b in zip((c, *channels), channels, strict=False):
            layers += [nn.Conv2d(a, b, 3, stride=2, padding=1), _activation(activation)]
        self.conv = nn.Sequential(*layers)
        self.image_dims = len(tuple(image_shape))
        flat = (channels[-1] if channels else c) * hs[-1] * ws[-1] + cond_dim
        self.body, self.head = _gaussian_mlp(flat, z_dim, hidden, activation)

    def forward(
        self, x: torch.Tensor, c: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.image_dims == 2:
            x = x.unsqueeze(-3)
        return self.head(self.body(_cat(self.conv(x).flatten(1), c)))


class ConvDecoder(nn.Module):
    """Decoder for images: the mirror image of :class:`ConvEncoder`.

    ``[z, c]`` goes through an MLP with widths ``hidden`` to a ``channels[-1] x h x w`` grid
    (``h``, ``w``: the encoder's smallest feature map), then transposed 3x3 convolutions
    with stride 2 double it back to exactly ``image_shape`` (the last one has no activation:
    its output is the likelihood's parameter, e.g. logits).

    Parameters
    ----------
    z_dim : int
        Latent dimension.
    image_shape : sequence of int
        ``(H, W)`` or ``(C, H, W)``; the output has this shape per example.
    channels : sequence of int
        The channels in the *encoder's* order (the decoder runs them backwards).
    hidden : sequence of int
        Widths of the fully connected layers before the convolutions.
    activation : str
        Hidden activation.
    cond_dim : int
        Width of the conditioning vector ``c``.

    Examples
    --------
    >>> ConvDecoder(2, (8, 8), channels=(4, 8))(torch.zeros(3, 2)).shape
    torch.Size([3, 8, 8])
    >>> ConvDecoder(2, (1, 28, 28), channels=(4, 8))(torch.zeros(3, 2)).shape
    torch.Size([3, 1, 28, 28])
    """

    def __init__(
        self,
        z_dim: int,
        image_shape: Sequence[int],
        channels: Sequence[int] = (16, 32),
        hidden: Sequence[int] = (),
        activation: str = "relu",
        cond_dim: int = 0,
    ) -> None:
        super().__init__()
        c, channels, hs, ws = _conv_geometry(image_shape, channels)
        top = channels[-1] if channels else c
        self.grid = (top, hs[-1], ws[-1])
        hidden = positive_ints("hidden", hidden)
        last_act = activation if channels else None
        self.mlp = MLP(z_dim + cond_dim, math.prod(self.grid), hidden, activation, last_act)
        layers: list[nn.Module] = []
        outs = (*channels[:-1][::-1], c) if channels else ()
        for i, (a, b) in enumerate(zip(channels[::-1], outs, strict=True)):
            size_in, size_out = (hs[-1 - i], ws[-1 - i]), (hs[-2 - i], ws[-2 - i])
            pad = tuple(o - 2 * s + 1 for o, s in zip(size_out, size_in, strict=True))
            layers.append(nn.ConvTranspose2d(a, b, 3, stride=2, padding=1, output_padding=pad))
            if i < len(channels) - 1:
                layers.append(_activation(activation))
        self.deconv = nn.Sequential(*layers)
        self.image_dims = len(tuple(image_shape))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        out = self.deconv(self.mlp(_cat(z, c)).reshape(-1, *self.grid))
        out = out.reshape(*z.shape[:-1], *out.shape[1:])  # keep any leading batch dims
        return out.squeeze(-3) if self.image_dims == 2 else out
