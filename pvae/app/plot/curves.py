r"""Training curves: the objective per epoch, and the two ELBO terms, from a ``fit`` history.

A VAE history gives two panels: the ELBO (training and validation), and its terms, the
expected reconstruction log-likelihood :math:`\mathbb{E}_q \log p(x|z)` and
:math:`\mathrm{KL}(q(z|x) \,\|\, p(z))`. An autoencoder history gives one panel of squared
error. Rows may name the terms as pvae 0.1 did (``reconstruction``, ``kl``, ``val_kl``) or
symmetrically (``train_reconstruction``, ``train_kl_prior``, ``val_kl_prior``); a
``train_objective`` column (the :math:`\beta`-weighted objective a :math:`\beta`-VAE
trains) is drawn beside the ELBO.

Examples
--------
>>> rows = [{"epoch": 1, "train_loss": 3.0}, {"epoch": 2, "train_loss": 2.0}]
>>> [ax.get_title() for ax in training_curves(rows).axes]
['Squared error (lower is better)']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pvae.app.plot.canvas import new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["training_curves"]

# history key -> (quantity, split); the quantities' legend labels are below
_KEYS = {
    "train_elbo": ("elbo", "train"),
    "val_elbo": ("elbo", "val"),
    "train_objective": ("objective", "train"),
    "reconstruction": ("reconstruction", "train"),
    "train_reconstruction": ("reconstruction", "train"),
    "val_reconstruction": ("reconstruction", "val"),
    "kl": ("kl_prior", "train"),
    "kl_prior": ("kl_prior", "train"),
    "train_kl_prior": ("kl_prior", "train"),
    "val_kl": ("kl_prior", "val"),
    "val_kl_prior": ("kl_prior", "val"),
    "train_loss": ("loss", "train"),
    "val_loss": ("loss", "val"),
}
_LABELS = {
    "elbo": "ELBO",
    "objective": r"trained objective ($\beta$-weighted)",
    "reconstruction": r"reconstruction $E_q[\log p(x|z)]$",
    "kl_prior": r"KL$(q(z|x)\,\|\,p(z))$",
    "loss": "squared error",
}
_PANELS = [  # title, unit, quantities
    ("ELBO (higher is better)", "nats per example", ("elbo", "objective")),
    ("ELBO terms", "nats per example", ("reconstruction", "kl_prior")),
    ("Squared error (lower is better)", "per example", ("loss",)),
]


def _series(history: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], tuple[list, list]]:
    """``{(quantity, split): (epochs, values)}`` over the finite values of the history."""
    series: dict[tuple[str, str], tuple[list, list]] = {}
    for i, row in enumerate(history):
        for key, value in row.items():
            if key in _KEYS and value is not None and np.isfinite(float(value)):
                xs, ys = series.setdefault(_KEYS[key], ([], []))
                if float(row.get("epoch", i + 1)) not in xs:  # an alias of a drawn key
                    xs.append(float(row.get("epoch", i + 1)))
                    ys.append(float(value))
    return series


def _label(quantity: str, split: str, panel: tuple[str, ...]) -> str:
    if panel == ("elbo", "objective") and quantity == "elbo":
        return "train" if split == "train" else "validation"
    if quantity == "loss":
        return "train" if split == "train" else "validation"
    return _LABELS[quantity] + (" (validation)" if split == "val" else "")


def training_curves(
    history: Sequence[Mapping[str, Any]], *, title: str = "Training curves"
) -> Figure:
    """The objective per epoch for training and validation data, from ``fit(...).history``.

    Parameters
    ----------
    history : list of dict
        One row per epoch with an ``epoch`` key and some of ``train_elbo``, ``val_elbo``,
        ``train_objective``, the terms (see the module docstring), ``train_loss``,
        ``val_loss`` (nats per example; squared error per example for losses).
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per panel; training lines solid with dots, validation lines dashed.

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
    series = _series(history)
    panels = []
    for name, unit, quantities in _PANELS:
        keys = [(q, s) for q in quantities for s in ("train", "val") if (q, s) in series]
        if keys:
            if quantities == ("reconstruction", "kl_prior"):
                val = any(s == "val" for _, s in keys)
                name = f"{name} ({'dashed: validation' if val else 'training data'})"
            panels.append((name, unit, quantities, keys))
    if not panels:
        keys = sorted({k for row in history for k in row})
        raise ValueError(
            "`history` must hold rows with train_elbo/val_elbo, reconstruction/kl_prior or "
            f"train_loss/val_loss, got keys {keys}."
        )
    from matplotlib.ticker import MaxNLocator

    fig = new_figure(5.0 * len(panels), 3.6)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (name, unit, quantities, keys) in zip(axes, panels, strict=True):
        for quantity, split in keys:  # one colour per quantity
            xs, ys = series[(quantity, split)]
            color = f"C{quantities.index(quantity)}"
            label = _label(quantity, split, quantities)
            if split == "val":
                ax.plot(xs, ys, "--", color=color, linewidth=1.5, label=label)
            else:
                ax.plot(xs, ys, "-", color=color, marker="o", markersize=2.5, label=label)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(unit)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    return fig
