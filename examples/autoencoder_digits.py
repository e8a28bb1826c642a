r"""
Autoencoders on digits: the bottleneck, and why copying is not learning
=======================================================================

A deterministic autoencoder, :math:`\hat x = \mathrm{Dec}(\mathrm{Enc}(x))` with the
single-layer code :math:`h = \sigma(Wx + b)`, trained on scikit-learn's 8x8 digits to minimize
:math:`\lVert x - \hat x \rVert^2`. For several code sizes it reports the squared error on
test digits and on uniform-noise images, and how far reconstructions of noise land from the
nearest real digit: a narrow code projects anything onto digit-like images (it has learned the
data), a code as wide as the input drifts toward copying (it reconstructs noise too).

Writes ``ae_reconstructions.png`` (test digits and their reconstructions),
``ae_noise.png`` (noise and its reconstructions) and ``ae_samples.png`` (decoded random
codes, which an autoencoder cannot make meaningful) to ``--out``.
"""

import argparse
from pathlib import Path

import pyro
import torch

import pvae
from pvae import plot
from pvae.data import digits


def nearest_digit_distance(images: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean Euclidean distance from each image to its nearest image in ``reference``."""
    return float(torch.cdist(images.reshape(len(images), -1), reference).min(1).values.mean())


def main(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = digits()
    x_train, x_test = data.x_train, data.x_test
    if args.smoke:
        x_train = x_train[:500]
    noise = torch.rand(len(x_test), x_test.shape[1], generator=torch.Generator().manual_seed(1))
    print(f"mean-image baseline error: {((x_test - x_train.mean(0)) ** 2).sum(1).mean():.3f}")
    print(
        f"distance to nearest training digit: test digits "
        f"{nearest_digit_distance(x_test, x_train):.3f}, noise "
        f"{nearest_digit_distance(noise, x_train):.3f}"
    )
    print(f"{'code':>4}  {'test error':>10}  {'noise error':>11}  {'recon(noise) -> digit':>21}")
    models = {}
    for code_dim in args.code_dims:
        pyro.clear_param_store()
        ae = pvae.Autoencoder(x_dim=x_train.shape[1], code_dim=code_dim, hidden=(), seed=args.seed)
        pvae.fit(
            ae,
            x_train,
            epochs=args.epochs,
            batch_size=100,
            lr=args.lr,
            seed=args.seed,
            elbo="analytic",
        )
        with torch.no_grad():
            test_error = float(ae.reconstruction_error(x_test).mean())
            noise_error = float(ae.reconstruction_error(noise).mean())
        moved = nearest_digit_distance(ae.reconstruct(noise), x_train)
        print(f"{code_dim:>4}  {test_error:>10.3f}  {noise_error:>11.3f}  {moved:>21.3f}")
        models[code_dim] = ae

    ae = models[min(models, key=lambda c: abs(c - 8))]  # the code size closest to 8
    shape = data.image_shape
    plot.reconstructions(x_test, ae.reconstruct(x_test), shape).savefig(
        out / "ae_reconstructions.png", dpi=100
    )
    plot.reconstructions(
        noise, ae.reconstruct(noise), shape, title="Noise (top) and its reconstructions (bottom)"
    ).savefig(out / "ae_noise.png", dpi=100)
    pyro.set_rng_seed(args.seed)
    plot.samples(ae.sample(32), shape, title="Autoencoder: decoded random codes").savefig(
        out / "ae_samples.png", dpi=100
    )
    print(f"figures in {out} (code size {ae.code_dim})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--code-dims", default=[2, 8, 32, 64], type=int, nargs="+")
    parser.add_argument("--epochs", default=50, type=int)
    parser.add_argument("--lr", default=1e-2, type=float)
    parser.add_argument("--seed", default=0, type=int)
    parser.add_argument("--out", default="out", help="folder for figures")
    parser.add_argument("--smoke", action="store_true", help="tiny settings for CI")
    args = parser.parse_args()
    if args.smoke:
        args.code_dims, args.epochs = [2, 8], 3
    main(args)
