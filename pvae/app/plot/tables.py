r"""Probability tables as bars: Bayes' rule, and an exact posterior against a guide.

.. math:: p(h \mid x) = \frac{p(x \mid h)\, p(h)}{p(x)}

:func:`bayes_table` draws prior against posterior for each hypothesis of a
:class:`~pvae.exact.bayes.BayesTable`; :func:`posterior_bars` draws exact marginals against
a variational :math:`q`, one panel per latent site.

Examples
--------
>>> fig = posterior_bars({"z": ([0, 1], [0.25, 0.75], [0.5, 0.5])})
>>> [round(float(p.get_height()), 2) for p in fig.axes[0].patches]
[0.25, 0.75, 0.5, 0.5]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from pvae.app.plot.canvas import as_array, bar_chart, new_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["bayes_table", "posterior_bars"]


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
    prior, posterior = as_array(table.prior, "prior"), as_array(table.posterior, "posterior")
    fig = new_figure(max(4.5, 1.1 * len(names) + 2), 3.6)
    ax = fig.subplots()
    bar_chart(ax, names, {"prior p(h)": prior, "posterior p(h | x)": posterior})
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
    fig = new_figure(4.2 * ncols, 3.6 * nrows)
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for ax in axes[len(table) :]:
        ax.remove()
    for ax, (site, (support, exact, approx)) in zip(axes, table.items(), strict=False):
        names = [
            f"{v:g}" if isinstance(v, float) else str(v)
            for v in as_array(support, "support").tolist()
        ]
        names = [n[:-2] if n.endswith(".0") else n for n in names]
        bar_chart(ax, names, {labels[0]: as_array(exact, site), labels[1]: as_array(approx, site)})
        ax.set_title(site, fontsize=10)
    fig.suptitle(title)
    return fig


def _site_table(sites: Any) -> dict[str, tuple[Any, Any, Any]]:
    from pvae.vi.comparison import Comparison

    if isinstance(sites, Mapping):
        table = dict(sites)
    elif isinstance(sites, Comparison):
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
