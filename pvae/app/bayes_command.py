r"""``pvae bayes``: a toy model's Bayes table and exact posterior, given *your* data.

Each toy takes the data of a coursework question as options; an option of another toy is
refused (it would be silently ignored otherwise):

================  =================================================  =========================
toy               data options                                       default
================  =================================================  =========================
medical-test      ``--test positive|negative``                       positive
coin-bias         ``--flips HHTHT`` (H/T or 1/0), ``--num-points N``  7 heads in 10, 20 points
monty-hall        ``--chosen DOOR --opened DOOR`` (doors 0, 1, 2)    chosen 0, opened 1
burglary-alarm    ``--john-calls 0|1 --mary-calls 0|1``              both call
sprinkler         ``--wet-grass 0|1``                                wet
gaussian-mixture  ``--points X [X ...]``                             seven points
================  =================================================  =========================

The coin's rows are labelled by the bias :math:`\theta` (the grid's midpoints), not by the
grid index the model samples.

Examples
--------
>>> from pvae.app.cli import main
>>> main(["bayes", "medical-test", "--test", "negative"])  # doctest: +ELLIPSIS
medical-test: Screening for a rare disease (Eddy 1982).
...
  p(disease | x) = {0: 0.9978, 1: 0.00223}
0
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from typing import Any

__all__ = ["DATA_OPTIONS", "add_data_options", "cmd_bayes", "toy_data"]

#: ``pvae bayes`` data options: argparse destination -> the toys that take it.
DATA_OPTIONS = {
    "test": ("medical-test",),
    "flips": ("coin-bias",),
    "num_points": ("coin-bias",),
    "chosen": ("monty-hall",),
    "opened": ("monty-hall",),
    "john_calls": ("burglary-alarm",),
    "mary_calls": ("burglary-alarm",),
    "wet_grass": ("sprinkler",),
    "points": ("gaussian-mixture",),
}


#: The largest ``--num-points``: the coin's grid is one enumerated site of that many values.
MAX_GRID_POINTS = 10_000


def _grid_points(text: str) -> int:
    """``--num-points``: an integer from 2 to :data:`MAX_GRID_POINTS` (argparse exits 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 2 <= value <= MAX_GRID_POINTS:
        raise argparse.ArgumentTypeError(
            f"expected an integer from 2 to {MAX_GRID_POINTS:,}, got {text!r}"
        )
    return value


_grid_points.__name__ = "grid size"  # argparse names the type in its messages


class _Error(ValueError):
    """A data option that does not fit (``pvae: error: ...``, exit status 1)."""


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """Add the toys' data options to the ``bayes`` subparser (all default to ``None``)."""
    group = parser.add_argument_group("data (each toy takes its own; see the table above)")
    group.add_argument("--test", choices=("positive", "negative"), help="medical-test: result")
    group.add_argument("--flips", help="coin-bias: the flips, e.g. HHTHT or 1,1,0,1,0")
    group.add_argument("--num-points", type=_grid_points, help="coin-bias: grid points for theta")
    group.add_argument("--chosen", type=int, choices=(0, 1, 2), help="monty-hall: your door")
    group.add_argument("--opened", type=int, choices=(0, 1, 2), help="monty-hall: host's door")
    group.add_argument("--john-calls", type=int, choices=(0, 1), help="burglary-alarm")
    group.add_argument("--mary-calls", type=int, choices=(0, 1), help="burglary-alarm")
    group.add_argument("--wet-grass", type=int, choices=(0, 1), help="sprinkler")
    group.add_argument("--points", type=float, nargs="+", help="gaussian-mixture: the data")


def _flips(text: str) -> list[float]:
    cells = [c for c in re.split(r"[\s,]+", text.strip().upper()) if c]
    chars = list(cells[0]) if len(cells) == 1 else cells
    table = {"H": 1.0, "T": 0.0, "1": 1.0, "0": 0.0}
    if not chars or any(c not in table for c in chars):
        raise _Error(
            f"--flips must be heads and tails as H/T or 1/0 (e.g. HHTHT or 1,1,0,1,0), "
            f"got {text!r}"
        )
    return [table[c] for c in chars]


def toy_data(toy: str, args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of the toy model from the data options; refuses other toys' ones.

    Examples
    --------
    >>> toy_data("monty-hall", argparse.Namespace(chosen=2, opened=0))
    {'chosen': 2, 'opened': 0}
    >>> toy_data("sprinkler", argparse.Namespace(test="positive"))
    Traceback (most recent call last):
    ...
    pvae.app.bayes_command._Error: --test does not apply to sprinkler (it is a medical-test ...
    """
    import torch

    given = {k: getattr(args, k) for k in DATA_OPTIONS if getattr(args, k, None) is not None}
    for key in given:
        if toy not in DATA_OPTIONS[key]:
            flag = "--" + key.replace("_", "-")
            takes = [f"--{k.replace('_', '-')}" for k, toys in DATA_OPTIONS.items() if toy in toys]
            raise _Error(
                f"{flag} does not apply to {toy} (it is a {' / '.join(DATA_OPTIONS[key])} "
                f"option); {toy} takes {', '.join(takes) if takes else 'no data options'}"
            )
    kw: dict[str, Any] = {}
    if "test" in given:
        kw["test"] = 1.0 if given["test"] == "positive" else 0.0
    if "flips" in given:
        kw["flips"] = torch.tensor(_flips(given["flips"]), dtype=torch.float64)
    if "num_points" in given:
        if given["num_points"] < 2:
            raise _Error(f"--num-points must be at least 2, got {given['num_points']}")
        kw["num_points"] = given["num_points"]
    if toy == "monty-hall" and ("chosen" in given or "opened" in given):
        chosen = given.get("chosen", 0)
        opened = given.get("opened", min(d for d in (0, 1, 2) if d != chosen))
        if chosen == opened:
            raise _Error(
                f"--opened {opened} is your own door: the host never opens the door you chose; "
                "pass another --opened"
            )
        kw.update(chosen=chosen, opened=opened)
    for key in ("john_calls", "mary_calls", "wet_grass"):
        if key in given:
            kw[key] = float(given[key])
    if "points" in given:
        kw["data"] = torch.tensor(given["points"], dtype=torch.float64)
    return kw


def _format_value(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else f"{number:g}"


def _labels(toy: str, post: Any, kw: dict) -> dict[str, tuple[str, list[str]]]:
    """Per site: the name to print and the labels of its support values."""
    out = {}
    for site in post.sites:
        values = post.support(site).reshape(-1).tolist()
        if toy == "coin-bias" and site == "bias":
            from pvae.exact.toy import bias_grid

            grid = bias_grid(kw.get("num_points", 20)).tolist()
            out[site] = ("theta", [f"{grid[int(v)]:.4g}" for v in values])
        else:
            out[site] = (site, [_format_value(v) for v in values])
    return out


def _relabel(table: Any, sites: tuple, labels: dict) -> Any:
    """The joint table with readable hypotheses: ``1``, ``theta=0.65`` or ``a=0, b=1``."""
    index = {s: dict(zip(labels[s][2], labels[s][1], strict=True)) for s in sites}

    def name(hypothesis: tuple) -> str:
        cells = [
            (labels[s][0], "-" if v is None else index[s].get(_format_value(v), str(v)))
            for s, v in zip(sites, hypothesis, strict=True)
        ]
        if len(cells) == 1 and cells[0][0] == sites[0]:
            return cells[0][1]
        return ", ".join(f"{k}={v}" for k, v in cells)

    return dataclasses.replace(table, hypotheses=tuple(name(h) for h in table.hypotheses))


def cmd_bayes(args: argparse.Namespace) -> int:
    """Print a toy model's Bayes table (small joint spaces) and exact posterior marginals."""
    from pvae.exact import enumerate_posterior
    from pvae.exact.toy import PUBLISHED, TOYS

    kw = toy_data(args.toy, args)
    model = TOYS[args.toy]
    doc = (model.__doc__ or "").strip().splitlines()
    title = re.sub(r":\w+:`([^`]*)`", r"\1", doc[0]) if doc else model.__name__  # drop roles
    print(f"{args.toy}: {title}\n")
    if kw:
        shown = {k: v.tolist() if hasattr(v, "tolist") else v for k, v in kw.items()}
        print("data: " + ", ".join(f"{k}={v}" for k, v in shown.items()) + "\n")
    post = enumerate_posterior(model, method=args.method, **kw)
    labels = {
        s: (name, labs, [_format_value(v) for v in post.support(s).reshape(-1).tolist()])
        for s, (name, labs) in _labels(args.toy, post, kw).items()
    }
    table = None
    if post.method == "sequential":
        table = post.joint()
    elif len(post.sites) and args.method == "auto":
        try:
            table = enumerate_posterior(
                model, method="sequential", max_states=args.max_rows, **kw
            ).joint()
        except ValueError:  # more joint states than --max-rows: print the marginals only
            table = None
    if table is not None and len(table.hypotheses) <= args.max_rows:
        header = ", ".join(labels[s][0] for s in post.sites)
        print(f"Bayes table over ({header}): prior p(z), likelihood p(x|z), posterior p(z|x)")
        print(_relabel(table, post.sites, labels).format(max_rows=None))
        print()
    elif table is not None:
        print(
            f"(the joint table has {len(table.hypotheses)} rows, more than --max-rows "
            f"{args.max_rows}; marginals only)\n"
        )
    print(f"Exact posterior by enumeration (engine: {post.method})")
    print(f"  log evidence log p(x) = {post.log_evidence:.6g} nats  (p(x) = {post.evidence:.6g})")
    for site in post.sites:
        name, support, _ = labels[site]
        marginal = post.marginal(site)
        if marginal.dim() == 1:
            cells = ", ".join(
                f"{v}: {p:.4g}" for v, p in zip(support, marginal.tolist(), strict=True)
            )
            print(f"  p({name} | x) = {{{cells}}}")
        else:
            print(f"  p({name} | x), one row per data point, columns {support}:")
            for i, row in enumerate(marginal.reshape(-1, marginal.shape[-1]).tolist()):
                print(f"    [{i}] " + "  ".join(f"{p:.4f}" for p in row))
    if not kw:  # the published answers are for the default data
        for site, value, prob, source in PUBLISHED.get(args.toy, []):
            computed = post.prob(**{site: value})
            print(
                f"  published p({site}={value} | x) = {prob:.4g} ({source}); "
                f"computed {computed:.4g}"
            )
    return 0
