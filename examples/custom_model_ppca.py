r"""
Your own model: probabilistic PCA as a Pyro model/guide pair
============================================================

Any Pyro model/guide pair trains with :func:`pvae.fit` and is evaluated with
:func:`pvae.evaluation.evaluate`. This example defines probabilistic PCA (Tipping & Bishop,
1999) as a ``torch.nn.Module`` with ``model`` and ``guide`` methods,

.. math::

    z_n \sim \mathcal N(0, I_k), \qquad
    x_n \mid z_n \sim \mathcal N(W z_n + \mu,\, \sigma^2 I_d),

with an amortized linear encoder :math:`q(z_n \mid x_n) = \mathcal N(A x_n + b,
\mathrm{diag}(s)^2)`. Its log-likelihood is known in closed form,
:math:`x_n \sim \mathcal N(\mu, W W^\top + \sigma^2 I)`, and so is its maximum (from the
eigenvalues of the sample covariance), so every number pvae reports can be checked: the ELBO
stays below :math:`\log p(x)`, and the importance-weighted bound reaches it as the number of
particles grows.

Writes ``ppca_bounds.png`` (the bounds against the number of particles) to ``--out``.
"""

import argparse
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pyro  # noqa: E402
import pyro.distributions as dist  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.functional import softplus  # noqa: E402

import pvae  # noqa: E402


class PPCA(nn.Module):
    """Probabilistic PCA with an amortized linear Gaussian encoder."""

    def __init__(self, x_dim: int, z_dim: int) -> None:
        super().__init__()
        self.x_dim, self.z_dim = x_dim, z_dim
        self.W = nn.Parameter(0.1 * torch.randn(x_dim, z_dim))
        self.mu = nn.Parameter(torch.zeros(x_dim))
        self.raw_sigma = nn.Parameter(torch.tensor(0.5))  # sigma = softplus(raw_sigma)
        self.encoder = nn.Linear(x_dim, z_dim)
        self.raw_scale = nn.Parameter(torch.zeros(z_dim))

    @property
    def sigma(self) -> torch.Tensor:
        return softplus(self.raw_sigma)

    def model(self, x: torch.Tensor) -> None:
        pyro.module("ppca", self)
        with pyro.plate("data", x.shape[0]):
            z = pyro.sample("z", dist.Normal(x.new_zeros(self.z_dim), 1.0).to_event(1))
            pyro.sample("x", dist.Normal(z @ self.W.T + self.mu, self.sigma).to_event(1), obs=x)

    def guide(self, x: torch.Tensor) -> None:
        pyro.module("ppca", self)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(self.encoder(x), softplus(self.raw_scale)).to_event(1))

    @torch.no_grad()
    def log_evidence(self, x: torch.Tensor) -> float:
        """Exact mean log p(x) per example: x ~ N(mu, W W^T + sigma^2 I)."""
        cov = self.W @ self.W.T + self.sigma**2 * torch.eye(self.x_dim)
        return float(dist.MultivariateNormal(self.mu, cov).log_prob(x).mean())


def max_log_likelihood(x: torch.Tensor, z_dim: int) -> float:
    """Maximum over (W, mu, sigma) of the PPCA log-likelihood per example (Tipping & Bishop)."""
    d = x.shape[1]
    lam = torch.linalg.eigvalsh(torch.cov(x.T, correction=0)).flip(0)
    sigma2 = lam[z_dim:].mean()
    return float(
        -0.5
        * (d * math.log(2 * math.pi) + lam[:z_dim].log().sum() + (d - z_dim) * sigma2.log() + d)
    )


def main(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(args.seed)
    d, k = args.x_dim, args.z_dim
    W, mu = torch.randn(d, k, generator=g), torch.randn(d, generator=g)
    x = torch.randn(args.num_data, k, generator=g) @ W.T + mu
    x = x + args.noise * torch.randn(args.num_data, d, generator=g)

    pyro.clear_param_store()
    pyro.set_rng_seed(args.seed)
    ppca = PPCA(d, k)
    result = pvae.fit(ppca, x, epochs=args.epochs, batch_size=100, lr=args.lr, seed=args.seed)
    exact, best = ppca.log_evidence(x), max_log_likelihood(x, k)
    print(
        f"trained {len(result.history)} epochs; sigma = {float(ppca.sigma.detach()):.3f} "
        f"(data made with {args.noise})"
    )
    print(
        f"exact log p(x) of the trained model {exact:.4f}; maximum possible {best:.4f} "
        "nats per example"
    )

    rows = []
    for num_particles in args.particles:
        ev = pvae.evaluate(ppca, x, num_particles=num_particles, seed=args.seed)
        rows.append((num_particles, ev.elbo, ev.log_evidence))
        print(
            f"K = {num_particles:5d}: ELBO {ev.elbo:.4f}   L_K {ev.log_evidence:.4f}   "
            f"(exact - L_K = {exact - ev.log_evidence:.4f})"
        )

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ks = [r[0] for r in rows]
    ax.semilogx(ks, [r[2] for r in rows], "o-", label="importance-weighted bound $L_K$")
    ax.semilogx(ks, [r[1] for r in rows], "s--", label="ELBO")
    ax.axhline(exact, color="k", lw=1, label="exact log p(x) (closed form)")
    ax.set_xlabel("particles K")
    ax.set_ylabel("nats per example")
    ax.set_title("Probabilistic PCA: pvae's estimates against the closed form")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "ppca_bounds.png", dpi=100)
    plt.close(fig)
    print(f"figure: {out / 'ppca_bounds.png'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--x-dim", default=5, type=int)
    parser.add_argument("--z-dim", default=2, type=int)
    parser.add_argument("--num-data", default=1000, type=int)
    parser.add_argument("--noise", default=0.3, type=float)
    parser.add_argument("--epochs", default=200, type=int)
    parser.add_argument("--lr", default=0.02, type=float)
    parser.add_argument("--particles", default=[1, 10, 100, 1000, 5000], type=int, nargs="+")
    parser.add_argument("--seed", default=0, type=int)
    parser.add_argument("--out", default="out", help="folder for figures")
    parser.add_argument("--smoke", action="store_true", help="tiny settings for CI")
    args = parser.parse_args()
    if args.smoke:
        args.num_data, args.epochs, args.particles = 300, 5, [1, 10, 100]
    main(args)
