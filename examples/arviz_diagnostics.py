r"""
Looking at variational answers with ArviZ, and knowing when to distrust them
============================================================================

ArviZ's ``from_pyro`` accepts only MCMC runs;
:func:`pvae.evaluation.inference_data.to_inference_data` exports draws from any Pyro guide
(or from an exact posterior) as an ``arviz.InferenceData`` with ``posterior``,
``posterior_predictive``, pointwise ``log_likelihood`` and ``observed_data``, so the usual
ArviZ summaries and plots work.

The model is conjugate, :math:`\mu \sim \mathcal N(0, 1)`,
:math:`x_n \mid \mu \sim \mathcal N(\mu, 1)`, so the exact posterior is known. Pyro's
``AutoNormal`` guide is fitted with :func:`pvae.fit`, exported, summarized with
``az.summary(kind="stats")`` (guide draws are independent, so R-hat and ESS mean nothing),
and checked with the Pareto :math:`\hat k` of Yao et al. (2018): the fitted guide passes, a
guide three times too narrow fails. Writes ``arviz_posterior.png`` to ``--out``.
"""

import argparse
import math
from pathlib import Path

import arviz as az
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pyro  # noqa: E402
import pyro.distributions as dist  # noqa: E402
import torch  # noqa: E402
from pyro.infer.autoguide import AutoNormal  # noqa: E402

import pvae  # noqa: E402


def model(x: torch.Tensor) -> None:
    mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
    with pyro.plate("data", len(x)):
        pyro.sample("x", dist.Normal(mu, 1.0), obs=x)


def main(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(args.seed)
    x = 1.5 + torch.randn(args.num_data, generator=g)
    n = len(x)
    post_mean, post_sd = float(x.sum() / (n + 1)), 1 / math.sqrt(n + 1)  # conjugate answer

    pyro.clear_param_store()
    guide = AutoNormal(model)
    pvae.fit(model, x, guide=guide, epochs=args.epochs, batch_size=n, lr=0.05, seed=args.seed)
    idata = pvae.to_inference_data(model, guide, x, num_samples=args.num_samples)
    print(idata)
    summary = az.summary(idata, kind="stats", var_names=["mu"])
    print(summary)
    print(f"exact posterior: mean {post_mean:.3f}, sd {post_sd:.3f}")

    def narrow(x: torch.Tensor) -> None:
        pyro.sample("mu", dist.Normal(post_mean, post_sd / 3))

    for name, q in (("fitted AutoNormal", guide), ("3x too narrow", narrow)):
        k = pvae.psis_khat(model, q, x, num_particles=args.num_particles)
        print(f"k-hat of the {name} guide: {k.khat:.2f} ({k.diagnosis})")

    az.plot_posterior(idata, var_names=["mu"], ref_val=post_mean)
    fig = plt.gcf()
    fig.suptitle("AutoNormal draws of mu; reference line: exact posterior mean", fontsize=9)
    fig.savefig(out / "arviz_posterior.png", dpi=100)
    plt.close(fig)
    print(f"figure: {out / 'arviz_posterior.png'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--num-data", default=20, type=int)
    parser.add_argument("--epochs", default=1000, type=int, help="steps (one batch per epoch)")
    parser.add_argument("--num-samples", default=2000, type=int)
    parser.add_argument("--num-particles", default=10_000, type=int)
    parser.add_argument("--seed", default=0, type=int)
    parser.add_argument("--out", default="out", help="folder for figures")
    parser.add_argument("--smoke", action="store_true", help="tiny settings for CI")
    args = parser.parse_args()
    if args.smoke:
        args.epochs, args.num_samples, args.num_particles = 300, 500, 2000
    main(args)
