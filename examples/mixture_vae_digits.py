r"""
Clustering digits with a mixture VAE
====================================

A VAE whose prior is a mixture of ten learned Gaussians,
:math:`p(c)\,p(z \mid c)\,p(x \mid z)`, trained on scikit-learn's 8x8 digits without labels
(``pvae.fit(elbo="enum")``: the component :math:`c` is summed out exactly in the ELBO). Each
image's posterior over the components, :math:`p(c \mid x)` (``cluster``: Bayes' rule over the
ten components, :math:`z` by importance sampling), groups the digits; the example reports the
cluster purity against the true labels, and the discrete amortization gap
:math:`\mathrm{KL}(q(c \mid x) \,\|\, p(c \mid x))` before and after training, where
:math:`q(c \mid x) = \mathbb{E}_{q(z \mid x)} p(c \mid z)` is what the encoder implies. It
writes samples from each component to ``--out``.
"""

import argparse
from pathlib import Path

import pyro
import torch

import pvae
from pvae import plot
from pvae.data import digits


def purity(cluster: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    """Fraction of images whose cluster's most common label is their own."""
    hits = sum(
        int(torch.bincount(labels[cluster == c], minlength=10).max())
        for c in range(k)
        if bool((cluster == c).any())
    )
    return hits / len(labels)


def main(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = digits(binarize="static", seed=args.seed)
    x = data.x_train.reshape(-1, 64)
    x_test, y_test = data.x_test.reshape(-1, 64), data.y_test
    if args.smoke:
        x_test, y_test = x_test[:100], y_test[:100]

    pyro.clear_param_store()
    mix = pvae.MixtureVAE(
        64, args.components, z_dim=args.z_dim, hidden=args.hidden, seed=args.seed
    )
    before = pvae.discrete_amortization_gap(mix, x_test, num_particles=args.particles)
    result = pvae.fit(
        mix,
        x,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        elbo="enum",
        seed=args.seed,
    )
    print(
        f"epoch {result.history[-1]['epoch']}: train ELBO "
        f"{result.history[-1]['train_elbo']:.2f} nats per image"
    )
    after = pvae.discrete_amortization_gap(mix, x_test, num_particles=args.particles)
    print(
        f"discrete amortization gap KL(q(c|x) || p(c|x)): {before.kl:.4f} nats before "
        f"training, {after.kl:.4f} after"
    )

    cluster = mix.cluster(x_test, num_particles=args.particles, seed=args.seed).argmax(-1)
    print(
        f"cluster purity against the digit labels: {purity(cluster, y_test, args.components):.3f}"
        f" ({len(torch.unique(cluster))} components in use)"
    )

    with torch.no_grad():
        z = mix.components().sample((args.per_component,))  # [n, K, z_dim]
        samples = mix.decode(z.transpose(0, 1).reshape(-1, args.z_dim)).mean
    title = "Mixture VAE: one row per component"
    fig = plot.samples(samples.reshape(-1, 64), (8, 8), ncols=args.per_component, title=title)
    fig.savefig(out / "mixture_samples.png", dpi=100)
    print(f"samples, one row per component: {out / 'mixture_samples.png'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--components", default=10, type=int)
    parser.add_argument("--z-dim", default=8, type=int)
    parser.add_argument("--hidden", default=[64], type=int, nargs="*")
    parser.add_argument("--epochs", default=60, type=int)
    parser.add_argument("--batch-size", default=128, type=int)
    parser.add_argument("--lr", default=3e-3, type=float)
    parser.add_argument("--particles", default=100, type=int)
    parser.add_argument("--per-component", default=8, type=int)
    parser.add_argument("--seed", default=0, type=int)
    parser.add_argument("--out", default="out", help="folder for the figure")
    parser.add_argument("--smoke", action="store_true", help="tiny settings for CI")
    args = parser.parse_args()
    if args.smoke:
        args.epochs, args.particles, args.per_component = 2, 10, 2
    main(args)
