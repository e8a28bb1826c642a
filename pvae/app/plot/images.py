r"""Image grids of what a model generates: reconstructions, samples, AE against VAE.

Every function takes rows of pixels (tensors or arrays, one image per row, or
``(N, H, W)`` images) with an ``image_shape`` ``(H, W)`` and returns a
:class:`matplotlib.figure.Figure`.

Examples
--------
>>> fig = samples(torch.rand(16, 64), (8, 8), ncols=4)
>>> fig.axes[0].get_images()[0].get_array().shape  # 4 x 4 tiles of 8 x 8, 1-pixel gaps
(35, 35)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch  # noqa: F401 (the examples use it)

from pvae._checks import positive_int
from pvae.app.plot.canvas import as_images, new_figure, show_images

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["ae_vs_vae", "reconstructions", "samples"]


def reconstructions(
    x: Any,
    reconstruction: Any,
    image_shape: Sequence[int],
    *,
    n: int = 10,
    title: str = "Inputs (top) and their reconstructions (bottom)",
) -> Figure:
    r"""Inputs above their reconstructions :math:`\hat x = \mathrm{Dec}(\mathrm{Enc}(x))`.

    Parameters
    ----------
    x, reconstruction : torch.Tensor or numpy.ndarray
        Rows of pixels (or ``(N, H, W)`` images); row ``i`` of one belongs to row ``i`` of
        the other.
    image_shape : tuple of int
        ``(H, W)``.
    n : int
        How many pairs to draw (the first ``n``).
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: inputs, reconstructions.

    Examples
    --------
    >>> x = torch.rand(4, 64)
    >>> fig = reconstructions(x, x.round(), (8, 8))
    >>> [ax.get_title() for ax in fig.axes]
    ['input x', 'reconstruction']
    """
    n = positive_int("n", n)
    inputs = as_images(x, image_shape, "x")[:n]
    outputs = as_images(reconstruction, image_shape, "reconstruction")[:n]
    if len(inputs) != len(outputs):
        raise ValueError(
            f"`x` and `reconstruction` must have as many rows, got {len(inputs)} and "
            f"{len(outputs)}."
        )
    fig = new_figure(min(1.0 * len(inputs), 12) + 0.5, 3.0)
    top, bottom = fig.subplots(2, 1)
    show_images(top, inputs, len(inputs), "input x")
    show_images(bottom, outputs, len(outputs), "reconstruction")
    fig.suptitle(title)
    return fig


def samples(
    images: Any,
    image_shape: Sequence[int],
    *,
    ncols: int = 8,
    title: str = r"Samples from the prior: decode $z \sim \mathcal{N}(0, I)$",
) -> Figure:
    """A grid of generated images, e.g. ``vae.sample(64)``.

    Parameters
    ----------
    images : torch.Tensor or numpy.ndarray
        Rows of pixels.
    image_shape : tuple of int
        ``(H, W)``.
    ncols : int
        Images per row.
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        One axes.

    Examples
    --------
    >>> len(samples(torch.rand(16, 64), (8, 8)).axes)
    1
    """
    ncols = positive_int("ncols", ncols, example=8)
    tiles = as_images(images, image_shape, "images")
    fig = new_figure(6.0, 6.0 * (-(-len(tiles) // ncols)) / min(ncols, len(tiles)) + 0.6)
    show_images(fig.subplots(), tiles, ncols)
    fig.suptitle(title)
    return fig


def ae_vs_vae(
    ae_images: Any,
    vae_images: Any,
    image_shape: Sequence[int],
    *,
    ncols: int = 6,
    title: str = "Decoding random codes: autoencoder (left) vs VAE (right)",
) -> Figure:
    """Images decoded from random codes by an autoencoder and by a VAE, side by side.

    An autoencoder's code space has no distribution, so random codes land where the
    decoder was never trained and give noise; a VAE's prior :math:`p(z)` is what its
    decoder was trained on, so its samples look like data.

    Parameters
    ----------
    ae_images, vae_images : torch.Tensor or numpy.ndarray
        Rows of pixels, e.g. ``ae.sample(36)`` and ``vae.sample(36)``.
    image_shape : tuple of int
        ``(H, W)``.
    ncols : int
        Images per row in each panel.
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: autoencoder, VAE.

    Examples
    --------
    >>> [a.get_title() for a in ae_vs_vae(torch.rand(4, 64), torch.rand(4, 64), (8, 8)).axes]
    ['autoencoder: random codes', 'VAE: z ~ p(z)']
    """
    ncols = positive_int("ncols", ncols, example=6)
    fig = new_figure(9.0, 5.0)
    left, right = fig.subplots(1, 2)
    show_images(
        left, as_images(ae_images, image_shape, "ae_images"), ncols, "autoencoder: random codes"
    )
    show_images(right, as_images(vae_images, image_shape, "vae_images"), ncols, "VAE: z ~ p(z)")
    fig.suptitle(title)
    return fig
