r"""Pictures of the latent space: codes as points, traversals, interpolations.

:func:`latent_scatter` draws the encoder means :math:`\mathbb{E}_q[z \mid x]` (PCA to two
dimensions when :math:`z` has more); :func:`traversal` and :func:`interpolation` draw the
decoded images of ``vae.traverse`` and ``vae.interpolate``.

Examples
--------
>>> fig = latent_scatter(torch.tensor([[0.0, 1.0], [2.0, 3.0]]))
>>> fig.axes[0].collections[0].get_offsets().tolist()
[[0.0, 1.0], [2.0, 3.0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch  # noqa: F401 (the examples use it)

from pvae.app.plot.canvas import as_array, as_images, new_figure, show_images

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["interpolation", "latent_scatter", "traversal"]


def latent_scatter(
    z: Any,
    labels: Any = None,
    *,
    classes: Sequence[str] | None = None,
    title: str = r"Latent space: encoder means $\mathbb{E}_q[z \mid x]$",
) -> Figure:
    """Codes as points, coloured by label: the first two dimensions, or PCA when z > 2.

    Parameters
    ----------
    z : torch.Tensor or numpy.ndarray
        Codes, shape ``(N, K)``, e.g. the ``loc`` of ``vae.encode(x)``.
    labels : array-like of int, optional
        Class of each row.
    classes : sequence of str, optional
        Legend names, indexed by label.
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        One axes; its x/y labels say which projection is drawn.

    Examples
    --------
    >>> fig = latent_scatter(torch.randn(50, 5), torch.arange(50) % 3)
    >>> fig.axes[0].get_xlabel()[:3]
    'PC1'
    """
    codes = as_array(z, "z")
    if codes.ndim != 2:
        raise ValueError(f"`z` must have shape (N, K), got {codes.shape}.")
    if codes.shape[1] > 2:
        centred = codes - codes.mean(0)
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        points = centred @ vt[:2].T
        share = s**2 / np.sum(s**2)
        names = [f"PC{i + 1} ({100 * share[i]:.0f}% of variance)" for i in range(2)]
    elif codes.shape[1] == 2:
        points, names = codes, ["$z_1$", "$z_2$"]
    else:
        points = np.column_stack([codes[:, 0], np.zeros(len(codes))])
        names = ["$z_1$", ""]
    fig = new_figure(6.0, 5.0)
    ax = fig.subplots()
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=8, alpha=0.7)
    else:
        y = as_array(labels, "labels").astype(int)
        if y.shape != (len(points),):
            raise ValueError(f"`labels` must have shape ({len(points)},), got {y.shape}.")
        import matplotlib as mpl

        cmap = mpl.colormaps["tab10"]
        for k in np.unique(y):
            name = classes[k] if classes is not None and k < len(classes) else str(k)
            pts = points[y == k]
            ax.scatter(pts[:, 0], pts[:, 1], s=8, alpha=0.75, color=cmap(k % 10), label=name)
        ax.legend(markerscale=2, fontsize=8, loc="best", title="label")
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.set_title(title, fontsize=11)
    return fig


def traversal(
    images: Any,
    image_shape: Sequence[int],
    values: Sequence[float],
    *,
    dims: Sequence[int] | None = None,
    title: str = "Latent traversal: one dimension of z varied, the others fixed",
) -> Figure:
    """Rows of decoded images, one row per latent dimension varied over ``values``.

    Parameters
    ----------
    images : torch.Tensor or numpy.ndarray
        Shape ``(num_dims, len(values), D)``: row ``d`` is e.g.
        ``vae.traverse(x, dims[d], values)``.
    image_shape : tuple of int
        ``(H, W)``.
    values : sequence of float
        The values of the varied dimension (column labels).
    dims : sequence of int, optional
        Which dimension each row varies (row labels); default ``0, 1, ...``.
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        One axes, labelled ``z_d`` per row and by value per column.

    Examples
    --------
    >>> fig = traversal(torch.rand(2, 5, 64), (8, 8), [-2, -1, 0, 1, 2])
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['$z_{0}$', '$z_{1}$']
    """
    grid = as_array(images, "images")
    if grid.ndim != 3 or grid.shape[1] != len(values):
        raise ValueError(
            f"`images` must have shape (num_dims, len(values)={len(values)}, D), got {grid.shape}."
        )
    rows, cols = grid.shape[:2]
    dims = list(range(rows)) if dims is None else list(dims)
    height, width = (int(s) for s in image_shape)
    fig = new_figure(min(0.8 * cols, 12) + 1.2, 0.8 * rows * height / width + 1.0)
    ax = fig.subplots()
    show_images(ax, as_images(grid.reshape(rows * cols, -1), image_shape, "images"), cols)
    ax.set_yticks([r * (height + 1) + height / 2 - 0.5 for r in range(rows)])
    ax.set_yticklabels([f"$z_{{{d}}}$" for d in dims])
    ax.set_xticks([c * (width + 1) + width / 2 - 0.5 for c in range(cols)])
    ax.set_xticklabels([f"{v:g}" for v in values], fontsize=8)
    ax.tick_params(length=0)
    fig.suptitle(title)
    return fig


def interpolation(
    images: Any,
    image_shape: Sequence[int],
    *,
    title: str = "Interpolation: decoding the straight path between two codes",
) -> Figure:
    """A strip of decoded images along a path in latent space, e.g. ``vae.interpolate``.

    Parameters
    ----------
    images : torch.Tensor or numpy.ndarray
        Rows of pixels, first and last the two endpoints; several paths may be stacked
        as ``(num_paths, steps, D)``.
    image_shape : tuple of int
        ``(H, W)``.
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        One axes.

    Examples
    --------
    >>> len(interpolation(torch.rand(8, 64), (8, 8)).axes)
    1
    """
    grid = as_array(images, "images")
    tiles = as_images(
        grid.reshape(-1, grid.shape[-1]) if grid.ndim == 3 else grid, image_shape, "images"
    )
    steps = grid.shape[-2] if grid.ndim == 3 else len(tiles)
    fig = new_figure(min(0.9 * steps, 12) + 0.4, 0.9 * len(tiles) / steps + 0.8)
    ax = fig.subplots()
    show_images(ax, tiles, steps)
    ax.set_xlabel(r"start $\rightarrow$ end")
    fig.suptitle(title)
    return fig
