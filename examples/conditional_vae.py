r"""
A conditional VAE: generating the digit you ask for
===================================================

A conditional VAE (Sohn et al., 2015) conditions both networks on a label :math:`y`: the
generative model is :math:`p(z)\,p(x \mid z, y)` and the recognition model
:math:`q(z \mid x, y)`. Trained on scikit-learn's 8x8 digits with their labels, the decoder
learns to draw the class it is given, and :math:`z` is left to carry the style (slant,
thickness). The example reports the test ELBO and importance-weighted log-likelihood, the
log-likelihood of test digits under the *wrong* label (lower: the label matters), and writes a
grid of samples, one row per class, to ``--out``.
"""

import argparse
from pathlib import Path

import pyro
import torch

import pvae
from pvae import plot
from pvae.data import digits


def main(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = digits(binarize="static", seed=args.seed)
    x_train, y_train, x_test, y_test = data.x_train, data.y_train, data.x_test, data.y_test
    if args.smoke:
        x_test, y_test = x_test[:100], y_test[:100]

    pyro.clear_param_store()
    cvae = pvae.ConditionalVAE(
        x_dim=data.x_dim, z_dim=args.z_dim, num_classes=10, hidden=args.hidden, seed=args.seed
    )
    result = pvae.fit(
        cvae,
        (x_train, y_train),
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
    )
    print(
        f"train ELBO after {len(result.history)} epochs: "
        f"{result.history[-1]['train_elbo']:.2f} nats per image"
    )

    right = pvae.evaluate(cvae, (x_test, y_test), num_particles=args.particles, seed=args.seed)
    wrong = pvae.evaluate(
        cvae, (x_test, (y_test + 1) % 10), num_particles=args.particles, seed=args.seed
    )
    print(f"test, true labels:  ELBO {right.elbo:.2f}, log p(x | y) >= {right.log_evidence:.2f}")
    print(f"test, wrong labels: ELBO {wrong.elbo:.2f}, log p(x | y) >= {wrong.log_evidence:.2f}")

    per_class = args.per_class
    labels = torch.arange(10).repeat_interleave(per_class)
    samples = cvae.sample(len(labels), y=labels)
    fig = plot.samples(
        samples,
        data.image_shape,
        ncols=per_class,
        title="Conditional VAE: one row per requested digit",
    )
    fig.savefig(out / "cvae_samples.png", dpi=100)
    print(f"figure: {out / 'cvae_samples.png'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--z-dim", default=4, type=int)
    parser.add_argument("--hidden", default=[256], type=int, nargs="*")
    parser.add_argument("--epochs", default=100, type=int)
    parser.add_argument("--batch-size", default=128, type=int)
    parser.add_argument("--lr", default=1e-3, type=float)
    parser.add_argument("--particles", default=500, type=int)
    parser.add_argument("--per-class", default=8, type=int)
    parser.add_argument("--seed", default=0, type=int)
    parser.add_argument("--out", default="out", help="folder for figures")
    parser.add_argument("--smoke", action="store_true", help="tiny settings for CI")
    args = parser.parse_args()
    if args.smoke:
        args.epochs, args.hidden, args.particles, args.per_class = 2, [32], 10, 4
    main(args)
