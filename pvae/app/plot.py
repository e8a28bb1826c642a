r"""Figures: what a trained model does, drawn with matplotlib.

Every function takes plain tensors/arrays (or a small pvae record) and returns a
:class:`matplotlib.figure.Figure`; nothing is shown and no global pyplot state is touched,
so the module works headless (Agg) and in notebooks alike. Save with
``fig.savefig("name.png")``. matplotlib is imported only when a function runs, so
``import pvae`` stays light.

======================== ==============================================================
function                 shows
======================== ==============================================================
:func:`reconstructions`  inputs :math:`x` above reconstructions :math:`\hat x`
:func:`samples`          images decoded from :math:`z \sim p(z)`
:func:`latent_scatter`   codes :math:`\mathbb{E}_q[z \mid x]` coloured by label
:func:`traversal`        one latent dimension varied at a time
:func:`interpolation`    decoding a straight path between two codes
:func:`training_curves`  ELBO, reconstruction and KL per epoch (train and validation)
:func:`bayes_table`      prior against posterior over hypotheses
:func:`posterior_bars`   exact posterior against a variational :math:`q`
:func:`ae_vs_vae`        decoded random codes: autoencoder beside VAE
======================== ==============================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "ae_vs_vae",
    "bayes_table",
    "interpolation",
    "latent_scatter",
    "posterior_bars",
    "reconstructions",
    "samples",
    "training_curves",
    "traversal",
]

_GAP = "#c9d3e0"  # colour of the lines between tiles


def _new_figure(width: float, height: float) -> Figure:
    # Figure() without pyplot: no global figure manager, no backend needed to draw or save.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _numpy(values: Any, name: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        raise ValueError(f"`{name}` is empty; pass at least one row.")
    return array


def _images(values: Any, image_shape: Sequence[int], name: str) -> np.ndarray:
    """Rows of ``values`` as an array of shape ``(n, H, W)``."""
    array = _numpy(values, name)
    height, width = (int(s) for s in image_shape)
    if array.ndim == 1:
        array = array[None]
    if array.shape[-1] == height * width or array.shape[-2:] == (height, width):
        return array.reshape(-1, height, width)
    raise ValueError(
        f"`{name}` must hold images of {height}x{width} = {height * width} pixels per row, got "
        f"shape {array.shape}. Pass the right `image_shape`."
    )


def _mosaic(images: np.ndarray, ncols: int) -> np.ndarray:
    """Tile ``(n, H, W)`` images into one array, NaN gaps between them."""
    n, height, width = images.shape
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    out = np.full((nrows * (height + 1) - 1, ncols * (width + 1) - 1), np.nan)
    for i, image in enumerate(images):
        r, c = divmod(i, ncols)
        out[
            r * (height + 1) : r * (height + 1) + height, c * (width + 1) : c * (width + 1) + width
        ] = image
    return out


def _show(ax: Any, images: np.ndarray, ncols: int, title: str | None = None) -> None:
    import matplotlib as mpl

    cmap = mpl.colormaps["gray_r"].with_extremes(bad=_GAP)
    unit = np.nanmin(images) >= 0 and np.nanmax(images) <= 1
    ax.imshow(
        _mosaic(images, ncols), cmap=cmap, interpolation="nearest",
        vmin=0 if unit else None, vmax=1 if unit else None,
    )  # fmt: skip
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)


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
    inputs = _images(x, image_shape, "x")[:n]
    outputs = _images(reconstruction, image_shape, "reconstruction")[:n]
    if len(inputs) != len(outputs):
        raise ValueError(
            f"`x` and `reconstruction` must have as many rows, got {len(inputs)} and "
            f"{len(outputs)}."
        )
    fig = _new_figure(min(1.0 * len(inputs), 12) + 0.5, 3.0)
    top, bottom = fig.subplots(2, 1)
    _show(top, inputs, len(inputs), "input x")
    _show(bottom, outputs, len(outputs), "reconstruction")
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
    tiles = _images(images, image_shape, "images")
    fig = _new_figure(6.0, 6.0 * (-(-len(tiles) // ncols)) / min(ncols, len(tiles)) + 0.6)
    _show(fig.subplots(), tiles, ncols)
    fig.suptitle(title)
    return fig


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
    codes = _numpy(z, "z")
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
    fig = _new_figure(6.0, 5.0)
    ax = fig.subplots()
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=8, alpha=0.7)
    else:
        y = _numpy(labels, "labels").astype(int)
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
    grid = _numpy(images, "images")
    if grid.ndim != 3 or grid.shape[1] != len(values):
        raise ValueError(
            f"`images` must have shape (num_dims, len(values)={len(values)}, D), got {grid.shape}."
        )
    rows, cols = grid.shape[:2]
    dims = list(range(rows)) if dims is None else list(dims)
    height, width = (int(s) for s in image_shape)
    fig = _new_figure(min(0.8 * cols, 12) + 1.2, 0.8 * rows * height / width + 1.0)
    ax = fig.subplots()
    _show(ax, _images(grid.reshape(rows * cols, -1), image_shape, "images"), cols)
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
    grid = _numpy(images, "images")
    tiles = _images(
        grid.reshape(-1, grid.shape[-1]) if grid.ndim == 3 else grid, image_shape, "images"
    )
    steps = grid.shape[-2] if grid.ndim == 3 else len(tiles)
    fig = _new_figure(min(0.9 * steps, 12) + 0.4, 0.9 * len(tiles) / steps + 0.8)
    ax = fig.subplots()
    _show(ax, tiles, steps)
    ax.set_xlabel(r"start $\rightarrow$ end")
    fig.suptitle(title)
    return fig


def _series(history: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for i, row in enumerate(history):
        value = row.get(key)
        if value is not None and np.isfinite(float(value)):
            xs.append(float(row.get("epoch", i + 1)))
            ys.append(float(value))
    return xs, ys


def training_curves(
    history: Sequence[Mapping[str, Any]], *, title: str = "Training curves"
) -> Figure:
    """The objective per epoch for training and validation data, from ``fit(...).history``.

    A VAE history (``train_elbo``, ``val_elbo``, ``reconstruction``, ``kl``) gives two
    panels: the ELBO, and its two terms (expected reconstruction log-likelihood and
    :math:`\\mathrm{KL}(q(z|x) \\,\\|\\, p(z))`). An autoencoder history (``train_loss``,
    ``val_loss``) gives one panel of squared error.

    Parameters
    ----------
    history : list of dict
        One row per epoch with an ``epoch`` key and some of the keys above (nats per
        example; squared error per example for losses).
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per panel.

    Raises
    ------
    ValueError
        If no row holds a known key.

    Examples
    --------
    >>> rows = [{"epoch": e, "train_elbo": -50 + e, "val_elbo": -52 + e,
    ...          "reconstruction": -40 + e, "kl": 10.0} for e in (1, 2, 3)]
    >>> [ax.get_title() for ax in training_curves(rows).axes]
    ['ELBO (higher is better)', 'ELBO terms (training data)']
    """
    keys = {k for row in history for k in row}
    panels = []
    if keys & {"train_elbo", "val_elbo"}:
        panels.append(("ELBO (higher is better)", "nats per example", ["train_elbo", "val_elbo"]))
    terms = [k for k in ("reconstruction", "kl", "val_reconstruction", "val_kl") if k in keys]
    if terms:
        which = (
            "training data"
            if not any(k.startswith("val") for k in terms)
            else "dashed: validation"
        )
        panels.append((f"ELBO terms ({which})", "nats per example", terms))
    if keys & {"train_loss", "val_loss"}:
        panels.append(
            ("Squared error (lower is better)", "per example", ["train_loss", "val_loss"])
        )
    if not panels:
        raise ValueError(
            "`history` must hold rows with train_elbo/val_elbo, reconstruction/kl or "
            f"train_loss/val_loss, got keys {sorted(keys)}."
        )
    labels = {
        "train_elbo": "train", "val_elbo": "validation", "train_loss": "train",
        "val_loss": "validation", "reconstruction": r"reconstruction $E_q[\log p(x|z)]$",
        "kl": r"KL$(q(z|x)\,\|\,p(z))$",
    }  # fmt: skip
    labels.update({f"val_{k}": f"{labels[k]} (validation)" for k in ("reconstruction", "kl")})
    from matplotlib.ticker import MaxNLocator

    fig = _new_figure(5.0 * len(panels), 3.6)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (name, unit, panel_keys) in zip(axes, panels, strict=True):
        bases = list(
            dict.fromkeys(k.removeprefix("val_").removeprefix("train_") for k in panel_keys)
        )
        for key in panel_keys:
            xs, ys = _series(history, key)
            if xs:  # one colour per quantity; validation dashed, training solid with dots
                color = f"C{bases.index(key.removeprefix('val_').removeprefix('train_'))}"
                if key.startswith("val"):
                    ax.plot(xs, ys, "--", color=color, linewidth=1.5, label=labels[key])
                else:
                    ax.plot(
                        xs, ys, "-", color=color, marker="o", markersize=2.5, label=labels[key]
                    )
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(unit)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return fig


def _bars(ax: Any, names: Sequence[str], columns: Mapping[str, np.ndarray]) -> None:
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


def bayes_table(table: Any, *, title: str = "Bayes' rule: prior and posterior") -> Figure:
    r"""Prior against posterior bars for each hypothesis of a Bayes table.

    .. math:: p(h \mid x) = \frac{p(x \mid h)\, p(h)}{p(x)}

    Parameters
    ----------
    table : BayesTable
        Anything with ``hypotheses``, ``prior`` and ``posterior`` (and ``evidence``), as
        returned by :func:`pvae.exact.bayes.bayes_rule`.
    title : str
        Figure title; the evidence :math:`p(x)` is appended when present.

    Returns
    -------
    matplotlib.figure.Figure
        One axes with two bars per hypothesis.

    Examples
    --------
    >>> from pvae.exact.bayes import bayes_rule
    >>> t = bayes_rule({"ill": 0.01, "well": 0.99}, {"ill": 0.8, "well": 0.096})
    >>> [round(float(b.get_height()), 4) for b in bayes_table(t).axes[0].patches]
    [0.01, 0.99, 0.0776, 0.9224]
    """
    names = [str(h) for h in table.hypotheses]
    prior, posterior = _numpy(table.prior, "prior"), _numpy(table.posterior, "posterior")
    fig = _new_figure(max(4.5, 1.1 * len(names) + 2), 3.6)
    ax = fig.subplots()
    _bars(ax, names, {"prior p(h)": prior, "posterior p(h | x)": posterior})
    evidence = getattr(table, "evidence", None)
    suffix = f"\nevidence p(x) = {evidence:.4g}" if evidence is not None else ""
    ax.set_title(title + suffix, fontsize=10)
    return fig


def posterior_bars(
    sites: Mapping[str, tuple[Any, Any, Any]] | Any,
    *,
    labels: tuple[str, str] = ("exact p(z | x)", "variational q(z)"),
    title: str = "Exact posterior against the variational approximation",
) -> Figure:
    """Exact and variational marginals side by side, one panel per latent site.

    Parameters
    ----------
    sites : mapping or comparison report
        ``{site: (support, exact_probs, approx_probs)}``, or the report of
        :func:`pvae.vi.comparison.compare` (its ``rows``; a site inside a plate gives one
        panel per data point).
    labels : tuple of str
        Legend names of the two bar series.
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per site.

    Examples
    --------
    >>> fig = posterior_bars({"disease": ([0, 1], [0.92, 0.08], [0.90, 0.10])})
    >>> fig.axes[0].get_title()
    'disease'
    """
    table = _site_table(sites)
    ncols = min(len(table), 4)  # wrap into rows so many sites keep readable panels
    nrows = -(-len(table) // ncols)
    fig = _new_figure(4.2 * ncols, 3.6 * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for ax in axes[len(table) :]:
        ax.remove()
    for ax, (site, (support, exact, approx)) in zip(axes, table.items(), strict=False):
        names = [
            f"{v:g}" if isinstance(v, float) else str(v)
            for v in _numpy(support, "support").tolist()
        ]
        names = [n[:-2] if n.endswith(".0") else n for n in names]
        _bars(ax, names, {labels[0]: _numpy(exact, site), labels[1]: _numpy(approx, site)})
        ax.set_title(site, fontsize=10)
    fig.suptitle(title)
    return fig


def _site_table(sites: Any) -> dict[str, tuple[Any, Any, Any]]:
    if isinstance(sites, Mapping):
        table = dict(sites)
    elif hasattr(sites, "rows") and hasattr(sites, "sites"):  # pvae.vi.comparison.Comparison
        table = {}
        for site, index, value, exact, approx in sites.rows:
            key = site if index is None else f"{site}[{index}]"
            support, p, q = table.setdefault(key, ([], [], []))
            support.append(value)
            p.append(exact)
            q.append(approx)
    else:
        raise ValueError(
            "`sites` must be a mapping {site: (support, exact, approx)} or a comparison "
            f"report, got {type(sites).__name__}."
        )
    if not table:
        raise ValueError("`sites` is empty; pass at least one latent site.")
    return {str(k): tuple(v) for k, v in table.items()}


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
    fig = _new_figure(9.0, 5.0)
    left, right = fig.subplots(1, 2)
    _show(left, _images(ae_images, image_shape, "ae_images"), ncols, "autoencoder: random codes")
    _show(right, _images(vae_images, image_shape, "vae_images"), ncols, "VAE: z ~ p(z)")
    fig.suptitle(title)
    return fig
