r"""A model scored on a discrete guide's whole support: :class:`GuideEnumeration`.

Every expectation under the guide is a finite sum. In the parallel engine's layout, a term
:math:`t` (a packed log-density in the plates :math:`P`) that depends on the guide sites
:math:`S` is weighted by the guide's marginal :math:`q(z_S)` in those plates, computed by
Pyro's tensor contraction, so plates stay product dimensions and sibling plates that share
a dim are never broadcast against each other:

.. math:: \mathbb{E}_q[t] = \sum_{P} \sum_{z_S} q(z_S)\, t(z_S).

The sequential engine's layout is a table of joint assignments. Made by
:func:`pvae.vi.guide_enumeration.enumerate_guide`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import torch
from pyro.ops import packed
from pyro.ops.contract import contract_to_tensor

from pvae import _display, _traces

__all__ = ["GuideEnumeration", "Term", "weighted"]


def weighted(w: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    r"""``w * t`` with :math:`0 \cdot t = 0` where the weight is 0 (``t`` may be ``-inf``)."""
    return torch.where(w > 0, w * t, torch.zeros((), dtype=w.dtype))


@dataclass(frozen=True)
class Term:
    """One packed log-density term, and the plates (symbols) it lives in."""

    tensor: torch.Tensor
    ordinal: frozenset


@dataclass(frozen=True)
class GuideEnumeration:
    r"""The model scored on a discrete guide's whole support (see :func:`enumerate_guide`).

    Attributes
    ----------
    sites : tuple of str
        The guide's sample sites, in trace order.
    method : str
        ``"parallel"`` or ``"sequential"``; ``reason`` says why ``"auto"`` fell back.
    per_example : bool
        True when the model and guide factor over the data plate: :meth:`expectation`
        then returns one number per example, else one joint total.
    num_examples : int or None
        Size of the data plate.

    Examples
    --------
    Made by :func:`enumerate_guide`; ``e.elbo()``, ``e.marginal(site)``, ``e.joint_tables()``.
    """

    sites: tuple[str, ...]
    method: str
    reason: str
    per_example: bool
    num_examples: int | None
    structure: Any = field(repr=False)
    #: The engines' data. Parallel: packed log-density terms by kind ("joint", "prior",
    #: "guide", "weights"), the guide's weight tree and its enumeration symbols, and per
    #: guide site ``(symbol, ordinal, enum dim, values, batch shape, event shape)``.
    #: Sequential: ``rows = (q, (log_lik, log_prior, log_guide))`` over joint assignments.
    terms: dict = field(default_factory=dict, repr=False)
    weights: OrderedDict | None = field(default=None, repr=False)
    weight_dims: set = field(default_factory=set, repr=False)
    symbol_to_dim: dict = field(default_factory=dict, repr=False)
    values: dict = field(default_factory=dict, repr=False)
    rows: tuple | None = field(default=None, repr=False)

    _repr_html_ = _display.record_html

    # --------------------------------------------------------------- expectations
    def expectation(self, which: str) -> torch.Tensor:
        r""":math:`\mathbb{E}_q` of the ``"joint"`` (:math:`\log p(x, z)`), ``"prior"``
        (:math:`\log p(z)`) or ``"guide"`` (:math:`\log q(z)`) terms: float64, ``[N]`` per
        example or a 0-d total. Differentiable in the guide's and model's parameters."""
        if self.rows is not None:
            q, cols = self.rows
            col = {"joint": cols[0] + cols[1], "prior": cols[1], "guide": cols[2]}[which]
            return weighted(q, col).sum()
        total = None
        for term in self.terms[which]:
            value = self.expect_term(term)
            total = value if total is None else total + value
        zero = torch.zeros(self._shape(), dtype=torch.float64)
        return zero if total is None else zero + total

    def elbo(self) -> torch.Tensor:
        """The exact ELBO (per example or joint, as :meth:`expectation`)."""
        return self.expectation("joint") - self.expectation("guide")

    def _shape(self) -> tuple:
        return (self.num_examples,) if self.per_example else ()

    def _keep(self) -> list[int]:
        return [self.structure.data_dim] if self.per_example else []

    def dense(self, t: torch.Tensor) -> torch.Tensor:
        return packed.unpack(t, self.symbol_to_dim).to(torch.float64)

    def marginal_of(self, dims: set, ordinal: frozenset) -> torch.Tensor | None:
        """Log marginal of the guide over enum ``dims`` in the plates ``ordinal`` (packed)."""
        if not dims:
            return None
        plates = frozenset().union(*self.weights)  # the plates the guide has
        return contract_to_tensor(
            self.weights,
            self.weight_dims,
            target_ordinal=ordinal & plates,
            target_dims=set(dims),
        )

    def expect_term(self, term: Term) -> torch.Tensor:
        dims = self.weight_dims.intersection(term.tensor._pyro_dims)
        t = self.dense(term.tensor)
        log_m = self.marginal_of(dims, term.ordinal)
        if log_m is not None:
            m = self.dense(log_m).exp()
            t = weighted(m, t)
            for symbol in dims:
                d = self.symbol_to_dim[symbol]
                if t.dim() >= -d:
                    t = t.sum(d, keepdim=True)
        width = self.structure.nesting
        return _traces.reduce_dims(t, width, self._keep()).reshape(self._shape())

    # --------------------------------------------------------------- marginals, tables
    def marginal(self, site: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Support values and guide marginal of ``site``: ``[K]`` or ``[*batch, K]``."""
        if site not in self.sites:
            raise ValueError(
                f"`site` must be one of the guide's sites {self.sites}, got {site!r}."
            )
        if self.rows is not None:
            q, _ = self.rows
            values = self.values[site]
            rows = values.reshape(len(values), -1)
            support = torch.unique(rows, dim=0)
            match = (rows.unsqueeze(1) == support.unsqueeze(0)).all(-1).to(q.dtype)
            probs = (match * q.unsqueeze(-1)).sum(0)
            return support.reshape((-1,) + tuple(values.shape[1:])), probs
        symbol, ordinal, enum_dim, value, batch, event = self.values[site]
        support = value.reshape((-1,) + tuple(event))
        m = self.dense(self.marginal_of({symbol}, ordinal)).exp()
        m = m.movedim(enum_dim, -1)
        nesting = self.structure.nesting
        m = m.reshape(m.shape[m.dim() - (nesting + 1) :])
        m = m.reshape(m.shape[nesting - len(batch) :])
        return support, m.expand(tuple(batch) + (support.shape[0],))

    def joint_tables(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        r"""Dense :math:`\log p(x, z)` and :math:`\log q(z)` over the guide's joint support.

        Available when every guide site sits in the same plates :math:`D`: each term is
        summed over its other plates, so both tables keep the guide's enumeration dims plus
        the dims of :math:`D` (``None`` otherwise, and for the sequential engine, where the
        rows are the table). ``logsumexp`` of ``log_p`` over the enumeration dims, summed
        over the rest, is :math:`\log p(x)` restricted to the guide's support.
        """
        if self.rows is not None:
            q, cols = self.rows
            return cols[0] + cols[1], q.log()
        ordinals = {v[1] for v in self.values.values()}
        if len(ordinals) != 1:
            return None
        (keep,) = ordinals

        def reduce(term: Term) -> torch.Tensor:
            t = self.dense(term.tensor)
            for s in term.ordinal - keep:
                d = self.symbol_to_dim[s]
                if t.dim() >= -d:
                    t = t.sum(d, keepdim=True)
            return t

        log_p = sum(reduce(t) for t in self.terms["joint"])
        log_q = sum(reduce(t) for t in self.terms["guide"])  # masked, as the ELBO has it
        shape = torch.broadcast_shapes(log_p.shape, log_q.shape)
        return log_p.expand(shape), log_q.expand(shape)

    def sitevalues(self, site: str) -> torch.Tensor:
        """The sequential engine's rows: ``site``'s value in each joint assignment."""
        if self.rows is None:
            raise ValueError("`sitevalues` lists the rows of the sequential engine only.")
        return self.values[site]

    @property
    def enum_dims(self) -> tuple[int, ...]:
        """The dims of :meth:`joint_tables` that enumerate the guide (the others are plates)."""
        tables = self.joint_tables()
        if tables is None:
            return ()
        if self.rows is not None:
            return (0,)
        nesting = self.structure.nesting
        return tuple(range(tables[0].dim() - nesting))
