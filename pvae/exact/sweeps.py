r"""Variable elimination in probability space, in NumPy: a forward and a backward sweep.

Given nonnegative tables :math:`F_1, \dots, F_n` (the factors, each rescaled to largest
entry 1) and an order of products -- an opt_einsum path (:func:`compile_path`) or an
elimination order (:func:`compile_plan`, the tables that mention a site multiplied two at
a time and the site summed out in the last product) -- the **forward sweep** runs the
products, one ``numpy.einsum`` each, dividing each result by its largest entry,

.. math:: T_k = \frac{1}{m_k} \sum_{\text{summed out}} T_a T_b, \qquad
   m_k = \max \sum_{\text{summed out}} T_a T_b,

so that :math:`\log Z = \sum_k \log m_k + \log \tilde Z` with :math:`\tilde Z` the
product of the scalars left at the end. The **backward sweep** walks the products in
reverse and hands every table :math:`T` its outside table
:math:`G = \partial \log \tilde Z / \partial T`: for an operand :math:`T_a` of product
:math:`k`, :math:`G_a = \frac{1}{m_k} \sum G_k T_b`, broadcast along any axis of
:math:`T_a` that neither :math:`T_b` nor :math:`T_k` carries. Then

.. math:: p(z_{S_i} \mid x) = F_i(z_{S_i}) \, G_i(z_{S_i}),

the posterior over every factor's scope, as from a backward pass through the elimination
(:func:`pvae.exact.elimination.log_partition`) but without autograd or torch's fixed cost
per operation, which on the tables of a Bayesian network is most of the work. Every
intermediate table lies within one elimination step's union scope (or the path's largest
table), and a large product goes to BLAS.

Examples
--------
>>> prior, lik = np.array([0.2, 0.8]), np.array([0.5, 0.1])  # p(z), p(x | z)
>>> program = compile_plan([("z",), ("z",)], [("z", ("z",))], {"z": 2})
>>> log_z, outside = run(program, [prior, lik])
>>> round(math.exp(log_z), 12), (prior * outside[0]).round(4)  # p(x); p(z | x)
(0.18, array([0.5556, 0.4444]))
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import NamedTuple

import numpy as np

__all__ = ["TINY", "Program", "compile_plan", "run"]

#: A step whose largest entry is below this stops the sweep (:func:`run` returns None):
#: products of entries this small could lose precision in float64's subnormal range.
TINY = 1e-280
#: A product of two tables that sums over more products than this goes to BLAS, as one
#: batched matrix product laid out when the program is compiled (:func:`_pair`); smaller
#: ones run in ``numpy.einsum``'s own loop (~5 us).
BLAS_FROM = 2**13
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


class Program(NamedTuple):
    """Both sweeps of one elimination order, every equation written out."""

    tables: int  # input tables; the result of forward step k is node tables + k
    forward: list  # (operand nodes, equation, BLAS layout or None)
    backward: list  # (node, [(operand node, equation, BLAS layout, other nodes, view)])
    roots: list  # the nodes left at the end (scalars)


_PROGRAMS: OrderedDict = OrderedDict()


def _kept(key, build):
    """The program cached under ``key`` (the last 32), built by ``build()`` if new."""
    if key not in _PROGRAMS:
        _PROGRAMS[key] = build()
        if len(_PROGRAMS) > 32:
            _PROGRAMS.popitem(last=False)
    return _PROGRAMS[key]


def compile_plan(scopes: list, steps, cards: dict) -> Program | None:
    """Both sweeps for tables over ``scopes`` eliminated by ``steps`` (a plan's ``(site,
    union scope)`` pairs): the tables that mention a site are multiplied two at a time,
    smallest first, and the site is summed out in the last product. None if a step spans
    more sites than ``numpy.einsum`` has letters (52)."""
    key = ("plan", tuple(map(tuple, scopes)), tuple(steps), tuple(sorted(cards.items())))
    return _kept(key, lambda: _compile_plan(scopes, steps, cards))


def compile_path(subscripts: list[str], steps: list, shapes: list) -> Program | None:
    """Both sweeps along an opt_einsum path: ``steps`` are its ``(positions, equation)``
    pairs (each pops the operands at ``positions``, in that order, and appends the result
    of ``equation``), ``subscripts`` the letters of each input table of ``shapes``.

    Examples
    --------
    >>> prior, lik = np.array([0.2, 0.8]), np.array([0.5, 0.1])  # p(z), p(x | z)
    >>> program = compile_path(["z", "z"], [((1, 0), "z,z->")], [(2,), (2,)])
    >>> log_z, outside = run(program, [prior, lik])
    >>> round(math.exp(log_z), 12), (lik * outside[1]).round(4)  # p(x) = 0.18; p(z | x)
    (0.18, array([0.5556, 0.4444]))
    """
    key = ("path", tuple(subscripts), tuple(map(tuple, steps)), tuple(map(tuple, shapes)))
    return _kept(key, lambda: _compile_path(subscripts, steps, shapes))


class _Builder:
    """Writes out the equations of both sweeps, one step at a time."""

    def __init__(self, scopes: list, cards: dict):
        self.subs = [tuple(sc) for sc in scopes]
        self.cards = cards
        self.forward: list = []
        self.backward: list = []

    def step(self, ids: list, out: tuple) -> int | None:
        """Contract nodes ``ids`` onto ``out``; the new node, or None if too wide."""
        union = tuple(dict.fromkeys(u for i in ids for u in self.subs[i]))
        if len(union) > len(_LETTERS):
            return None
        letter = dict(zip(union, _LETTERS, strict=False))
        k = len(self.subs)
        self.subs.append(tuple(out))
        word = {i: "".join(letter[s] for s in self.subs[i]) for i in [*ids, k]}
        blas = math.prod(self.cards[u] for u in union) > BLAS_FROM
        size = {letter[u]: self.cards[u] for u in union}
        equation = ",".join(word[i] for i in ids) + "->" + word[k]
        self.forward.append((list(ids), equation, _pair(equation, size) if blas else None))
        parts = []
        for i in ids:
            others = [j for j in ids if j != i]
            carried = set(out).union(*(self.subs[j] for j in others))
            keep = "".join(letter[s] for s in self.subs[i] if s in carried)
            equation = ",".join([word[k]] + [word[j] for j in others]) + "->" + keep
            view = None
            if len(keep) < len(self.subs[i]):  # constant along axes only this table has
                view = [self.cards[s] if s in carried else 1 for s in self.subs[i]]
            pair = _pair(equation, size) if blas else None
            parts.append((i, equation, pair, others, view))
        self.backward.append((k, parts))
        return k

    def program(self, tables: int) -> Program:
        taken = {i for ids, _, _ in self.forward for i in ids}
        roots = [i for i in range(len(self.subs)) if i not in taken]
        return Program(tables, self.forward, self.backward[::-1], roots)


def _compile_plan(scopes: list, steps, cards: dict) -> Program | None:
    b = _Builder(scopes, cards)
    by_site: dict[str, set] = {}
    for i, sc in enumerate(b.subs):
        for s in sc:
            by_site.setdefault(s, set()).add(i)
    for v, _ in steps:
        size = {i: math.prod(cards[s] for s in b.subs[i]) for i in by_site.pop(v, ())}
        ids = sorted(sorted(size), key=size.__getitem__)
        if not ids:
            continue
        for i in ids:
            for s in b.subs[i]:
                if s != v:
                    by_site[s].discard(i)
        acc = ids[0]
        if len(ids) == 1:
            acc = b.step([acc], tuple(u for u in b.subs[acc] if u != v))
        for n, i in enumerate(ids[1:]):
            if acc is None:
                break
            union = tuple(dict.fromkeys([*b.subs[acc], *b.subs[i]]))
            last = n == len(ids) - 2
            acc = b.step([acc, i], tuple(u for u in union if u != v) if last else union)
        if acc is None:
            return None
        for s in b.subs[acc]:
            by_site.setdefault(s, set()).add(acc)
    return b.program(len(scopes))


def _compile_path(subscripts: list[str], steps: list, shapes: list) -> Program | None:
    cards = {}
    for sub, shape in zip(subscripts, shapes, strict=True):
        cards.update(zip(sub, shape, strict=True))
    b = _Builder([tuple(sub) for sub in subscripts], cards)
    operands = list(range(len(subscripts)))
    for positions, equation in steps:
        ids = [operands.pop(p) for p in positions]
        k = b.step(ids, tuple(equation.split("->")[1]))
        if k is None:
            return None
        operands.append(k)
    return b.program(len(subscripts))


def run(program: Program, tables: list) -> tuple[float, list] | None:
    r"""(:math:`\log Z` of ``tables``, the outside table :math:`G_i / \tilde Z` of each),
    so that ``tables[i] * outside[i]`` is the posterior over table ``i``'s scope; None if
    a step's largest entry is below :data:`TINY` (the caller then uses log space)."""
    nodes = list(tables)
    log_m = []
    for ids, equation, pair in program.forward:
        out = _product(equation, pair, [nodes[k] for k in ids])
        m = float(out.max()) if out.size else 1.0
        if not m >= TINY:
            return None
        nodes.append(out / m)
        log_m.append(math.log(m))
    scalars = [float(nodes[r]) for r in program.roots]
    z = math.prod(scalars)
    if not (math.isfinite(z) and z >= TINY):
        return None
    outside: dict[int, np.ndarray] = {}
    for r, s in zip(program.roots, scalars, strict=True):
        outside[r] = np.full(nodes[r].shape, 1.0 / s)  # d log Z~ / d T_r
    step_scale = {program.tables + k: math.exp(-lm) for k, lm in enumerate(log_m)}
    for k, parts in program.backward:
        grad = outside.pop(k) * step_scale[k]
        for i, equation, pair, others, view in parts:
            table = _product(equation, pair, [grad, *[nodes[j] for j in others]])
            if view is not None:
                table = np.broadcast_to(table.reshape(view), nodes[i].shape)
            outside[i] = table
    return math.fsum(log_m) + math.log(z), [outside[i] for i in range(program.tables)]


def _pair(equation: str, size: dict) -> tuple | None:
    """The layout of a two-table product ``equation`` (``"x,y->z"``, each letter once per
    table) as one batched matrix product: the axes only one table has and the result
    lacks are summed first, then ``x`` is laid out as [batch, left, summed], ``y`` as
    [batch, summed, right], and the product [batch, left, right] put in ``z``'s order.
    None for another number of tables (einsum's loop runs them).

    Examples
    --------
    >>> x, y = np.arange(24.0).reshape(2, 3, 4), np.arange(10.0).reshape(2, 5)
    >>> pair = _pair("abc,ad->db", {"a": 2, "b": 3, "c": 4, "d": 5})
    >>> bool(np.allclose(_product("abc,ad->db", pair, [x, y]), np.einsum("abc,ad->db", x, y)))
    True
    """
    inputs, out = equation.split("->")
    operands = inputs.split(",")
    if len(operands) != 2:
        return None
    x, y = operands
    batch = [a for a in out if a in x and a in y]
    left = [a for a in out if a in x and a not in y]
    right = [a for a in out if a in y and a not in x]
    summed = [a for a in x if a in y and a not in out]
    own_x = tuple(i for i, a in enumerate(x) if a not in y and a not in out)
    own_y = tuple(i for i, a in enumerate(y) if a not in x and a not in out)
    rest_x = [a for i, a in enumerate(x) if i not in own_x]
    rest_y = [a for i, a in enumerate(y) if i not in own_y]
    n = [math.prod(size[a] for a in part) for part in (batch, left, summed, right)]
    mid = batch + left + right
    return (
        (own_x, tuple(rest_x.index(a) for a in batch + left + summed)),
        (own_y, tuple(rest_y.index(a) for a in batch + summed + right)),
        n,
        tuple(size[a] for a in mid),
        tuple(mid.index(a) for a in out),
    )


def _product(equation: str, pair: tuple | None, tables: list) -> np.ndarray:
    """``numpy.einsum(equation, *tables)``, by BLAS along ``pair`` (:func:`_pair`) if given."""
    if pair is None:
        return np.einsum(equation, *tables)
    (own_x, perm_x), (own_y, perm_y), (nb, nl, nc, nr), shape, order = pair
    x, y = tables
    x = x.sum(own_x) if own_x else x
    y = y.sum(own_y) if own_y else y
    z = np.matmul(x.transpose(perm_x).reshape(nb, nl, nc), y.transpose(perm_y).reshape(nb, nc, nr))
    return z.reshape(shape).transpose(order)
