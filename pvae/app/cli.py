"""The ``pvae`` command: train, evaluate and sample models, print Bayes tables, run the demo.

::

    pvae demo [--out DIR] [--epochs N]           # VAE + autoencoder on digits, exact Bayes vs SVI
    pvae train --data digits --model vae --z-dim 8 --epochs 30 --out runs/vae
    pvae evaluate runs/vae/model.safetensors --data digits
    pvae sample runs/vae/model.safetensors -n 64 --out samples.png
    pvae bayes medical-test --test negative      # a toy's Bayes table, given your data
    pvae bayes coin-bias --flips HHTHT           # rows labelled by the bias theta

``python -m pvae ...`` is the same command. Every subcommand has ``--help``. Wrong
arguments print the usage and exit with status 2; a missing file or a bad value prints one
line (``pvae: error: ...``) and exits with status 1. Heavy modules (torch, Pyro,
matplotlib) are imported only when a subcommand runs, so ``pvae --help`` is instant.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from pvae import _checks
from pvae.app.bayes_command import add_data_options
from pvae.app.commands import (
    CommandError,
    build_model,
    cmd_bayes,
    cmd_demo,
    cmd_evaluate,
    cmd_sample,
    cmd_train,
)
from pvae.models.registry import MODELS

__all__ = ["MODEL_NAMES", "TOY_NAMES", "build_model", "build_parser", "main"]

#: Names of :data:`pvae.exact.toy.TOYS`, kept here so ``--help`` needs no import of Pyro.
TOY_NAMES = (
    "burglary-alarm",
    "coin-bias",
    "gaussian-mixture",
    "medical-test",
    "monty-hall",
    "sprinkler",
    "toy-vae",
)
#: ``--model`` names: the short aliases of :data:`pvae.models.MODELS` (read without torch).
MODEL_NAMES = MODELS.aliases


def _argument(convert, check, what: str):
    """An argparse ``type=``: ``convert`` the text, then check it (:mod:`pvae._checks`)."""

    def parse(text: str):
        try:
            return check("value", convert(text))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None

    parse.__name__ = what  # argparse names the type in its messages
    return parse


_positive_int = _argument(int, _checks.positive_int, "a positive integer")
_nonnegative_int = _argument(int, _checks.nonnegative_int, "an integer >= 0")
_positive_float = _argument(float, _checks.positive_float, "a positive number")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``pvae`` command (one subparser per subcommand)."""
    from pvae import __version__

    parser = argparse.ArgumentParser(
        prog="pvae",
        description="Variational inference on Pyro and PyTorch, checked against exact answers.",
        epilog="Run `pvae COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"pvae {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def progress_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--progress",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="progress on stderr: a bar on a terminal, a plain line every few seconds "
            "in a log or pipe (default: on; --no-progress or --quiet silence it)",
        )
        p.add_argument(
            "--quiet", "-q", action="store_true", help="no progress output (as --no-progress)"
        )
        p.add_argument(
            "--device",
            default="cpu",
            help="cpu, cuda, cuda:N, mps, or auto (a GPU where there is one; default: cpu)",
        )

    demo = sub.add_parser(
        "demo",
        help="train a VAE and an autoencoder on digits, compare exact Bayes with SVI, "
        "and write an HTML report",
        description="Train a VAE and an autoencoder on scikit-learn's 8x8 digits, evaluate both "
        "(ELBO, importance-weighted log-likelihood, reconstruction error), fit a mean-field "
        "guide by SVI to a toy Bayesian network and compare it with the exact posterior, then "
        "write OUT/report.html (self-contained), OUT/metrics.json, the figures and the models.",
    )
    demo.add_argument("--out", default="demo-output", help="output folder (default: %(default)s)")
    demo.add_argument(
        "--epochs",
        type=_positive_int,
        default=None,
        help="training epochs of each model (default: 60; 2 with --smoke)",
    )
    demo.add_argument(
        "--seed", type=_nonnegative_int, default=0, help="random seed (default: %(default)s)"
    )
    demo.add_argument(
        "--smoke",
        action="store_true",
        help="tiny networks and few samples: checks the pipeline in seconds",
    )
    progress_flag(demo)
    demo.set_defaults(func=cmd_demo)

    data_help = "digits (bundled), fashion-mnist (IDX files), or a .npy/.npz/.csv file"
    binarize_help = (
        "none, static, dynamic, or auto (default: dynamic for training and static "
        "for testing when the likelihood is bernoulli, else none)"
    )
    binarize_choices = ("auto", "none", "static", "dynamic")

    train = sub.add_parser(
        "train",
        help="train a model and save it",
        description="Train a model on a data set and write OUT/model."
        "safetensors, OUT/metrics.json and figures.",
    )
    train.add_argument("--data", default="digits", help=f"{data_help} (default: %(default)s)")
    train.add_argument(
        "--model",
        choices=sorted(MODEL_NAMES),
        default="vae",
        help=", ".join(f"{a} ({n})" for a, n in MODEL_NAMES.items())
        + "; cvae needs labels (default: %(default)s)",
    )
    train.add_argument(
        "--z-dim", type=_positive_int, default=8, help="latent/code size (default: 8)"
    )
    train.add_argument(
        "--hidden",
        type=_positive_int,
        nargs="*",
        default=[256],
        help="hidden layer widths (default: 256)",
    )
    train.add_argument(
        "--likelihood",
        choices=("bernoulli", "continuous_bernoulli", "gaussian"),
        default=None,
        help="p(x|z) of a VAE (default: bernoulli); refused for --model ae, which is trained "
        "on squared error",
    )
    train.add_argument("--binarize", choices=binarize_choices, default="auto", help=binarize_help)
    train.add_argument("--epochs", type=_positive_int, default=30, help="default: %(default)s")
    train.add_argument(
        "--batch-size", type=_positive_int, default=128, help="default: %(default)s"
    )
    train.add_argument("--lr", type=_positive_float, default=1e-3, help="default: %(default)s")
    train.add_argument("--seed", type=_nonnegative_int, default=0, help="default: %(default)s")
    train.add_argument(
        "--num-particles",
        type=_positive_int,
        default=100,
        help="importance samples for the test log-likelihood (default: 100)",
    )
    train.add_argument("--out", required=True, help="output folder")
    train.add_argument(
        "--checkpoint-dir",
        default=None,
        help="folder of the training checkpoints last.safetensors and best.safetensors, "
        "written every epoch and on Ctrl-C (default: OUT/checkpoints)",
    )
    train.add_argument(
        "--resume",
        default=None,
        metavar="CHECKPOINT",
        help="continue an interrupted run from its checkpoint (e.g. "
        "OUT/checkpoints/last.safetensors), with the same other arguments",
    )
    progress_flag(train)
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser(
        "evaluate",
        help="evaluate a saved model on test data",
        description="Print the ELBO, the importance-weighted log-likelihood "
        "and the reconstruction error of a saved model.",
    )
    evaluate.add_argument("model", metavar="MODEL", help="a .safetensors file written by pvae")
    evaluate.add_argument("--data", default="digits", help=f"{data_help} (default: %(default)s)")
    evaluate.add_argument("--split", choices=("test", "train"), default="test")
    evaluate.add_argument(
        "--binarize", choices=binarize_choices, default="auto", help=binarize_help
    )
    evaluate.add_argument(
        "--num-particles",
        type=_positive_int,
        default=1000,
        help="importance samples K (default: %(default)s)",
    )
    evaluate.add_argument(
        "--seed", type=_nonnegative_int, default=0, help="seed of the binarization"
    )
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
    progress_flag(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    sample = sub.add_parser(
        "sample",
        help="draw samples from a saved model into a PNG",
        description="Decode draws z ~ p(z) of a saved model into a PNG grid.",
    )
    sample.add_argument("model", metavar="MODEL", help="a .safetensors file written by pvae")
    sample.add_argument(
        "-n", type=_positive_int, default=64, help="number of samples (default: 64)"
    )
    sample.add_argument("--out", required=True, help="PNG file to write")
    sample.add_argument("--seed", type=_nonnegative_int, default=0, help="default: %(default)s")
    sample.add_argument(
        "--label",
        type=int,
        default=None,
        help="class to generate (conditional VAE only; default: cycle 0-9)",
    )
    sample.add_argument(
        "--image-shape",
        type=_positive_int,
        nargs=2,
        metavar=("H", "W"),
        help="image height and width (default: from the model, or square)",
    )
    sample.set_defaults(func=cmd_sample)

    bayes = sub.add_parser(
        "bayes",
        help="print a toy model's Bayes table and exact posterior, given your data",
        description="Enumerate a toy model's discrete latents and print the "
        "Bayes table (prior, likelihood, joint, posterior) and the exact "
        "posterior marginals, for the data you give (a test result, coin flips, "
        "the doors chosen and opened, ...). Toys: " + ", ".join(TOY_NAMES) + ".",
        epilog="examples: pvae bayes medical-test --test negative;  "
        "pvae bayes coin-bias --flips HHTHHHTH;  pvae bayes monty-hall --chosen 2 --opened 0",
    )
    bayes.add_argument(
        "toy", metavar="TOY", choices=TOY_NAMES, help="one of: " + ", ".join(TOY_NAMES)
    )
    bayes.add_argument(
        "--method",
        choices=("auto", "parallel", "sequential"),
        default="auto",
        help="enumeration engine (default: %(default)s)",
    )
    bayes.add_argument(
        "--max-rows",
        type=_positive_int,
        default=32,
        help="print the joint table only up to this many rows (default: 32)",
    )
    add_data_options(bayes)
    bayes.set_defaults(func=cmd_bayes)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``pvae`` command; returns the exit status.

    Examples
    --------
    >>> main(["bayes", "medical-test"])  # doctest: +ELLIPSIS
    medical-test: Screening for a rare disease (Eddy 1982).
    ...
      p(disease | x) = {0: 0.9224, 1: 0.07764}
    ...
    0
    """
    os.environ.setdefault("MPLBACKEND", "Agg")
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "quiet", False):
        args.progress = False
    try:
        return int(args.func(args) or 0)
    except OSError as err:  # missing file, not a folder, no permission, disk full ...
        message = str(err) if not err.filename else f"{err.strerror or err}: {err.filename}"
        print(f"pvae: error: {message}", file=sys.stderr)
    except (CommandError, ValueError, FloatingPointError) as err:
        print(f"pvae: error: {err}", file=sys.stderr)
    except KeyboardInterrupt:
        print("pvae: interrupted", file=sys.stderr)
        return 130
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
