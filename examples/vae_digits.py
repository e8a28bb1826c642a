r"""
A variational autoencoder on digits
===================================

The VAE of Kingma & Welling (2014) on scikit-learn's 8x8 digits: a generative model
:math:`p(z)\,p(x \mid z)` with :math:`z \sim \mathcal N(0, I)` and a Bernoulli decoder, a
recognition model :math:`q(z \mid x)` (the encoder), trained together by maximizing the ELBO
with :func:`pvae.fit`. Pixels are binarized afresh in every batch ("dynamic"
binarization), which the Bernoulli likelihood needs.

Then it evaluates the test set (ELBO and the importance-weighted log-likelihood of Burda et
al. 2016, which tightens as the number of particles grows), saves the model to a safetensors
file, reloads it, and writes figures to ``--out``: training curves, reconstructions, samples
from the prior, the latent space coloured by digit, an interpolation and a latent traversal.
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
    data = digits(binarize="dynamic", seed=args.seed)
    x_train = data.train
    x_test, y_test = data.x_test, data.y_test
    if args.smoke:
        x_test, y_test = x_test[:100], y_test[:100]

    pyro.clear_param_store()
    vae = pvae.VAE(
        x_dim=data.x_dim,
        z_dim=args.z_dim,
        hidden=args.hidden,
        likelihood="bernoulli",
        seed=args.seed,
    )
    result = pvae.fit(
        vae,
        x_train,
        val_data=x_test,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
    )
    last = result.history[-1]
    print(
        f"epoch {last['epoch']}: train ELBO {last['train_elbo']:.2f}, "
        f"validation ELBO {last['val_elbo']:.2f} nats per image"
    )

    for k in args.particles:
        ev = pvae.evaluate(vae, x_test, num_particles=k, seed=args.seed)
        print(
            f"test, K = {k:5d}: ELBO {ev.elbo:.2f}, log p(x) >= {ev.log_evidence:.2f} "
            f"(± {ev.log_evidence_se:.2f})"
        )

    path = pvae.save(vae, out / "vae_digits.safetensors")
    twin = pvae.load(path)
    same = torch.equal(twin.reconstruct(x_test), vae.reconstruct(x_test))
    print(f"saved to {path}; reloaded model reconstructs identically: {same}")

    shape = data.image_shape
    figures = {
        "vae_training.png": plot.training_curves(result.history),
        "vae_reconstructions.png": plot.reconstructions(x_test, vae.reconstruct(x_test), shape),
        "vae_samples.png": plot.samples(vae.sample(64), shape),
        "vae_latent.png": plot.latent_scatter(vae.encode(x_test)[0].detach(), y_test),
        "vae_interpolation.png": plot.interpolation(
            vae.interpolate(x_test[0], x_test[1], steps=10), shape
        ),
        "vae_traversal.png": plot.traversal(
            torch.stack([vae.traverse(x_test[0], d, args.values) for d in range(args.z_dim)]),
            shape,
            args.values,
        ),
    }
    for name, fig in figures.items():
        fig.savefig(out / name, dpi=100)
    print(f"figures in {out}: {', '.join(figures)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--z-dim", default=2, type=int)
    parser.add_argument("--hidden", default=[256], type=int, nargs="*")
    parser.add_argument("--epochs", default=100, type=int)
    parser.add_argument("--batch-size", default=128, type=int)
    parser.add_argument("--lr", default=1e-3, type=float)
    parser.add_argument("--particles", default=[1, 100, 1000], type=int, nargs="+")
    parser.add_argument("--values", default=[-2.0, -1.0, 0.0, 1.0, 2.0], type=float, nargs="+")
    parser.add_argument("--seed", default=0, type=int)
    parser.add_argument("--out", default="out", help="folder for figures and the model")
    parser.add_argument("--smoke", action="store_true", help="tiny settings for CI")
    args = parser.parse_args()
    if args.smoke:
        args.epochs, args.hidden, args.particles = 2, [32], [1, 10]
    main(args)
