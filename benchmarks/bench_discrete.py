"""
Discrete latents inside amortized models: M2, IWAE, the mixture VAE, enumeration's cost
======================================================================================

Four measurements on scikit-learn's 8x8 digits (statically binarized; 1,500 train, 297 test),
each over ``--seeds`` (default 0-4), reported as medians with the spread over seeds:

* ``m2``: :class:`pvae.SemiSupervisedVAE` with 10 labels per class (100 labelled, 1,400
  unlabelled, one ``fit(elbo="enum")``): test accuracy of ``predict`` against the *same*
  classifier network trained by cross-entropy on the 100 labelled examples alone, and on all
  1,500 labels.
* ``iwae``: a :class:`pvae.VAE` trained with ``elbo="trace"`` (K = 1) and ``elbo="iwae"``
  (K = 10, 50); test log p(x) by ``pvae.evaluate`` (IWAE, K = 1000); the per-seed difference
  and its standard error over seeds.
* ``mixture``: :class:`pvae.MixtureVAE` with 10 components, ``fit(elbo="enum")``: cluster
  purity of ``cluster(x).argmax`` against the digit labels (test set), and the discrete
  amortization gap KL(q(c|x) || p(c|x)) (``pvae.discrete_amortization_gap``, test set) before
  and after training.
* ``time``: seconds per step of ``fit(elbo="enum")`` over ``fit(elbo="trace")`` on the same
  model where both apply (a VAE, which has nothing to enumerate; M2, whose label ``"trace"``
  samples with a score-function gradient), median of ``--repeats`` interleaved runs. (The
  mixture VAE's component is left to the model: ``Trace_ELBO`` would draw it from the prior,
  another, looser bound, so it is not compared.)

``torch.set_num_threads(1)``; times are CPU seconds of this process (``time.process_time``).

Run: ``.venv/bin/python benchmarks/bench_discrete.py`` (``--smoke`` for a quick check,
``--only m2`` for one part).
"""

import argparse
import os
import statistics
import sys
import time

import pyro
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import pvae  # noqa: E402
from pvae.data import digits  # noqa: E402
from pvae.models.networks import MLP  # noqa: E402
from pvae.training.elbos import EnumELBO  # noqa: E402


def spread(values):
    """median [min, max] of a list."""
    return f"{statistics.median(values):.4g} [{min(values):.4g}, {max(values):.4g}]"


def mean_se(values):
    m = statistics.fmean(values)
    se = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else float("nan")
    return m, se


def labelled_subset(y, per_class, seed):
    g = torch.Generator().manual_seed(seed)
    keep = []
    for c in range(10):
        idx = (y == c).nonzero().flatten()
        keep.append(idx[torch.randperm(len(idx), generator=g)[:per_class]])
    return torch.cat(keep)


def train_classifier(x, y, hidden, seed, steps, lr=1e-2, weight_decay=1e-4):
    torch.manual_seed(seed)
    net = MLP(x.shape[1], 10, hidden)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    return net


def accuracy(predicted, y):
    return float((predicted == y).double().mean())


def bench_m2(data, args):
    x, y, xt, yt = data
    rows = {"m2": [], "labelled only": [], "all labels": []}
    for seed in args.seeds:
        keep = labelled_subset(y, 10, seed)
        y_obs = torch.full_like(y, -1)
        y_obs[keep] = y[keep]
        pyro.clear_param_store()
        alpha = args.alpha * len(x) / len(keep)  # the paper's alpha = 0.1 N, per labelled example
        m2 = pvae.SemiSupervisedVAE(
            64, 10, z_dim=args.z_dim, hidden=args.hidden, alpha=alpha, seed=seed
        )
        pvae.fit(
            m2,
            (x, y_obs),
            epochs=args.m2_epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            elbo="enum",
            seed=seed,
            progress=False,
        )
        rows["m2"].append(accuracy(m2.predict(xt), yt))
        alone = train_classifier(x[keep], y[keep], args.hidden, seed, args.classifier_steps)
        rows["labelled only"].append(accuracy(alone(xt).argmax(-1), yt))
        full = train_classifier(x, y, args.hidden, seed, args.classifier_steps)
        rows["all labels"].append(accuracy(full(xt).argmax(-1), yt))
        print(
            f"  seed {seed}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in rows.items()), flush=True
        )
    margin = [a - b for a, b in zip(rows["m2"], rows["labelled only"], strict=True)]
    print("M2, 10 labels per class: test accuracy, median [min, max] over seeds")
    for name, values in rows.items():
        print(f"  | {name:<14} | {spread(values)} |")
    m, se = mean_se(margin)
    print(f"  margin m2 - labelled only: {spread(margin)}; mean {m:.4f} +- {se:.4f} (s.e.)")


def bench_iwae(data, args):
    x, _, xt, _ = data
    results = {}
    for k in (1, *args.iwae_k):
        results[k] = []
        for seed in args.seeds:
            pyro.clear_param_store()
            vae = pvae.VAE(64, args.z_dim, hidden=args.hidden, seed=seed)
            elbo = "trace" if k == 1 else "iwae"
            pvae.fit(
                vae,
                x,
                epochs=args.epochs,
                batch_size=args.batch_size,
                lr=args.lr,
                elbo=elbo,
                num_particles=k,
                seed=seed,
                progress=False,
            )
            ev = pvae.evaluate(
                vae, xt, num_particles=args.eval_particles, seed=seed, progress=False
            )
            results[k].append(ev.log_evidence)
            print(
                f"  K={k} seed {seed}: test log p(x) {ev.log_evidence:.3f} "
                f"(+- {ev.log_evidence_se:.3f})",
                flush=True,
            )
    print(f"IWAE training: test log p(x) (IWAE, K={args.eval_particles}), nats per image")
    for k, values in results.items():
        print(f"  | K={k:<3} | {spread(values)} |")
    for k in args.iwae_k:
        diff = [a - b for a, b in zip(results[k], results[1], strict=True)]
        m, se = mean_se(diff)
        print(f"  K={k} - K=1: {spread(diff)}; mean {m:.4f} +- {se:.4f} (s.e. over seeds)")


def purity(cluster, labels, k):
    total = 0
    for c in range(k):
        members = labels[cluster == c]
        if len(members):
            total += int(torch.bincount(members, minlength=10).max())
    return total / len(labels)


def bench_mixture(data, args):
    x, _, xt, yt = data
    rows = {"purity": [], "gap before": [], "gap after": [], "agreement after": []}
    for seed in args.seeds:
        pyro.clear_param_store()
        mix = pvae.MixtureVAE(64, 10, z_dim=args.z_dim, hidden=args.hidden, seed=seed)
        gap0 = pvae.discrete_amortization_gap(mix, xt, num_particles=args.gap_particles)
        pvae.fit(
            mix,
            x,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            elbo="enum",
            seed=seed,
            progress=False,
        )
        gap1 = pvae.discrete_amortization_gap(mix, xt, num_particles=args.gap_particles)
        c = mix.cluster(xt, num_particles=args.gap_particles, seed=seed).argmax(-1)
        rows["purity"].append(purity(c, yt, 10))
        rows["gap before"].append(gap0.kl)
        rows["gap after"].append(gap1.kl)
        rows["agreement after"].append(gap1.agreement)
        print(
            f"  seed {seed}: " + ", ".join(f"{k} {v[-1]:.4f}" for k, v in rows.items()), flush=True
        )
    print("MixtureVAE, 10 components (test set): median [min, max] over seeds")
    for name, values in rows.items():
        print(f"  | {name:<16} | {spread(values)} |")


def per_step(model, data, elbo, args, seed):
    pyro.clear_param_store()
    n = len(data[0]) if isinstance(data, tuple) else len(data)
    steps = args.time_epochs * -(-n // args.batch_size)
    t0 = time.process_time()
    pvae.fit(
        model,
        data,
        epochs=args.time_epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        elbo=elbo,
        seed=seed,
        progress=False,
    )
    return (time.process_time() - t0) / steps


def bench_time(data, args):
    x, y, _, _ = data
    y_obs = torch.full_like(y, -1)
    keep = labelled_subset(y, 10, 0)
    y_obs[keep] = y[keep]
    cases = {
        "VAE": (lambda: pvae.VAE(64, args.z_dim, hidden=args.hidden, seed=0), x),
        "SemiSupervisedVAE": (
            lambda: pvae.SemiSupervisedVAE(64, 10, z_dim=args.z_dim, hidden=args.hidden, seed=0),
            (x, y_obs),
        ),
    }
    print(
        "fit(elbo='enum') vs fit(elbo='trace'): CPU ms per step, median of "
        f"{args.repeats} interleaved runs"
    )
    import warnings

    for name, (make, data_) in cases.items():
        times = {"trace": [], "enum": []}
        for r in range(args.repeats):
            for elbo in ("trace", "enum"):
                est = elbo
                if elbo == "enum" and name == "VAE":  # nothing to enumerate: Pyro would warn
                    est = EnumELBO(strict_enumeration_warning=False)
                with warnings.catch_warnings():  # Trace_ELBO warns on sites marked to enumerate
                    warnings.filterwarnings("ignore", "(?s).*TraceEnum_ELBO instead")
                    times[elbo].append(per_step(make(), data_, est, args, r))
        t, e = statistics.median(times["trace"]), statistics.median(times["enum"])
        print(
            f"  | {name:<18} | trace {1e3 * t:7.2f} | enum {1e3 * e:7.2f} | ratio {e / t:5.2f} |"
        )


def main(args):
    torch.set_num_threads(1)
    data = digits(binarize="static", seed=0)
    x = data.x_train.reshape(len(data.x_train), -1)
    xt = data.x_test.reshape(len(data.x_test), -1)
    parts = (data_ := (x, data.y_train, xt, data.y_test))
    del parts
    for name, fn in (
        ("m2", bench_m2),
        ("iwae", bench_iwae),
        ("mixture", bench_mixture),
        ("time", bench_time),
    ):
        if args.only in (None, name):
            t0 = time.perf_counter()
            fn(data_, args)
            print(f"  [{name}: {time.perf_counter() - t0:.0f} s]\n", flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--epochs", type=int, default=60, help="IWAE and mixture training")
    p.add_argument("--m2-epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--z-dim", type=int, default=8)
    p.add_argument("--hidden", type=int, nargs="*", default=[64])
    p.add_argument("--alpha", type=float, default=2.0, help="the paper's alpha / N")
    p.add_argument("--classifier-steps", type=int, default=1000)
    p.add_argument("--iwae-k", type=int, nargs="+", default=[10, 50])
    p.add_argument("--eval-particles", type=int, default=1000)
    p.add_argument("--gap-particles", type=int, default=100)
    p.add_argument("--time-epochs", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--only", choices=["m2", "iwae", "mixture", "time"])
    p.add_argument("--smoke", action="store_true", help="tiny settings, for the test suite")
    a = p.parse_args()
    if a.smoke:
        a.seeds, a.epochs, a.m2_epochs, a.classifier_steps, a.iwae_k = [0], 1, 1, 5, [2]
        a.eval_particles, a.gap_particles, a.time_epochs, a.repeats = 10, 5, 1, 1
    main(a)
