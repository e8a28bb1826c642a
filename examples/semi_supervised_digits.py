r"""
Semi-supervised digits: M2 with 10 labels per class
===================================================

Kingma et al.'s M2 (2014) models a label :math:`y` beside the style code :math:`z`:
:math:`p(y)\,p(z)\,p(x \mid y, z)`. Trained on scikit-learn's 8x8 digits with only 10 labels
per class -- every other label set to -1 (unlabelled) -- in one ``pvae.fit(elbo="enum")``, the
label is summed out exactly under the classifier :math:`q(y \mid x)` where it is unobserved,
and the labelled examples add the classification term :math:`\alpha \log q(y \mid x)`.

The example reports the test accuracy of ``predict`` beside the same classifier network
trained on the 100 labelled examples alone, and the discrete amortization gap
:math:`\mathrm{KL}(q(y \mid x) \,\|\, p(y \mid x))` on the test set, where
:math:`p(y \mid x)` is the model's own Bayes' rule over the ten labels (each
:math:`p(x \mid y)` by importance sampling over :math:`z`). It writes a grid of samples, one
row per class, to ``--out``.
"""

import argparse
from pathlib import Path

import pyro
import torch
import torch.nn.functional as F

import pvae
from pvae import plot
from pvae.data import digits
from pvae.models.networks import MLP


def main(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = digits(binarize="static", seed=args.seed)
    x, y = data.x_train.reshape(-1, 64), data.y_train
    x_test, y_test = data.x_test.reshape(-1, 64), data.y_test
    if args.smoke:
        x_test, y_test = x_test[:100], y_test[:100]

    g = torch.Generator().manual_seed(args.seed)  # 10 labelled examples of every class
    keep = torch.cat(
        [
            (y == c).nonzero().flatten()[torch.randperm(int((y == c).sum()), generator=g)[:10]]
            for c in range(10)
        ]
    )
    y_obs = torch.full_like(y, -1)
    y_obs[keep] = y[keep]
    print(f"{len(keep)} labelled and {int((y_obs < 0).sum())} unlabelled training images")

    pyro.clear_param_store()
    m2 = pvae.SemiSupervisedVAE(
        x_dim=64,
        num_classes=10,
        z_dim=args.z_dim,
        hidden=args.hidden,
        alpha=args.alpha * len(x) / len(keep),
        seed=args.seed,
    )
    result = pvae.fit(
        m2,
        (x, y_obs),
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        elbo="enum",
        seed=args.seed,
    )
    last = result.history[-1]
    print(
        f"epoch {last['epoch']}: train ELBO {last['train_elbo']:.2f} nats per image "
        f"(objective with the classification term {last['train_objective']:.2f})"
    )

    torch.manual_seed(args.seed)  # the same classifier network on the 100 labels alone
    alone = MLP(64, 10, args.hidden)
    opt = torch.optim.Adam(alone.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(args.classifier_steps):
        opt.zero_grad()
        F.cross_entropy(alone(x[keep]), y[keep]).backward()
        opt.step()
    with torch.no_grad():
        base = float((alone(x_test).argmax(-1) == y_test).double().mean())
    acc = float((m2.predict(x_test) == y_test).double().mean())
    print(f"test accuracy: M2 {acc:.3f}, the classifier on the labelled examples alone {base:.3f}")

    gap = pvae.discrete_amortization_gap(m2, x_test, num_particles=args.particles)
    print(
        f"discrete amortization gap KL(q(y|x) || p(y|x)): {gap.kl:.4f} nats per image; "
        f"q and p agree on the most probable label for {gap.agreement:.1%} of test images"
    )

    labels = torch.arange(10).repeat_interleave(args.per_class)
    with torch.no_grad():
        z = torch.randn(len(labels), args.z_dim)
        samples = m2.decode(labels, z).mean
    fig = plot.samples(samples, (8, 8), ncols=args.per_class, title="M2: one row per class")
    fig.savefig(out / "m2_samples.png", dpi=100)
    print(f"samples, one row per class: {out / 'm2_samples.png'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--z-dim", default=8, type=int)
    parser.add_argument("--hidden", default=[64], type=int, nargs="*")
    parser.add_argument("--alpha", default=0.1, type=float, help="the paper's alpha / N")
    parser.add_argument("--epochs", default=60, type=int)
    parser.add_argument("--batch-size", default=128, type=int)
    parser.add_argument("--lr", default=3e-3, type=float)
    parser.add_argument("--classifier-steps", default=500, type=int)
    parser.add_argument("--particles", default=100, type=int)
    parser.add_argument("--per-class", default=8, type=int)
    parser.add_argument("--seed", default=0, type=int)
    parser.add_argument("--out", default="out", help="folder for the figure")
    parser.add_argument("--smoke", action="store_true", help="tiny settings for CI")
    args = parser.parse_args()
    if args.smoke:
        args.epochs, args.classifier_steps, args.particles, args.per_class = 2, 20, 10, 2
    main(args)
