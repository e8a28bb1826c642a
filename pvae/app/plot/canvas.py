"""The drawing pieces every figure shares: a pyplot-free figure, image grids, bar charts.

Figures are :class:`matplotlib.figure.Figure` objects made without :mod:`matplotlib.pyplot`
(no global figure manager, no backend needed to draw or save), so they work headless
(Agg) and in notebooks alike. matplotlib is imported only inside these functions.

Examples
--------
>>> mosaic(np.ones((3, 2, 2)), ncols=2).shape  # 2 rows of 2 tiles, 1-pixel NaN gaps
(5, 5)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["GAP", "as_array", "as_images", "bar_chart", "mosaic", "new_figure", "show_images"]

#: Colour of the lines between tiles.
GAP = "#c9d3e0"


def new_figure(width: float, height: float) -> Figure:
    """A constrained-layout figure of ``width`` x ``height`` inches, without pyplot.

    A :class:`~pvae.app.plot.figure.PvaeFigure`: Jupyter displays it when a cell returns it.

    Examples
    --------
    >>> new_figure(4, 3).get_size_inches().tolist()
    [4.0, 3.0]
    """
    from pvae.app.plot.figure import PvaeFigure

    return PvaeFigure(figsize=(width, height), layout="constrained")


def as_array(values: Any, name: str) -> np.ndarray:
    """``values`` (tensor, array or nested lists) as a non-empty float array.

    Examples
    --------
    >>> as_array(torch.ones(2), "x").dtype
    dtype('float64')
    """
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        raise ValueError(f"`{name}` is empty; pass at least one row.")
    return array


def as_images(values: Any, image_shape: Sequence[int], name: str) -> np.ndarray:
    """Rows of ``values`` as an array of shape ``(n, H, W)``.

    Examples
    --------
    >>> as_images(torch.zeros(5, 6), (2, 3), "x").shape
    (5, 2, 3)
    """
    array = as_array(values, name)
    height, width = (int(s) for s in image_shape)
    if array.ndim == 1:
        array = array[None]
    if array.shape[-1] == height * width or array.shape[-2:] == (height, width):
        return array.reshape(-1, height, width)
    raise ValueError(
        f"`{name}` must hold images of {height}x{width} = {height * width} pixels per row, got "
        f"shape {array.shape}. Pass the right `image_shape`."
    )


def mosaic(images: np.ndarray, ncols: int) -> np.ndarray:
    """Tile ``(n, H, W)`` images into one array, ``ncols`` per row, NaN gaps between them."""
    n, height, width = images.shape
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    out = np.full((nrows * (height + 1) - 1, ncols * (width + 1) - 1), np.nan)
    for i, image in enumerate(images):
        r, c = divmod(i, ncols)
        top, left = r * (height + 1), c * (width + 1)
        out[top : top + height, left : left + width] = image
    return out


def show_images(ax: Any, images: np.ndarray, ncols: int, title: str | None = None) -> None:
    """Draw ``(n, H, W)`` images as one grey mosaic on ``ax`` (values in [0, 1] kept as is).

    Examples
    --------
    >>> ax = new_figure(2, 2).subplots()
    >>> show_images(ax, np.zeros((4, 2, 2)), ncols=2, title="zeros")
    >>> ax.get_images()[0].get_array().shape, ax.get_title()
    ((5, 5), 'zeros')
    """
    import matplotlib as mpl

    cmap = mpl.colormaps["gray_r"].with_extremes(bad=GAP)
    unit = np.nanmin(images) >= 0 and np.nanmax(images) <= 1
    ax.imshow(
        mosaic(images, ncols), cmap=cmap, interpolation="nearest",
        vmin=0 if unit else None, vmax=1 if unit else None,
    )  # fmt: skip
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)


def bar_chart(ax: Any, names: Sequence[str], columns: Mapping[str, np.ndarray]) -> None:
    """Grouped probability bars: one group per name, one bar per column, values on top.

    Examples
    --------
    >>> ax = new_figure(3, 2).subplots()
    >>> bar_chart(ax, ["a", "b"], {"p": np.array([0.2, 0.8]), "q": np.array([0.5, 0.5])})
    >>> [round(float(p.get_height()), 1) for p in ax.patches]
    [0.2, 0.8, 0.5, 0.5]
    """
    width = 0.8 / len(columns)
    positions = np.arange(len(names))
    for i, (label, heights) in enumerate(columns.items()):
        bars = ax.bar(
            positions + (i - (len(columns) - 1) / 2) * width, heights, width, label=label
        )
        ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=1)
    ax.set_xticks(positions)
    ax.set_xticklabels(names, fontsize=8, rotation=30 if len(names) > 4 else 0)
    ax.set_ylim(0, 1.3 * max(1e-12, max(float(np.max(h)) for h in columns.values())))
    ax.set_ylabel("probability")
    ax.legend(fontsize=8, loc="upper left", ncols=len(columns))
