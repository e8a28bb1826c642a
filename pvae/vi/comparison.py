r"""A guide beside the exact posterior: marginals, KL both ways, total variation, ELBO gap.

:func:`compare` enumerates the model exactly (:func:`pvae.exact.enumerate_posterior`) and
the guide's support (:func:`pvae.vi.guide_enumeration.enumerate_guide`), and reports, per
site and jointly, how far :math:`q` is from :math:`p(z \mid x)`:

.. math::

    \mathrm{KL}(q \,\|\, p(z \mid x)) = \log p(x) - \mathrm{ELBO}(q), \qquad
    \mathrm{KL}(p(z \mid x) \,\|\, q), \qquad
    \mathrm{TV}(p_i, q_i) = \tfrac12 \sum_v |p_i(v) - q_i(v)|.

Reverse KL (what variational inference minimizes) is mode seeking; forward KL is mass
covering. Discrete latents the guide leaves to the model are summed out exactly and have no
rows of their own. The ELBO identity it relies on lives in :mod:`pvae.vi.decomposition`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from pvae import _display, _traces
from pvae._compat import renamed
from pvae.exact import ExactPosterior, enumerate_posterior
from pvae.models.protocol import PvaeModel, model_and_guide
from pvae.vi.decomposition import (  # the first two: pvae 0.1 kept them here
    ELBODecomposition,  # noqa: F401
    elbo_decomposition,  # noqa: F401
    exact_log_evidence,
    units,
)
from pvae.vi.divergence import kl_divergence, total_variation
from pvae.vi.guide_enumeration import GuideEnumeration, enumerate_guide, weighted

__all__ = ["Comparison", "compare"]


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Comparison:
    r"""An exact posterior and a guide side by side.

    Attributes
    ----------
    sites : tuple of str
        Latent sites compared, in the exact posterior's order.
    rows : tuple of tuple
        One row per site, datapoint and support value: ``(site, index, value, exact, approx)``,
        ``index`` the datapoint for sites in a plate (else ``None``), ``exact`` the posterior
        marginal :math:`p(z_i = v | x)` and ``approx`` the guide marginal :math:`q(z_i = v)`.
    site_kl_qp, site_kl_pq, site_tv : dict of str to float
        Per-site :math:`\mathrm{KL}(q_i \,\|\, p_i)`, :math:`\mathrm{KL}(p_i \,\|\, q_i)` between
        marginals (summed over a site's elements, in the record's units) and total variation
        (averaged over its elements).
    kl_qp : float or None
        Joint :math:`\mathrm{KL}(q(z) \,\|\, p(z|x)) = \log p(x) - \mathrm{ELBO}`, the ELBO
        gap: what every other record calls ``kl`` (:attr:`kl` reads it too).
    kl_pq : float or None
        Joint :math:`\mathrm{KL}(p(z|x) \,\|\, q(z))` over the guide's support, when the joint
        factorizes over plate elements (``None`` otherwise). Masked latent elements count
        for nothing, as in the ELBO: they carry no factor in :math:`p` or :math:`q`.
    log_evidence, elbo : float
        :math:`\log p(x)` (the model's own density: unscaled) and the guide's ELBO.
    per_example : bool
        Nats per example (means over the ``num_examples`` examples of the data plate) when
        True, else joint totals; it covers ``kl_qp``, ``kl_pq``, ``log_evidence``, ``elbo``
        and the per-site KLs.
    num_examples : int or None

    Examples
    --------
    See :func:`compare`.
    """

    sites: tuple
    rows: tuple
    site_kl_qp: dict
    site_kl_pq: dict
    site_tv: dict
    kl_qp: float | None
    kl_pq: float | None
    log_evidence: float | None
    elbo: float | None
    per_example: bool = False
    num_examples: int | None = None

    @property
    def kl(self) -> float | None:
        r""":math:`\mathrm{KL}(q \,\|\, p(z|x))`, the name every record uses (= ``kl_qp``)."""
        return self.kl_qp

    elbo_gap = renamed("Comparison", "elbo_gap", "kl_qp")  # the same number

    def bars(self) -> dict[str, list]:
        """Data for a grouped bar chart: ``labels``, ``exact`` and ``approx``, aligned lists.

        Labels read ``"site=value"``, or ``"site[n]=value"`` for datapoint ``n`` of a plate.
        """
        labels = [
            f"{s}={_fmt(v)}" if i is None else f"{s}[{i}]={_fmt(v)}" for s, i, v, _, _ in self.rows
        ]
        return {
            "labels": labels,
            "exact": [r[3] for r in self.rows],
            "approx": [r[4] for r in self.rows],
        }

    def to_dataframe(self):
        """The per-value rows as a pandas DataFrame (columns site, index, value, exact, approx)."""
        import pandas as pd

        return pd.DataFrame(list(self.rows), columns=["site", "index", "value", "exact", "approx"])

    def __str__(self) -> str:
        cut = _display.MAX_ROWS
        lines = [f"{'site':<14} {'value':>8} {'exact':>10} {'approx':>10}"]
        for s, i, v, p, q in self.rows[:cut]:
            name = s if i is None else f"{s}[{i}]"
            lines.append(f"{name:<14} {_fmt(v):>8} {p:>10.6f} {q:>10.6f}")
        if len(self.rows) > cut:
            lines.append(f"... {len(self.rows) - cut} more rows")
        lines.append("")
        lines.append(f"{'site':<14} {'KL(q||p)':>10} {'KL(p||q)':>10} {'TV':>10}")
        for s in self.sites[:cut]:
            lines.append(
                f"{s:<14} {self.site_kl_qp[s]:>10.6f} {self.site_kl_pq[s]:>10.6f} "
                f"{self.site_tv[s]:>10.6f}"
            )
        if len(self.sites) > cut:
            lines.append(f"... {len(self.sites) - cut} more sites")
        lines.append("")

        def fmt(v):
            return "unavailable" if v is None else f"{v:.6f}"

        lines.append(f"joint KL(q || p(z|x)) = {fmt(self.kl_qp)}   (= ELBO gap)")
        lines.append(f"joint KL(p(z|x) || q) = {fmt(self.kl_pq)}")
        lines.append(f"log p(x) = {fmt(self.log_evidence)}   ELBO = {fmt(self.elbo)}")
        lines.append(f"({units(self.per_example, self.num_examples)})")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        rows = [(s if i is None else f"{s}[{i}]", _fmt(v), p, q) for s, i, v, p, q in self.rows]
        values = _display.html_table(["site", "value", "exact", "approx"], rows, bars=(2, 3))
        per_site = _display.html_table(
            ["site", "KL(q||p)", "KL(p||q)", "TV"],
            [(s, self.site_kl_qp[s], self.site_kl_pq[s], self.site_tv[s]) for s in self.sites],
        )
        fields = {
            "KL(q || p(z|x)) (= ELBO gap)": self.kl_qp,
            "KL(p(z|x) || q)": self.kl_pq,
            "log p(x)": self.log_evidence,
            "ELBO": self.elbo,
        }
        notes = [units(self.per_example, self.num_examples)]
        return _display.html_record("Comparison", fields, tables=[values, per_site], notes=notes)


def _joint_kl_pq(e: GuideEnumeration) -> torch.Tensor | None:
    """Forward KL over the guide's support, per plate element of the guide's sites."""
    tables = e.joint_tables()
    if tables is None:
        return None
    log_p, log_q = tables
    dims = e.enum_dims
    log_post = log_p - torch.logsumexp(log_p, dims, keepdim=True)
    log_q = log_q - torch.logsumexp(log_q, dims, keepdim=True)  # masked elements: uniform
    return weighted(log_post.exp(), log_post - log_q).sum(dims)


def compare(
    exact: Any,
    *args: Any,
    guide: Callable | None = None,
    model: Callable | None = None,
    **kwargs: Any,
) -> Comparison:
    r"""Compare a guide with the exact posterior: marginals, KL both ways, TV, ELBO gap.

    Called as ``compare(exact, guide, *args)``, or through the front door
    ``compare(model, *data, guide=guide)`` and ``compare(pvae_model, *data)``.

    Parameters
    ----------
    exact : ExactPosterior, callable or pvae model
        The result of :func:`pvae.exact.enumerate_posterior`, or the model itself (then it is
        enumerated here), or a pvae model with ``.model`` and ``.guide``.
    *args, **kwargs
        The guide (first, when not given as ``guide=``) and the model's arguments.
    guide : callable, optional
        A guide over the model's discrete latents (front-door convention).
    model : callable, optional
        The model, when ``exact`` is a posterior that does not carry it (``exact.model``).

    Returns
    -------
    Comparison
        Printable (``print(r)``), ``r.to_dataframe()``, and ``r.bars()`` for a figure.

    Raises
    ------
    ValueError
        When no model or guide is available, or the guide's latents are not discrete.

    Examples
    --------
    >>> from pvae import toy
    >>> from pvae.vi.guides import MeanFieldGuide
    >>> r = compare(toy.medical_test, MeanFieldGuide(toy.medical_test))
    >>> [round(p, 4) for p in r.bars()["exact"]], r.bars()["approx"]
    ([0.9224, 0.0776], [0.5, 0.5])
    >>> round(r.kl_qp, 4), round(r.log_evidence - r.elbo, 4)  # the ELBO gap
    (0.6251, 0.6251)
    """
    is_posterior = isinstance(exact, ExactPosterior)
    if isinstance(exact, PvaeModel) and not is_posterior:
        model, guide = model_and_guide(exact, guide)
        exact = None
    elif guide is None:
        if not args or not callable(args[0]):
            raise ValueError(
                "`compare` needs a guide: `compare(exact, guide, *args)` or `compare(model, "
                "*data, guide=guide)`."
            )
        guide, args = args[0], args[1:]
    if exact is not None and not is_posterior:
        if not callable(exact):
            raise ValueError(
                f"`exact` must be an ExactPosterior or a Pyro model, got {type(exact).__name__}."
            )
        model, exact = exact, None
    if model is None and exact is not None:
        model = exact.model
    if model is None:
        raise ValueError(
            "`compare` needs the model to score the guide, got an exact posterior without "
            "`.model`. Pass `model=` or pass the model itself as `exact`."
        )
    if exact is None:  # the model's own posterior: a beta or subsample weight is not in it
        exact = enumerate_posterior(_traces.unscaled(model), *args, **kwargs)
    with torch.no_grad():
        e = enumerate_guide(model, guide, *args, **kwargs)
    n = e.num_examples if e.per_example else 1
    rows, kl_qp_site, kl_pq_site, tv_site = [], {}, {}, {}
    for site in exact.sites:
        if site not in e.sites:
            continue  # left to the model: summed out exactly, no guide marginal
        support = torch.as_tensor(exact.support(site)).reshape(len(exact.support(site)), -1)
        p = torch.as_tensor(exact.marginal(site), dtype=torch.float64)
        values, q = e.marginal(site)
        values = values.reshape(len(values), -1).to(torch.float64)
        match = (support.to(torch.float64).unsqueeze(1) == values.unsqueeze(0)).all(-1)
        q = (q.unsqueeze(-2) * match.to(q.dtype)).sum(-1)  # guide marginal on the exact support
        q = q / q.sum(-1, keepdim=True)
        p = p / p.sum(-1, keepdim=True)
        kl_qp_site[site] = float(torch.as_tensor(kl_divergence(q, p)).sum()) / n
        kl_pq_site[site] = float(torch.as_tensor(kl_divergence(p, q)).sum()) / n
        tv_site[site] = float(torch.as_tensor(total_variation(p, q)).mean())
        batch = [None] if p.dim() == 1 else range(p.reshape(-1, p.shape[-1]).shape[0])
        flat_p, flat_q = p.reshape(-1, p.shape[-1]), q.reshape(-1, q.shape[-1])
        labels = exact.support(site).reshape(len(support), -1)
        for i in batch:
            pn, qn = (flat_p[0], flat_q[0]) if i is None else (flat_p[i], flat_q[i])
            for k in range(len(support)):
                value = labels[k]
                value = float(value) if value.numel() == 1 else tuple(value.tolist())
                rows.append((site, i, value, float(pn[k]), float(qn[k])))
    log_px = exact.unscaled_log_evidence
    if log_px is None:
        log_px = exact_log_evidence(model, args, kwargs)
    elbo = e.elbo()
    elbo = float(elbo.mean()) if elbo.dim() else float(elbo)
    log_px = log_px / n
    kl_pq = _joint_kl_pq(e)
    kl_pq = None if kl_pq is None else float(kl_pq.sum()) / n
    gap = log_px - elbo
    return Comparison(
        sites=tuple(s for s in exact.sites if s in e.sites),
        rows=tuple(rows),
        site_kl_qp=kl_qp_site,
        site_kl_pq=kl_pq_site,
        site_tv=tv_site,
        kl_qp=gap,
        kl_pq=kl_pq,
        log_evidence=log_px,
        elbo=elbo,
        per_example=e.per_example,
        num_examples=e.num_examples,
    )
