"""The subcommands of ``pvae``: ``train``, ``evaluate``, ``sample``, ``demo`` and ``bayes``.

Each ``cmd_*`` function takes the parsed arguments of :func:`pvae.app.cli.build_parser`
and returns the exit status. A user mistake the command can explain raises
:class:`CommandError` (or ``ValueError`` / ``OSError``), which :func:`pvae.app.cli.main`
prints as one line. Heavy modules (torch, Pyro, matplotlib) are imported inside the
functions, so importing this module (and ``pvae --help``) stays instant.

Examples
--------
>>> build_model("ae", x_dim=4, z_dim=2, hidden=[3], likelihood="gaussian", seed=0).code_dim
2
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pvae._checks import torch_device
from pvae.app.bayes_command import cmd_bayes  # ``pvae bayes`` and the toys' data
from pvae.models.registry import MODELS

__all__ = [
    "CommandError",
    "build_model",
    "cmd_bayes",
    "cmd_demo",
    "cmd_evaluate",
    "cmd_sample",
    "cmd_train",
]


class CommandError(Exception):
    """A user mistake the command reports in one line (exit status 1)."""


def build_model(
    kind: str,
    x_dim: int,
    z_dim: int,
    hidden: Sequence[int],
    likelihood: str,
    num_classes: int = 10,
    *,
    seed: int | None = None,
) -> Any:
    """A fresh model from a ``--model`` name: an alias (``vae``, ``ae``, ``cvae``) or a
    class name of :data:`pvae.models.MODELS`; ``seed`` fixes its initial weights."""
    from pvae.models import ConditionalVAE
    from pvae.models.protocol import objective

    cls = MODELS.resolve(kind)
    if objective(cls) == "squared_error":
        return cls(x_dim, z_dim, hidden=tuple(hidden), output_activation="sigmoid", seed=seed)
    kwargs = {"num_classes": num_classes} if issubclass(cls, ConditionalVAE) else {}
    return cls(x_dim, z_dim, hidden=tuple(hidden), likelihood=likelihood, seed=seed, **kwargs)


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
    from pvae.models.protocol import PvaeModel
    from pvae.training.checkpoint import load

    if not Path(path).is_file():
        raise FileNotFoundError(f"no such model file: {path}")
    model = load(path)
    if not isinstance(model, PvaeModel):
        raise CommandError(f"{path} holds Pyro parameters, not a pvae model")
    return model.eval()


def _is_conditional(model: Any) -> bool:
    from pvae.models import ConditionalVAE

    return isinstance(model, ConditionalVAE)


def _image_shape(model: Any, override: Sequence[int] | None, x_dim: int) -> tuple[int, int]:
    if override:
        if override[0] * override[1] != x_dim:
            raise CommandError(
                f"--image-shape {override[0]} {override[1]} does not hold {x_dim} pixels"
            )
        return (override[0], override[1])
    if len(model.x_shape) == 2:
        return (int(model.x_shape[0]), int(model.x_shape[1]))
    side = math.isqrt(x_dim)
    return (side, side) if side * side == x_dim else (1, x_dim)


def _samples_title(model: Any, label: int | None = None) -> str:
    from pvae.models.protocol import objective

    if objective(model) == "squared_error":
        return "Decoded random codes: an autoencoder has no prior to sample from"
    if _is_conditional(model):
        which = f"class {label}" if label is not None else "classes 0, 1, 2, ... in turn"
        return rf"Samples: decode $z \sim \mathcal{{N}}(0, I)$ given {which}"
    return r"Samples from the prior: decode $z \sim \mathcal{N}(0, I)$"


def _rank_and_world_size() -> tuple[int, int]:
    """This process's rank and the number of processes (``torchrun``), else ``(0, 1)``."""
    from pvae.training.distributed import current_context

    context = current_context(device="cpu")
    return context.rank, context.world_size


def cmd_train(args: argparse.Namespace) -> int:
    """Train a model on a data set, save it, its history, metrics and figures to ``--out``."""
    import torch

    from pvae import plot
    from pvae._seed import seeded
    from pvae.app.metrics import evaluate_model, format_metrics
    from pvae.data import DynamicBinarized
    from pvae.models.protocol import objective
    from pvae.training.checkpoint import save
    from pvae.training.loop import fit

    name = MODELS.aliases.get(args.model, args.model)
    squared_error = objective(MODELS.resolve(args.model)) == "squared_error"
    if squared_error and args.likelihood is not None:
        raise CommandError(
            f"--likelihood does not apply to --model {args.model}: an autoencoder is trained on "
            "squared error and has no likelihood p(x|z). Drop --likelihood, or train a VAE "
            "(--model vae)"
        )
    likelihood = "gaussian" if squared_error else args.likelihood or "bernoulli"
    device = torch_device("--device", args.device)
    data = _load_data(
        args.data, _binarize_for(likelihood, args.binarize, training=True), args.seed
    )
    conditional = args.model == "cvae"
    if conditional and data.y_train is None:
        raise CommandError(
            f"--model cvae needs labels, and {args.data} has none (add 'y' to the .npz)"
        )
    num_classes = (
        max(len(data.classes), int(data.y_train.max()) + 1) if data.y_train is not None else 1
    )
    model = build_model(
        args.model, data.x_dim, args.z_dim, args.hidden, likelihood, num_classes, seed=args.seed
    )
    if conditional:
        train = (
            DynamicBinarized(data.x_train, data.y_train)
            if data.binarize == "dynamic"
            else (data.x_train, data.y_train)
        )
        val = (data.x_test, data.y_test)
    else:
        train, val = data.train, data.x_test
    out = Path(args.out)
    checkpoints = Path(args.checkpoint_dir) if args.checkpoint_dir else out / "checkpoints"
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
        device=device,
        checkpoint_dir=checkpoints,
        resume_from=args.resume,
    )
    seconds = time.perf_counter() - start
    rank, world_size = _rank_and_world_size()
    if result.stopped == "interrupted":
        return _train_interrupted(args, result, name, data, world_size, seconds, rank)
    if rank != 0:  # under torchrun only rank 0 writes
        return 0
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    labels = data.y_test if conditional else None
    model.cpu()
    metrics = evaluate_model(
        model, data.x_test, labels, num_particles=args.num_particles, progress=args.progress
    )
    save(model, out / "model.safetensors")
    record = {
        "model": name,
        "data": data.name,
        "binarize": data.binarize,
        "image_shape": list(data.image_shape),
        "epochs": len(result.history),
        "epochs_requested": args.epochs,
        "interrupted": False,
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
        "seed": args.seed,
        "best_epoch": result.best_epoch,
        "world_size": world_size,
        "train_seconds": round(seconds, 3),
        "test": metrics,
        "history": result.history,
    }
    (out / "metrics.json").write_text(json.dumps(record, indent=2))
    plot.training_curves(result.history).savefig(out / "training_curves.png", dpi=110)
    with torch.no_grad(), seeded(args.seed):
        images = model.sample(64)
    fig = plot.samples(images.reshape(64, -1), data.image_shape, title=_samples_title(model))
    fig.savefig(out / "samples.png", dpi=110)
    print(format_metrics(name, metrics))
    print(
        f"trained in {seconds:.1f} s; wrote {out / 'model.safetensors'}, metrics.json, "
        "training_curves.png, samples.png"
    )
    return 0


def _train_interrupted(
    args: argparse.Namespace,
    result: Any,
    name: str,
    data: Any,
    world_size: int,
    seconds: float,
    rank: int,
) -> int:
    """Ctrl-C during ``pvae train``: record what was done as such; exit status 130.

    No ``model.safetensors`` is written (the model is not trained as asked); metrics.json
    holds the epochs actually run, ``"interrupted": true`` and the checkpoint to resume
    from, and stderr says how to continue.
    """
    if rank != 0:
        return 130
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    done = len(result.history)
    record = {
        "model": name,
        "data": data.name,
        "binarize": data.binarize,
        "image_shape": list(data.image_shape),
        "epochs": done,
        "epochs_requested": args.epochs,
        "interrupted": True,
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
        "seed": args.seed,
        "best_epoch": result.best_epoch if done else None,
        "world_size": world_size,
        "train_seconds": round(seconds, 3),
        "test": None,
        "history": result.history,
    }
    (out / "metrics.json").write_text(json.dumps(record, indent=2))
    if result.checkpoint is not None:
        again = f"to continue, run the same command with --resume {result.checkpoint}"
    else:
        again = "no checkpoint was written (interrupted before the first step); start again"
    print(
        f"pvae: interrupted after {done} of {args.epochs} epochs; no model.safetensors was "
        f'written; wrote {out / "metrics.json"} ("interrupted": true); {again}',
        file=sys.stderr,
    )
    return 130


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a saved model on a data set's test (or training) split."""
    import torch

    from pvae.app.metrics import evaluate_model, format_metrics

    model = _load_model(args.model)
    binarize = _binarize_for(model.likelihood.name, args.binarize, training=False)
    data = _load_data(args.data, binarize, args.seed)
    x, y = (data.x_train, data.y_train) if args.split == "train" else (data.x_test, data.y_test)
    features = int(torch.Size(model.x_shape).numel())
    if x.shape[1] != features:
        raise CommandError(
            f"{args.model} expects {features} features per example, {data.name} has {x.shape[1]}"
        )
    labels = y if _is_conditional(model) else None
    device = torch_device("--device", args.device)
    model.to(device)
    if device.type != "cpu":
        x, labels = x.to(device), None if labels is None else labels.to(device)
    metrics = evaluate_model(
        model, x, labels, num_particles=args.num_particles, progress=args.progress
    )
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        print(format_metrics(f"{type(model).__name__} on {data.name} ({args.split})", metrics))
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    """Decode ``-n`` draws from the prior of a saved model and save them as a PNG grid."""
    import torch

    from pvae import plot
    from pvae._seed import seeded

    model = _load_model(args.model)
    if args.label is not None and not _is_conditional(model):
        raise CommandError(
            f"--label does not apply to {args.model}: a {type(model).__name__} is not "
            "conditioned on a class (only a ConditionalVAE, --model cvae, is). Drop --label"
        )
    x_dim = int(torch.Size(model.x_shape).numel())
    with torch.no_grad(), seeded(args.seed):
        if _is_conditional(model):
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
    from pvae.app.demo import run_demo

    result = run_demo(
        args.out,
        epochs=args.epochs,
        seed=args.seed,
        smoke=args.smoke,
        progress=args.progress,
        device=args.device,
    )
    print(f"report: {result.report.resolve()}")
    print(f"open it with:  xdg-open {result.report}   (or any browser; it works offline)")
    return 0
