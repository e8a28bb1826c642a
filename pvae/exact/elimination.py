r"""Variable elimination on recovered factors: an order, its cost, and every marginal.

Given the factors :math:`f_i(z_{S_i})` of a plate-free model (:mod:`pvae.exact.factors`),

.. math::

    \log Z = \log \sum_z \prod_i f_i(z_{S_i})

is computed by eliminating one latent at a time, in float64 log space: the factors that
mention :math:`z_v` are added (as log-tables, broadcast over the union of their scopes) and
:math:`z_v` is summed out with a log-sum-exp. The order is chosen greedily by weighted
min-fill (Koller & Friedman 2009, §9.4.3): eliminate next the site whose elimination adds
the fewest new edges between its neighbours, each edge weighted by the product of the two
sites' cardinalities, ties broken by the size of the table it creates. :func:`plan` returns
the order with the size of every table it will create, so the largest one is known
before anything is allocated (:data:`MAX_TABLE`).

All marginals come from the same pass: :math:`\partial \log Z / \partial \log f_i(z_{S_i})
= p(z_{S_i} \mid x)`, so one backward pass through the elimination gives the posterior
of every latent's family, and summing it gives the latent's marginal.

References
----------
1. Koller, D. & Friedman, N. (2009). *Probabilistic Graphical Models*, §9.3-9.4. MIT Press.
2. Darwiche, A. (2009). *Modeling and Reasoning with Bayesian Networks*, ch. 6 and 12.
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict
from typing import NamedTuple

import torch

__all__ = [
    "MAX_TABLE",
    "Plan",
    "TableTooLarge",
    "backtrack",
    "log_partition",
    "plan",
]

#: The largest table (entries) an elimination order may create: 2**27 float64 entries is
#: 1 GiB, and the backward pass for the marginals keeps each table once more.
MAX_TABLE = 2**27


class TableTooLarge(ValueError):
    """The elimination order needs a table above the limit."""


class Plan(NamedTuple):
    """An elimination order and what it costs."""

    order: tuple[str, ...]
    steps: tuple  # per eliminated site: (site, union scope)
    largest: int  # entries of the largest table created
    largest_scope: tuple[str, ...]
    total: int  # entries of all tables created


class _Graph:
    """The interaction graph as bitsets: bit ``j`` of ``adj[i]`` is set if sites i, j meet."""

    def __init__(self, sites: list, scopes: list, cards: dict):
        index = {v: i for i, v in enumerate(sites)}
        self.card = [cards[v] for v in sites]
        self.adj = [0] * len(sites)
        for sc in scopes:
            mask = sum(1 << index[u] for u in set(sc))
            for u in set(sc):
                self.adj[index[u]] |= mask & ~(1 << index[u])
        self.by_card: dict[int, int] = {}  # cardinality -> bitset of the sites that have it
        for i, k in enumerate(self.card):
            self.by_card[k] = self.by_card.get(k, 0) | (1 << i)

    @staticmethod
    def members(mask: int) -> list[int]:
        out = []
        while mask:
            low = mask & -mask
            out.append(low.bit_length() - 1)
            mask ^= low
        return out

    def score(self, i: int) -> tuple[int, int]:
        """(weighted fill-in, size of the table) of eliminating site ``i`` now."""
        nbrs = self.adj[i]
        kinds = [(k, m & nbrs) for k, m in self.by_card.items() if m & nbrs]
        fill, size = 0, self.card[i]
        for a in self.members(nbrs):
            size *= self.card[a]
            missing = nbrs & ~self.adj[a] & ~(1 << a)
            if missing:
                fill += self.card[a] * sum(k * (missing & m).bit_count() for k, m in kinds)
        return fill // 2, size

    def eliminate(self, i: int) -> int:
        """Remove site ``i`` and join its neighbours; the sites whose score may change: its
        neighbours, and the sites with two or more of them as neighbours (an edge among
        their neighbours may be new)."""
        nbrs, bit = self.adj[i], 1 << i
        for a in self.members(nbrs):
            self.adj[a] = (self.adj[a] | nbrs) & ~bit & ~(1 << a)
        near = 0
        for a in self.members(nbrs):
            near |= self.adj[a]
        touched = nbrs
        for u in self.members(near & ~nbrs & ~bit):
            if (self.adj[u] & nbrs).bit_count() >= 2:
                touched |= 1 << u
        self.adj[i] = 0
        return touched


def plan(scopes: list[tuple[str, ...]], cards: dict[str, int], order_index: dict) -> Plan:
    """A weighted min-fill elimination order for factors over ``scopes``.

    Parameters
    ----------
    scopes : list of tuple of str
        The scope of each factor.
    cards : dict
        Cardinality of each site.
    order_index : dict
        Each site's position, which fixes the axis order of every table.

    Returns
    -------
    Plan

    Notes
    -----
    The order is a function of the scopes, cardinalities and site order alone, so the
    last :data:`PLANS_KEPT` plans are kept and a factor graph met again (the same model
    with other evidence, or called again) is not planned twice.
    """
    sites = sorted(cards, key=order_index.__getitem__)
    key = (tuple(sites), tuple(cards[s] for s in sites), tuple(map(tuple, scopes)))
    found = _PLANS.get(key)
    if found is None:
        found = _plan(sites, scopes, cards)
        _PLANS[key] = found
        if len(_PLANS) > PLANS_KEPT:
            _PLANS.popitem(last=False)
    return found


#: How many elimination plans :func:`plan` keeps (by factor graph).
PLANS_KEPT = 32
_PLANS: OrderedDict = OrderedDict()


def _plan(sites: list, scopes: list, cards: dict) -> Plan:
    g = _Graph(sites, scopes, cards)
    current = {i: g.score(i) for i in range(len(sites))}
    heap = [(*score, i) for i, score in current.items()]
    heapq.heapify(heap)
    order, steps, largest, largest_scope, total = [], [], 0, (), 0
    gone: set[int] = set()
    while heap:
        fill, weight, i = heapq.heappop(heap)
        if i in gone or current[i] != (fill, weight):
            continue
        gone.add(i)
        v = sites[i]
        union = tuple(sites[j] for j in sorted([*g.members(g.adj[i]), i]))
        size = math.prod(cards[u] for u in union)
        total += size
        if size > largest:
            largest, largest_scope = size, union
        order.append(v)
        steps.append((v, union))
        for j in g.members(g.eliminate(i)):
            current[j] = g.score(j)
            heapq.heappush(heap, (*current[j], j))
    return Plan(tuple(order), tuple(steps), largest, largest_scope, total)


def refuse_large(p: Plan, cards: dict, max_table: int) -> None:
    """Raise :class:`TableTooLarge` if ``p`` creates a table above ``max_table`` entries."""
    if p.largest <= max_table:
        return
    shown = ", ".join(f"{s!r} ({cards[s]})" for s in p.largest_scope[:12])
    more = f" and {len(p.largest_scope) - 12} more" if len(p.largest_scope) > 12 else ""
    raise TableTooLarge(
        f"exact elimination needs a table of {p.largest:.4g} entries "
        f"({8 * p.largest / 2**30:.3g} GiB in float64), above `max_table`={max_table:.4g}: "
        f"the order eliminates a site jointly with {len(p.largest_scope)} sites "
        f"[{shown}{more}] (the network's treewidth is too large for exact inference). "
        "Observe more sites, raise `max_table` if the memory is there, or approximate the "
        "posterior with a guide and SVI (`pvae.fit`)."
    )


def _safe_logsumexp(t: torch.Tensor, axis: int) -> torch.Tensor:
    """:math:`\\log\\sum\\exp` along ``axis``, -inf (with a zero gradient) on all -inf slices."""
    m = t.amax(axis, keepdim=True).detach().nan_to_num(0.0, 0.0, 0.0)
    s = (t - m).exp().sum(axis)
    zero = s == 0
    if not bool(zero.any()):
        return s.log() + m.squeeze(axis)
    return s.masked_fill(zero, 1.0).log().masked_fill(zero, -math.inf) + m.squeeze(axis)


def _aligned(scope: tuple, table: torch.Tensor, union: tuple, cards: dict) -> torch.Tensor:
    present = set(scope)
    return table.reshape([cards[u] if u in present else 1 for u in union])


class _Pool:
    """The tables not yet eliminated, indexed by the sites they mention."""

    def __init__(self) -> None:
        self.tables: dict[int, tuple] = {}
        self.by_site: dict[str, set] = {}
        self.count = 0

    def add(self, scope: tuple, table: torch.Tensor) -> None:
        i, self.count = self.count, self.count + 1
        self.tables[i] = (scope, table)
        for s in scope:
            self.by_site.setdefault(s, set()).add(i)

    def take(self, v: str) -> list[tuple]:
        """Remove and return (in the order they were added) the tables that mention ``v``."""
        out = []
        for i in sorted(self.by_site.pop(v, set())):
            sc, t = self.tables.pop(i)
            for s in sc:
                if s != v:
                    self.by_site[s].discard(i)
            out.append((sc, t))
        return out


def log_partition(
    tables: list[tuple[tuple[str, ...], torch.Tensor]],
    p: Plan,
    cards: dict,
    keep: list | None = None,
    maximize: bool = False,
) -> torch.Tensor:
    r""":math:`\log \sum_z \prod_i f_i(z_{S_i})` by the order of ``p`` (differentiable).

    ``tables`` are ``(scope, log-table)`` pairs with the axes of each table in the scope's
    order; ``keep``, if given, receives ``(site, union scope, log-table over it)`` for
    every elimination step (the tables that backward sampling and MAP decoding replay).
    With ``maximize``, each site is maxed out instead of summed out (max-product: the
    log-density of the most probable assignment).
    """
    pool = _Pool()
    for sc, t in tables:
        pool.add(sc, t)
    for v, union in p.steps:
        taken = pool.take(v)
        if not taken:
            continue
        combined = None
        for sc, t in taken:
            a = _aligned(sc, t, union, cards)
            combined = a if combined is None else combined + a
        combined = combined.expand([cards[u] for u in union])
        if keep is not None:
            keep.append((v, union, combined))
        axis = union.index(v)
        out_scope = union[:axis] + union[axis + 1 :]
        reduced = combined.amax(axis) if maximize else _safe_logsumexp(combined, axis)
        pool.add(out_scope, reduced)
    log_z = torch.zeros((), dtype=torch.float64)
    for _, t in pool.tables.values():
        log_z = log_z + t.sum()  # scalars: scopes are empty after elimination
    return log_z


def backtrack(kept: list, num: int, maximize: bool, generator=None) -> dict[str, torch.Tensor]:
    """Support indices ``[num]`` of each site, replaying the kept tables in reverse order.

    Each site is eliminated after the sites it was eliminated jointly with are still
    present, so in reverse order every kept table is indexed at already chosen values:
    its argmax along the site (``maximize``: MAP decoding) or a draw from its softmax
    (forward filtering, backward sampling: exact posterior draws).
    """
    chosen: dict[str, torch.Tensor] = {}
    for v, union, combined in reversed(kept):
        table = combined.detach().movedim(union.index(v), -1)
        index = tuple(chosen[u] for u in union if u != v)
        rows = table[index] if index else table.expand(num, -1)  # [num, K_v]
        if maximize:
            chosen[v] = rows.argmax(-1)
        else:
            probs = torch.softmax(rows, -1)
            chosen[v] = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    return chosen
