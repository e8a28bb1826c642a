"""The ``pvae`` command: train, evaluate and sample models, print Bayes tables, run the demo.

::

    pvae demo [--out DIR] [--epochs N]           # VAE + autoencoder on digits, exact Bayes vs SVI
    pvae train --data digits --model vae --z-dim 8 --epochs 30 --out runs/vae
    pvae evaluate runs/vae/model.safetensors --data digits
    pvae sample runs/vae/model.safetensors -n 64 --out samples.png
    pvae bayes medical-test                      # a toy's Bayes table and exact posterior

``python -m pvae ...`` is the same command. Every subcommand has ``--help``. Wrong
arguments print the usage and exit with status 2; a missing file or a bad value prints one
line (``pvae: error: ...``) and exits with status 1. Heavy modules (torch, Pyro,
matplotlib) are imported only when a subcommand runs, so ``pvae --help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "main"]

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
MODEL_NAMES = {"vae": "VAE", "ae": "Autoencoder", "cvae": "ConditionalVAE"}


class CommandError(Exception):
    """A user mistake the command reports in one line (exit status 1)."""


# ----------------------------------------------------------------------------- bayes


def _format_value(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else f"{number:g}"


def cmd_bayes(args: argparse.Namespace) -> int:
    """Print a toy model's Bayes table (small joint spaces) and exact posterior marginals."""
    from pvae.exact import enumerate_posterior
    from pvae.exact.toy import PUBLISHED, TOYS

    model = TOYS[args.toy]
    doc = (model.__doc__ or "").strip().splitlines()
    title = re.sub(r":\w+:`([^`]*)`", r"\1", doc[0]) if doc else model.__name__  # drop roles
    print(f"{args.toy}: {title}\n")
    post = enumerate_posterior(model, method=args.method)
    table = None
    if post.method == "sequential":
        table = post.joint()
    elif len(post.sites) and args.method == "auto":
        try:
            table = enumerate_posterior(
                model, method="sequential", max_states=args.max_rows
            ).joint()
        except ValueError:
            table = None
    if table is not None and len(table.hypotheses) <= args.max_rows:
        header = ", ".join(post.sites)
        print(f"Bayes table over ({header}): prior p(z), likelihood p(x|z), posterior p(z|x)")
        print(table)
        print()
    elif table is not None:
        print(
            f"(the joint table has {len(table.hypotheses)} rows, more than --max-rows "
            f"{args.max_rows}; marginals only)\n"
        )
    print(f"Exact posterior by enumeration (engine: {post.method})")
    print(f"  log evidence log p(x) = {post.log_evidence:.6g} nats  (p(x) = {post.evidence:.6g})")
    for site in post.sites:
        support = [_format_value(v) for v in post.support(site).reshape(-1).tolist()]
        marginal = post.marginal(site)
        if marginal.dim() == 1:
            cells = ", ".join(
                f"{v}: {p:.4g}" for v, p in zip(support, marginal.tolist(), strict=True)
            )
            print(f"  p({site} | x) = {{{cells}}}")
        else:
            print(f"  p({site} | x), one row per data point, columns {support}:")
            for i, row in enumerate(marginal.reshape(-1, marginal.shape[-1]).tolist()):
                print(f"    [{i}] " + "  ".join(f"{p:.4f}" for p in row))
    for site, value, prob, source in PUBLISHED.get(args.toy, []):
        computed = post.prob(**{site: value})
        print(
            f"  published p({site}={value} | x) = {prob:.4g} ({source}); computed {computed:.4g}"
        )
    return 0


# ----------------------------------------------------------------------------- train & co


def _load_data(spec: str, binarize: str | None, seed: int) -> Any:
    from pvae.data import load_dataset

    if spec not in ("digits", "fashion-mnist", "fashion_mnist") and not Path(spec).is_file():
        raise FileNotFoundError(
            f"--data {spec}: no such file (expected digits, fashion-mnist or a "
            ".npy/.npz/.csv path)"
        )
    return load_dataset(spec, binarize=binarize, seed=seed)


def _binarize_for(likelihood: str, choice: str, *, training: bool) -> str | None:
    if choice != "auto":
        return None if choice == "none" else choice
    if likelihood != "bernoulli":
        return None
    return "dynamic" if training else "static"


def _load_model(path: str) -> Any:
    from pvae.training.checkpoint import load

    if not Path(path).is_file():
        raise FileNotFoundError(f"no such model file: {path}")
    model = load(path)
    if not hasattr(model, "model") or not hasattr(model, "config"):
        raise CommandError(f"{path} holds Pyro parameters, not a pvae model")
    return model.eval()


def _image_shape(model: Any, override: Sequence[int] | None, x_dim: int) -> tuple[int, int]:
    if override:
        if override[0] * override[1] != x_dim:
            raise CommandError(
                f"--image-shape {override[0]} {override[1]} does not hold {x_dim} pixels"
            )
        return (override[0], override[1])
    shape = tuple(getattr(model, "x_shape", ()))
    if len(shape) == 2:
        return (int(shape[0]), int(shape[1]))
    side = math.isqrt(x_dim)
    return (side, side) if side * side == x_dim else (1, x_dim)


def _samples_title(model: Any, label: int | None = None) -> str:
    if model.objective == "squared_error":
        return "Decoded random codes: an autoencoder has no prior to sample from"
    if type(model).__name__ == "ConditionalVAE":
        which = f"class {label}" if label is not None else "classes 0, 1, 2, ... in turn"
        return rf"Samples: decode $z \sim \mathcal{{N}}(0, I)$ given {which}"
    return r"Samples from the prior: decode $z \sim \mathcal{N}(0, I)$"


def _rank_and_world_size() -> tuple[int, int]:
    """This process's rank and the number of processes (``torchrun``), else ``(0, 1)``."""
    try:
        from pvae.training.distributed import current_context
    except ImportError:  # pragma: no cover - distributed support is optional
        return 0, 1
    context = current_context(device="cpu")
    return context.rank, context.world_size


def _print_metrics(name: str, metrics: dict) -> None:
    if "elbo" in metrics:
        print(
            f"{name}: ELBO {metrics['elbo']:.3f} ± {metrics['elbo_se']:.3f}, "
            f"log p(x) ≈ {metrics['log_likelihood']:.3f} ± {metrics['log_likelihood_se']:.3f} "
            f"nats per example (K = {metrics['num_particles']}); "
            f"reconstruction {metrics['reconstruction']:.3f}, KL {metrics['kl']:.3f}"
        )
    print(
        f"{name}: squared reconstruction error {metrics['squared_error']:.4f} "
        f"± {metrics['squared_error_se']:.4f} per example ({metrics['num_examples']} examples)"
    )


def build_model(
    kind: str,
    x_dim: int,
    z_dim: int,
    hidden: Sequence[int],
    likelihood: str,
    num_classes: int = 10,
) -> Any:
    """A fresh model from the command's ``--model`` name (``vae``, ``ae`` or ``cvae``)."""
    from pvae import models

    if kind == "ae":
        return models.Autoencoder(x_dim, z_dim, hidden=tuple(hidden), output_activation="sigmoid")
    if kind == "cvae":
        return models.ConditionalVAE(
            x_dim, z_dim, num_classes=num_classes, hidden=tuple(hidden), likelihood=likelihood
        )
    return models.VAE(x_dim, z_dim, hidden=tuple(hidden), likelihood=likelihood)


def cmd_train(args: argparse.Namespace) -> int:
    """Train a model on a data set, save it, its history, metrics and figures to ``--out``."""
    from pvae import plot
    from pvae.data import DynamicBinarized
    from pvae.training.checkpoint import save
    from pvae.training.fit import fit

    likelihood = "gaussian" if args.model == "ae" else args.likelihood
    data = _load_data(
        args.data, _binarize_for(likelihood, args.binarize, training=True), args.seed
    )
    if args.model == "cvae" and data.y_train is None:
        raise CommandError(
            f"--model cvae needs labels, and {args.data} has none (add 'y' to the .npz)"
        )
    num_classes = (
        max(len(data.classes), int(data.y_train.max()) + 1) if data.y_train is not None else 1
    )
    import pyro

    pyro.set_rng_seed(args.seed)  # the initial weights too: same seed, same model
    model = build_model(args.model, data.x_dim, args.z_dim, args.hidden, likelihood, num_classes)
    if args.model == "cvae":
        train = (
            DynamicBinarized(data.x_train, data.y_train)
            if data.binarize == "dynamic"
            else (data.x_train, data.y_train)
        )
        val = (data.x_test, data.y_test)
    else:
        train, val = data.train, data.x_test
    start = time.perf_counter()
    result = fit(
        model,
        train,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        val_data=val,
        progress=args.progress,
    )
    seconds = time.perf_counter() - start
    rank, world_size = _rank_and_world_size()
    if rank != 0:  # under torchrun only rank 0 writes
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    from pvae.app.report import evaluate_model

    metrics = evaluate_model(
        model,
        data.x_test,
        data.y_test if args.model == "cvae" else None,
        num_particles=args.num_particles,
    )
    save(model, out / "model.safetensors")
    record = {
        "model": MODEL_NAMES[args.model],
        "data": data.name,
        "binarize": data.binarize,
        "image_shape": list(data.image_shape),
        "epochs": args.epochs,
        "seed": args.seed,
        "best_epoch": result.best_epoch,
        "world_size": world_size,
        "train_seconds": round(seconds, 3),
        "test": metrics,
        "history": result.history,
    }
    (out / "metrics.json").write_text(json.dumps(record, indent=2))
    plot.training_curves(result.history).savefig(out / "training_curves.png", dpi=110)
    import torch

    with torch.no_grad():
        images = model.sample(64)
    fig = plot.samples(images.reshape(64, -1), data.image_shape, title=_samples_title(model))
    fig.savefig(out / "samples.png", dpi=110)
    _print_metrics(MODEL_NAMES[args.model], metrics)
    print(
        f"trained in {seconds:.1f} s; wrote {out / 'model.safetensors'}, metrics.json, "
        "training_curves.png, samples.png"
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a saved model on a data set's test split."""
    import torch

    model = _load_model(args.model)
    likelihood = getattr(getattr(model, "likelihood", None), "name", "gaussian")
    data = _load_data(
        args.data, _binarize_for(likelihood, args.binarize, training=False), args.seed
    )
    x, y = (data.x_train, data.y_train) if args.split == "train" else (data.x_test, data.y_test)
    features = int(torch.Size(model.x_shape).numel())
    if x.shape[1] != features:
        raise CommandError(
            f"{args.model} expects {features} features per example, {data.name} has {x.shape[1]}"
        )
    if type(model).__name__ != "ConditionalVAE":
        y = None
    from pvae.app.report import evaluate_model

    metrics = evaluate_model(model, x, y, num_particles=args.num_particles)
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        _print_metrics(f"{type(model).__name__} on {data.name} ({args.split})", metrics)
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    """Decode ``-n`` draws from the prior of a saved model and save them as a PNG grid."""
    import pyro
    import torch

    from pvae import plot

    model = _load_model(args.model)
    pyro.set_rng_seed(args.seed)
    x_dim = int(torch.Size(model.x_shape).numel())
    with torch.no_grad():
        if type(model).__name__ == "ConditionalVAE":
            images = model.sample(args.n, y=args.label)
        else:
            images = model.sample(args.n)
    shape = _image_shape(model, args.image_shape, x_dim)
    fig = plot.samples(images.reshape(args.n, -1), shape, title=_samples_title(model, args.label))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.n} samples to {args.out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo and write the HTML report."""
    from pvae.app.report import run_demo

    result = run_demo(
        args.out, epochs=args.epochs, seed=args.seed, smoke=args.smoke, progress=args.progress
    )
    print(f"report: {result.report.resolve()}")
    print(f"open it with:  xdg-open {result.report}   (or any browser; it works offline)")
    return 0


# ----------------------------------------------------------------------------- parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


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
            help="show a progress bar (default: only on a terminal)",
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
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
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
        help="vae, ae (autoencoder) or cvae (conditional VAE; needs labels)",
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
        default="bernoulli",
        help="p(x|z) of a VAE (default: %(default)s)",
    )
    train.add_argument("--binarize", choices=binarize_choices, default="auto", help=binarize_help)
    train.add_argument("--epochs", type=_positive_int, default=30, help="default: %(default)s")
    train.add_argument(
        "--batch-size", type=_positive_int, default=128, help="default: %(default)s"
    )
    train.add_argument("--lr", type=_positive_float, default=1e-3, help="default: %(default)s")
    train.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    train.add_argument(
        "--num-particles",
        type=_positive_int,
        default=100,
        help="importance samples for the test log-likelihood (default: 100)",
    )
    train.add_argument("--out", required=True, help="output folder")
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
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the binarization")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
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
    sample.add_argument("--seed", type=int, default=0, help="default: %(default)s")
    sample.add_argument(
        "--label",
        type=int,
        default=None,
        help="class to generate (conditional VAE; default: cycle 0-9)",
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
        help="print a toy model's Bayes table and exact posterior",
        description="Enumerate a toy model's discrete latents and print the "
        "Bayes table (prior, likelihood, joint, posterior) and the exact "
        "posterior marginals. Toys: " + ", ".join(TOY_NAMES) + ".",
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
