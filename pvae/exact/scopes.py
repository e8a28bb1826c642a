r"""Which latent sites each site's density depends on, from few runs of the model.

Torch allows 64 tensor dimensions, so one run of the model can give at most
:data:`MAX_DIMS` latents a dimension of their own. A site's distribution is built from
the values of the latents it depends on, so its ``batch_shape`` is non-singleton exactly
along their dimensions (:meth:`pvae.exact.runs.Run.scope`). Two ways to read every scope:

**Groups** (:func:`by_groups`, for many latents). Latents of equal cardinality may *share*
a dimension: a run puts every latent in one of at most :data:`MAX_DIMS` groups, one
dimension per group, and a site's shape then says which groups hold a latent it depends
on. A latent :math:`s` is a candidate parent of site :math:`x` if in every run its group
is one that :math:`x` depends on:

.. math::

    C(x) = \bigcap_r \bigcup_{g \in G_r(x)} g \;\supseteq\; \mathrm{pa}(x),

where :math:`G_r(x)` are the groups :math:`x`'s shape varies along in run :math:`r`. Each
of those groups holds at least one true parent, so :math:`|\mathrm{pa}(x)| \ge
\max_r |G_r(x)|`; when :math:`|C(x)| = \max_r |G_r(x)|` the candidates *are* the parents.
The runs use different groupings (the digits of each latent's index, then seeded
shuffles) until every site is so certified, or until one table run can hold every
candidate scope, or :data:`MAX_GROUP_RUNS` runs. A candidate left over is settled in the
table run, where every candidate of a site has a dimension of its own (below): the site's
shape is singleton along a candidate it does not depend on, and
:func:`pvae.exact.factors.recover` drops that axis.

**Chunks** (the fall-back when there are more cardinalities than dimensions): latents
enumerated :data:`MAX_DIMS` at a time, each on its own dimension, the others held fixed.

The tables are then read off runs in which the latents of every scope have distinct
dimensions (:func:`colour`): latents of equal cardinality that share no scope share a
dimension, so a network of a thousand sites needs one or two table runs.
"""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["MAX_DIMS", "MAX_GROUP_RUNS", "by_chunks", "by_groups", "colour"]

#: Latent sites enumerated in one run of the model (torch allows 64 tensor dimensions).
MAX_DIMS = 56
#: Runs of :func:`by_groups` before the candidates left over go to the table runs, which
#: give each candidate its own dimension, so that the site's shape says which it depends on.
MAX_GROUP_RUNS = 4


def _grouping(latents: list, cards: dict, r: int) -> dict | None:
    """Run ``r``'s dimension for each latent, or None if the cardinalities need more."""
    classes: dict[int, list] = {}
    for s in latents:
        classes.setdefault(cards[s], []).append(s)
    if len(classes) > MAX_DIMS:
        return None
    n = len(latents)
    # every class of two or more latents gets at least two groups, or its members could
    # never be told apart; the rest of the dimensions in proportion to the class sizes
    sizes = {k: min(len(m), max(2, MAX_DIMS * len(m) // n)) for k, m in classes.items()}
    while sum(sizes.values()) > MAX_DIMS:
        k = max(sizes, key=sizes.__getitem__)
        if sizes[k] <= 2:
            return None
        sizes[k] -= 1
    dims, offset = {}, 0
    for k, members in classes.items():
        g = sizes[k]
        index = list(range(len(members)))
        if r >= 2:
            random.Random(r).shuffle(index)
        for s, j in zip(members, index, strict=True):
            group = (j // g) % g if r == 1 else j % g  # digits of j in base g, then shuffles
            dims[s] = -(offset + group + 1)
        offset += g
    return dims


def by_groups(run: Callable, latents: list, cards: dict) -> tuple[dict, set, list] | None:
    """Scopes by shared dimensions (see the module): ``(scopes, uncertified, runs)``.

    ``run(dims)`` runs the model with ``dims`` enumerated; None if the latents have more
    distinct cardinalities than :data:`MAX_DIMS`.
    """
    candidates: dict[str, set] = {}
    lower: dict[str, int] = {}
    done = []
    for r in range(MAX_GROUP_RUNS):
        dims = _grouping(latents, cards, r)
        if dims is None:
            return None
        members: dict[int, set] = {}
        for s, d in dims.items():
            members.setdefault(d, set()).add(s)
        out = run(dims)
        done.append(out)
        for name in out.sites:
            shape = out.sites[name]["fn"].batch_shape
            groups = {d - len(shape) for d in range(len(shape)) if shape[d] > 1}
            found = set().union(*(members.get(d, set()) for d in groups)) - {name}
            if name in candidates:
                candidates[name] &= found
            else:
                candidates[name] = found
            lower[name] = max(lower.get(name, 0), len(groups))
        uncertified = {n for n, c in candidates.items() if len(c) > lower[n]}
        scopes = {n: c | ({n} if n in cards else set()) for n, c in candidates.items()}
        if not uncertified or _settled_by_one_table_run(scopes, uncertified, cards):
            break
    return scopes, uncertified, done


def _settled_by_one_table_run(scopes: dict, uncertified: set, cards: dict) -> bool:
    """Whether one table run can hold every (candidate) scope on distinct dimensions: it
    then settles the candidates too, and another scope run would only cost time."""
    if any(len(scopes[n]) > MAX_DIMS for n in uncertified):
        return False
    return _greedy([n for n in scopes if scopes[n]], scopes, cards) is not None


def by_chunks(run: Callable, latents: list) -> tuple[dict, list]:
    """Scopes by chunks of :data:`MAX_DIMS` latents on their own dimensions: ``(scopes,
    runs)``."""
    scopes: dict[str, set] = {}
    done = []
    for i in range(0, max(len(latents), 1), MAX_DIMS):
        chunk = latents[i : i + MAX_DIMS]
        out = run({s: -(j + 1) for j, s in enumerate(chunk)})
        done.append(out)
        for name in out.sites:
            scopes.setdefault(name, set()).update(out.scope(name))
    return scopes, done


def _greedy(targets: list, scopes: dict, cards: dict) -> dict | None:
    """A dimension per latent, distinct within each target's scope, equal only between
    latents of one cardinality; None if that needs more than :data:`MAX_DIMS`."""
    near: dict[str, set] = {}
    for name in targets:
        for s in scopes[name]:
            near.setdefault(s, set()).update(u for u in scopes[name] if u != s)
    colours: dict[str, int] = {}
    card_of: list[int] = []
    for s in sorted(near, key=lambda u: -len(near[u])):  # most-connected first
        taken = {colours[u] for u in near[s] if u in colours}
        options = [c for c, k in enumerate(card_of) if k == cards[s] and c not in taken]
        if options:
            colours[s] = options[0]
        elif len(card_of) < MAX_DIMS:
            colours[s] = len(card_of)
            card_of.append(cards[s])
        else:
            return None
    return {s: -(c + 1) for s, c in colours.items()}


def colour(targets: list, scopes: dict, cards: dict) -> list[tuple[dict, list]]:
    """Table runs for ``targets``: ``[(dims, targets of the run)]``, the latents of each
    target's scope on distinct dimensions, at most :data:`MAX_DIMS` per run.

    A greedy colouring (most-connected latents first) of the graph that joins the members
    of each scope, colours grouped by cardinality; when the targets need more than
    :data:`MAX_DIMS` colours, they are split over several runs.
    """
    out, left = [], [t for t in targets if scopes[t]]
    while left:
        take = len(left)
        dims = _greedy(left, scopes, cards)
        while dims is None and take > 1:
            take = (take + 1) // 2
            dims = _greedy(left[:take], scopes, cards)
        if dims is None:
            raise ValueError(
                f"site {left[0]!r} depends on {len(scopes[left[0]])} latent sites, more than "
                f"the {MAX_DIMS} one run of the model can enumerate."
            )
        out.append((dims, left[:take]))
        left = left[take:]
    return out
