"""
Throughput of pvae.evaluate against a per-example loop
======================================================

Both compute the IWAE estimate of log p(x) with K particles for a digits VAE
(64-256-8, softplus) through Pyro traces; the loop handles one example at a time
(particles vectorised), ``evaluate`` vectorises over examples and particles in chunks
bounded by ``max_elements``. Prints examples per second, the speed-up, and both
estimates (they agree within Monte Carlo error). ``torch.set_num_threads(1)``;
times are CPU seconds of this process (``time.process_time``), robust on a shared
machine.

Run: ``.venv/bin/python benchmarks/bench_evaluate.py`` (``--smoke`` for a quick check).
"""

import argparse
import math
import os
import statistics
import sys
import time

import pyro
import pyro.poutine as poutine
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from pvae.data import digits  # noqa: E402
from pvae.evaluation import evaluate  # noqa: E402
from pvae.models import VAE  # noqa: E402
from pvae.training.loop import fit  # noqa: E402


def per_example_loop(vae, x, k):
    """log p(x_i) one example at a time: K particles in a plate, a Python loop over i."""
    out = []
    with torch.no_grad():
        for i in range(len(x)):
            xi = x[i : i + 1]
            with pyro.plate("particles", k, dim=-2):
                guide = poutine.trace(vae.guide).get_trace(xi)
                model = poutine.trace(poutine.replay(vae.model, trace=guide)).get_trace(xi)
            model.compute_log_prob()
            guide.compute_log_prob()
            log_w = model.nodes["x"]["log_prob"] + model.nodes["z"]["log_prob"]
            log_w = log_w - guide.nodes["z"]["log_prob"]
            out.append(torch.logsumexp(log_w.reshape(-1), 0) - math.log(k))
    return torch.stack(out).mean().item()


def main(args):
    torch.set_num_threads(1)
    pyro.enable_validation(False)
    d = digits()  # intensities in [0, 1]: the first 1,500 images train, the last 297 test
    x_train, x_test = d.x_train, d.x_test
    if args.smoke:
        args.k, args.repeats, x_test = [20], 1, x_test[:20]
    torch.manual_seed(0)
    vae = VAE(64, 8, hidden=(256,), activation="softplus", validate=False)
    fit(vae, x_train, epochs=2 if args.smoke else 20, elbo="analytic", seed=0)
    n = len(x_test)
    print(f"torch {torch.__version__}, pyro {pyro.__version__}, threads 1")
    print(f"digits VAE 64-256-8, {n} test examples, median of {args.repeats}")
    print(
        "| K | per-example loop CPU s | evaluate CPU s | examples/s (loop / evaluate) "
        "| speed-up | log p(x) (loop / evaluate) |"
    )
    print("|---|---|---|---|---|---|")
    for k in args.k:
        timings = {"loop": [], "evaluate": []}
        values = {}
        for _ in range(args.repeats):
            pyro.set_rng_seed(0)
            t0 = time.process_time()
            values["loop"] = per_example_loop(vae, x_test, k)
            timings["loop"].append(time.process_time() - t0)
            t0 = time.process_time()
            values["evaluate"] = evaluate(vae, x_test, num_particles=k, seed=0).log_evidence
            timings["evaluate"].append(time.process_time() - t0)
        loop, ev = (statistics.median(timings[m]) for m in ("loop", "evaluate"))
        print(
            f"| {k} | {loop:.3f} | {ev:.3f} | {n / loop:.0f} / {n / ev:.0f} | "
            f"{loop / ev:.1f}x | {values['loop']:.3f} / {values['evaluate']:.3f} |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--k", default=[10, 100, 1000], type=int, nargs="+")
    parser.add_argument("--repeats", default=3, type=int)
    parser.add_argument("--smoke", action="store_true")
    main(parser.parse_args())
