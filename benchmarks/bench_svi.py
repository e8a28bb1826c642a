"""
Speed of pvae.fit against a hand-written PyTorch VAE loop and a bare Pyro SVI loop
==================================================================================

Same data (digits scaled to [0, 1], 1,500 training examples), architecture (64-256-8,
softplus, Bernoulli likelihood on intensities), initial weights and batch order for:

* ``hand``: a hand-written PyTorch loop (one reparameterised sample, analytic KL),
* ``pyro <elbo>``: a bare ``pyro.infer.SVI`` loop with ``pyro.optim.Adam`` (``pyro analytic``:
  with pvae's :class:`~pvae.training.elbos.AnalyticELBO` as its loss),
* ``step analytic``: a bare loop over pvae's step object :class:`~pvae.training.step.SVIStep`,
* ``fit <elbo>``: ``pvae.fit`` with each ``elbo=`` option.

Each contender trains for ``--epochs`` epochs, ``--repeats`` times in interleaved rounds;
the table shows the median CPU time, its ratio to the hand-written loop, and the test
log-likelihood (IWAE, K = 1000) of the last repeat. ``torch.set_num_threads(1)``;
times are CPU seconds of this process (``time.process_time``), robust on a shared
machine; Pyro validation is off for every contender. ``--mnist`` adds a 784-400-20,
batch-256 network on Fashion-MNIST (``/usr/share/datasets/fashion-mnist``, 10,000 train,
200 test, K = 100) or synthetic data of that shape.

Run: ``.venv/bin/python benchmarks/bench_svi.py`` (``--smoke`` for a quick check).
"""

import argparse
import copy
import os
import statistics
import sys
import time

import pyro
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from pvae.data import FASHION_MNIST_DIR, TensorBatches, digits, fashion_mnist  # noqa: E402
from pvae.evaluation import evaluate  # noqa: E402
from pvae.models import VAE  # noqa: E402
from pvae.training.elbos import AnalyticELBO  # noqa: E402
from pvae.training.loop import fit  # noqa: E402
from pvae.training.step import SVIStep  # noqa: E402

FASHION = FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz"


def hand_written(vae, x, epochs, batch_size, lr, seed):
    """The limit: plain PyTorch, no Pyro, one Adam over all parameters."""
    enc, dec = vae.encoder, vae.decoder
    opt = torch.optim.Adam(vae.parameters(), lr=lr)
    batches = TensorBatches([x], batch_size, shuffle=True, seed=seed)
    for _ in range(epochs):
        total = 0.0
        for (xb,) in batches:
            loc, scale = enc(xb)
            z = loc + scale * torch.randn_like(loc)
            logits = dec(z)
            rec = -F.binary_cross_entropy_with_logits(logits, xb, reduction="none").sum(-1)
            kl = 0.5 * (loc**2 + scale**2 - 1).sum(-1) - scale.log().sum(-1)
            loss = -(rec - kl).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
    return total


def bare_pyro(elbo_cls):
    def run(vae, x, epochs, batch_size, lr, seed):
        svi = pyro.infer.SVI(vae.model, vae.guide, pyro.optim.Adam({"lr": lr}), elbo_cls())
        batches = TensorBatches([x], batch_size, shuffle=True, seed=seed)
        for _ in range(epochs):
            total = 0.0
            for (xb,) in batches:
                total += svi.step(xb)
        return total

    return run


def bare_step(vae, x, epochs, batch_size, lr, seed):
    """pvae's step object alone: checked updates, no history, no checkpoints."""
    step = SVIStep(vae, elbo="analytic", lr=lr)
    batches = TensorBatches([x], batch_size, shuffle=True, seed=seed)
    for _ in range(epochs):
        total = 0.0
        for (xb,) in batches:
            total += step.update(xb)
    return total


def with_fit(elbo):
    def run(vae, x, epochs, batch_size, lr, seed):
        return fit(vae, x, epochs=epochs, batch_size=batch_size, lr=lr, elbo=elbo, seed=seed)

    return run


CONTENDERS = {
    "hand": hand_written,
    "pyro trace": bare_pyro(pyro.infer.Trace_ELBO),
    "pyro meanfield": bare_pyro(pyro.infer.TraceMeanField_ELBO),
    "pyro jit": bare_pyro(lambda: pyro.infer.JitTrace_ELBO(ignore_jit_warnings=True)),
    "pyro analytic": bare_pyro(AnalyticELBO),
    "step analytic": bare_step,
    "fit trace (default)": with_fit("trace"),
    "fit meanfield": with_fit("meanfield"),
    "fit jit": with_fit("jit"),
    "fit analytic": with_fit("analytic"),
}


def bench(name, x_train, x_test, x_dim, hidden, z_dim, args, contenders):
    torch.manual_seed(0)
    template = VAE(x_dim, z_dim, hidden=hidden, activation="softplus", validate=False)
    times = {c: [] for c in contenders}
    models = {}
    for c in contenders:  # warm-up: imports, JIT compilation caches, allocator
        pyro.clear_param_store()
        contenders[c](
            copy.deepcopy(template), x_train[: args.batch_size * 2], 1, args.batch_size, args.lr, 0
        )
    for _ in range(args.repeats):
        for c in contenders:
            pyro.clear_param_store()
            vae = copy.deepcopy(template)  # same initial weights (deepcopy: new Pyro name)
            pyro.set_rng_seed(1)
            t0 = time.process_time()
            contenders[c](vae, x_train, args.epochs, args.batch_size, args.lr, 0)
            times[c].append(time.process_time() - t0)
            models[c] = vae
    steps = args.epochs * -(-len(x_train) // args.batch_size)
    hand = statistics.median(times["hand"])
    print(
        f"\n{name}: {len(x_train)} train, {len(x_test)} test, batch {args.batch_size}, "
        f"{args.epochs} epochs ({steps} steps), median of {args.repeats}"
    )
    print(f"| contender | median CPU s | ms/step | x hand | test log p(x) (K={args.k}) |")
    print("|---|---|---|---|---|")
    for c in contenders:
        med = statistics.median(times[c])
        pyro.clear_param_store()
        ll = evaluate(models[c], x_test, num_particles=args.k, seed=0).log_evidence
        print(f"| {c} | {med:.3f} | {1000 * med / steps:.2f} | {med / hand:.2f} | {ll:.2f} |")
    if "pyro trace" in times:
        ratio = statistics.median(times["fit trace (default)"]) / statistics.median(
            times["pyro trace"]
        )
        print(f"fit default / bare Pyro Trace_ELBO loop: {ratio:.3f}")


def main(args):
    torch.set_num_threads(1)
    pyro.enable_validation(False)
    d = digits()  # intensities in [0, 1]: the first 1,500 images train, the last 297 test
    x_train, x_test = d.x_train, d.x_test
    if args.smoke:
        args.epochs, args.repeats, args.k = 1, 1, 10
        x_train = x_train[:256]
    print(f"torch {torch.__version__}, pyro {pyro.__version__}, threads 1")
    bench("digits 64-256-8", x_train, x_test, 64, (256,), 8, args, CONTENDERS)
    if args.mnist:
        n, n_test = (2048, 50) if args.smoke else (args.mnist_n, args.mnist_test)
        if os.path.exists(FASHION):
            data, source = fashion_mnist().x_train[: n + n_test], "Fashion-MNIST"
        else:
            data, source = torch.rand(n + n_test, 784), "synthetic uniform"
        mnist_args = copy.copy(args)
        mnist_args.batch_size, mnist_args.epochs = 256, args.mnist_epochs
        mnist_args.k = 10 if args.smoke else args.mnist_k
        if args.smoke:
            mnist_args.epochs = 1
        keep = ["hand", "pyro trace", "fit trace (default)", "fit jit", "fit analytic"]
        bench(
            f"{source} 784-400-20",
            data[:n],
            data[n:],
            784,
            (400,),
            20,
            mnist_args,
            {c: CONTENDERS[c] for c in keep},
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", default=20, type=int)
    parser.add_argument("--repeats", default=5, type=int)
    parser.add_argument("--batch-size", default=128, type=int)
    parser.add_argument("--lr", default=1e-3, type=float)
    parser.add_argument("--k", default=1000, type=int, help="particles for test log p(x)")
    parser.add_argument("--mnist", action="store_true", help="also the 784-400-20 network")
    parser.add_argument("--mnist-n", default=10_000, type=int)
    parser.add_argument("--mnist-epochs", default=5, type=int)
    parser.add_argument("--mnist-test", default=200, type=int)
    parser.add_argument("--mnist-k", default=100, type=int)
    parser.add_argument("--smoke", action="store_true")
    main(parser.parse_args())
