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
from typing import NamedTuple

import torch

__all__ = ["MAX_TABLE", "Plan", "TableTooLarge", "backtrack", "log_partition", "plan"]

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


def _fill(v, graph, cards) -> tuple[int, int]:
    nbrs = list(graph[v])
    fill = 0
    for i, a in enumerate(nbrs):
        ga = graph[a]
        for b in nbrs[i + 1 :]:
            if b not in ga:
                fill += cards[a] * cards[b]
    return fill, cards[v] * math.prod(cards[u] for u in nbrs)


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
    """
    graph: dict[str, set] = {v: set() for v in cards}
    for sc in scopes:
        for a in sc:
            graph[a].update(b for b in sc if b != a)
    heap = [(*_fill(v, graph, cards), order_index[v], v) for v in graph]
    heapq.heapify(heap)
    current = {v: (h[0], h[1]) for *h, _, v in heap}
    order, steps, largest, largest_scope, total = [], [], 0, (), 0
    while heap:
        fill, weight, _, v = heapq.heappop(heap)
        if v not in graph or current[v] != (fill, weight):
            continue
        nbrs = graph.pop(v)
        union = tuple(sorted(nbrs | {v}, key=order_index.__getitem__))
        size = math.prod(cards[u] for u in union)
        total += size
        if size > largest:
            largest, largest_scope = size, union
        order.append(v)
        steps.append((v, union))
        touched = set(nbrs)
        for a in nbrs:
            graph[a].discard(v)
            graph[a].update(b for b in nbrs if b != a)
        for a in nbrs:
            touched.update(graph[a])
        for a in touched:
            current[a] = _fill(a, graph, cards)
            heapq.heappush(heap, (*current[a], order_index[a], a))
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
    m = t.amax(axis, keepdim=True).detach()
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    s = (t - m).exp().sum(axis)
    ok = s > 0
    out = torch.log(torch.where(ok, s, torch.ones_like(s))) + m.squeeze(axis)
    return torch.where(ok, out, torch.full_like(out, -math.inf))


def _aligned(scope: tuple, table: torch.Tensor, union: tuple, cards: dict) -> torch.Tensor:
    present = set(scope)
    return table.reshape([cards[u] if u in present else 1 for u in union])


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
    pool = dict(enumerate(tables))
    by_site: dict[str, set] = {}
    for i, (sc, _) in pool.items():
        for s in sc:
            by_site.setdefault(s, set()).add(i)
    next_id = len(pool)
    for v, union in p.steps:
        ids = by_site.pop(v, set())
        if not ids:
            continue
        combined = None
        for i in sorted(ids):
            sc, t = pool.pop(i)
            for s in sc:
                if s != v:
                    by_site[s].discard(i)
            a = _aligned(sc, t, union, cards)
            combined = a if combined is None else combined + a
        combined = combined.expand([cards[u] for u in union])
        if keep is not None:
            keep.append((v, union, combined))
        axis = union.index(v)
        out_scope = union[:axis] + union[axis + 1 :]
        reduced = combined.amax(axis) if maximize else _safe_logsumexp(combined, axis)
        pool[next_id] = (out_scope, reduced)
        for s in out_scope:
            by_site[s].add(next_id)
        next_id += 1
    log_z = torch.zeros((), dtype=torch.float64)
    for _, t in pool.values():
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
