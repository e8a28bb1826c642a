r"""
Bayes' rule as a table: a screening test and a coin
===================================================

Bayes' rule, :math:`p(z \mid x) = p(x \mid z)\,p(z) / p(x)`, computed column by column:
prior, likelihood, joint (their product), evidence (the sum of the joint) and posterior
(joint divided by evidence). Two classic cases:

* the screening test of Eddy (1982): 1% prevalence, 80% sensitivity, 9.6% false positives,
  updated test by test;
* a coin's bias on a grid of hypotheses, checked against the conjugate Beta posterior.

Writes ``bayes_table.png`` (prior against posterior) to ``--out``.
"""

import argparse
import math
from pathlib import Path

import torch

import pvae
from pvae import plot


def main(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    prior = {"disease": args.prevalence, "healthy": 1 - args.prevalence}
    positive = {"disease": 0.80, "healthy": 0.096}  # P(positive test | hypothesis)
    table = pvae.bayes_rule(prior, positive)
    print("One positive test:")
    print(table)
    for test in range(2, args.num_tests + 1):
        table = table.update(positive)
        print(f"After {test} positive tests: P(disease) = {table.prob('disease'):.4f}")

    first = pvae.bayes_rule(prior, positive)
    fig = plot.bayes_table(first)
    fig.savefig(out / "bayes_table.png", dpi=100)

    # A coin's bias on a grid: h heads in n flips, uniform prior over the grid.
    heads, flips = args.heads, args.flips
    grid = torch.linspace(0, 1, args.grid_points, dtype=torch.float64)
    coin = pvae.bayes_rule(
        torch.full((args.grid_points,), 1 / args.grid_points, dtype=torch.float64),
        log_likelihood=heads * torch.log(grid) + (flips - heads) * torch.log1p(-grid),
    )
    mean = float((grid * coin.posterior).sum())
    exact = (heads + 1) / (flips + 2)  # mean of Beta(h + 1, n - h + 1)
    print(f"\nCoin, {heads} heads in {flips} flips, {args.grid_points}-point grid:")
    print(f"posterior mean {mean:.4f} (Beta posterior: {exact:.4f}); ", end="")
    print(f"log evidence {coin.log_evidence:.4f} nats")
    assert math.isclose(mean, exact, abs_tol=1e-3), (mean, exact)
    print(f"figure: {out / 'bayes_table.png'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--prevalence", default=0.01, type=float)
    parser.add_argument("--num-tests", default=4, type=int, help="positive tests in a row")
    parser.add_argument("--heads", default=7, type=int)
    parser.add_argument("--flips", default=10, type=int)
    parser.add_argument("--grid-points", default=1001, type=int)
    parser.add_argument("--out", default="out", help="folder for figures")
    parser.add_argument("--smoke", action="store_true", help="tiny settings for CI")
    args = parser.parse_args()
    if args.smoke:
        args.grid_points = 201
    main(args)
