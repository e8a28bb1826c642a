"""
Data-parallel throughput: examples per second with 1 and 2 processes under torchrun
===================================================================================

Trains the digits VAE (64-256-8, softplus, continuous Bernoulli; the 1,500 training images
repeated ``--copies`` times, 8 by default, so that an epoch has enough steps) with
``Trace_ELBO`` under ``torchrun --standalone --nproc_per_node=N`` (gloo, one torch thread per
process) and reports training examples per second, the median over epochs after a warm-up
epoch, then the median over repeated launches. Contenders, all measured in this run:

- 1 process, batch B (the baseline; ``--batch-sizes``, default 128);
- 2 processes, batch B/2 each (global batch B: the same optimisation as the baseline);
- 2 processes, batch B each (global batch 2B: twice the examples per step).

The last column times :func:`pvae.training.distributed.average_gradients` alone (back-to-back calls
after training); the one before it is the share of training time spent inside it, which
includes waiting for the slower rank.

``--engine loop`` times a bare loop (loss_and_grads,
:func:`pvae.training.distributed.average_gradients`, Adam); ``--engine fit`` times
:func:`pvae.fit`, which shards and averages by itself.

    .venv/bin/python benchmarks/bench_distributed.py --engine fit     # about 90 s
    .venv/bin/python benchmarks/bench_distributed.py --batch-sizes 128 512 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def worker(args: argparse.Namespace) -> None:
    """One rank: train, time every epoch, rank 0 prints a RESULT line."""
    import pyro
    import torch

    from pvae.data import as_batches, digits
    from pvae.models.vae import VAE
    from pvae.training.distributed import average_gradients, init_distributed, shard_batches

    torch.set_num_threads(1)
    context = init_distributed(device="cpu")
    pyro.set_rng_seed(context.rank)
    x = digits().x_train.repeat(args.copies, 1)  # more steps per epoch, same examples
    vae = VAE(64, 8, hidden=(256,), likelihood="continuous_bernoulli", activation="softplus")
    vae.validate = False
    epochs = args.warmup + args.epochs
    comm: list[float] = []
    wall, cpu = time.perf_counter(), time.process_time()
    if args.engine == "fit":
        from pvae.training.loop import fit

        result = fit(vae, x, epochs=epochs, batch_size=args.batch_size, lr=1e-3, seed=0)
        seconds = [row["seconds"] for row in result.history]
    else:
        batches = shard_batches(as_batches(x, batch_size=args.batch_size, shuffle=True, seed=0))
        params = dict(vae.named_parameters())
        optimizer = torch.optim.Adam(params.values(), lr=1e-3)
        elbo = pyro.infer.Trace_ELBO()
        seconds = []
        for _ in range(epochs):
            start, in_comm = time.perf_counter(), 0.0
            for (xb,) in batches:
                elbo.loss_and_grads(vae.model, vae.guide, xb)
                t = time.perf_counter()
                average_gradients(params.items(), context)
                in_comm += time.perf_counter() - t
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            seconds.append(time.perf_counter() - start)
            comm.append(in_comm / seconds[-1])
    cpu_share = (time.process_time() - cpu) / (time.perf_counter() - wall)
    sync = []  # the all-reduce alone: back-to-back calls, no rank waiting on the other's compute
    named = list(dict(vae.named_parameters()).items())
    for _ in range(200 if context.is_distributed else 0):
        start = time.perf_counter()
        average_gradients(named, context)
        sync.append(time.perf_counter() - start)
    if context.is_main:
        timed = seconds[args.warmup :]
        result = {
            "world_size": context.world_size,
            "batch_size": args.batch_size,
            "examples_per_second": len(x) / statistics.median(timed),
            "comm_fraction": statistics.median(comm[args.warmup :]) if comm else None,
            "sync_ms": 1e3 * statistics.median(sync) if sync else None,
            "cpu_share": cpu_share,  # of one core, rank 0, whole training
        }
        print("RESULT " + json.dumps(result), flush=True)


def launch(args: argparse.Namespace, nproc: int, batch_size: int) -> dict:
    logs = Path(tempfile.mkdtemp(prefix="bench_distributed_"))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += [f"--nproc_per_node={nproc}", "--redirects=2", f"--log-dir={logs}"]
    command += [__file__, "--worker", "--engine", args.engine, "--batch-size", str(batch_size)]
    command += ["--epochs", str(args.epochs), "--warmup", str(args.warmup)]
    command += ["--copies", str(args.copies)]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        ranks = "".join(f"--- {p}\n{p.read_text()[-2000:]}" for p in logs.glob("**/stderr.log"))
        raise RuntimeError(f"torchrun failed:\n{done.stderr[-2000:]}\n{ranks}")
    shutil.rmtree(logs, ignore_errors=True)
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def main(args: argparse.Namespace) -> None:
    if args.worker:
        worker(args)
        return
    load = os.getloadavg()[0]
    # per batch size B: 1 x B (the baseline), 2 x B/2 (same global batch), 2 x B (same per rank)
    groups = [(b, [(1, b), (2, b // 2), (2, b)]) for b in args.batch_sizes]
    runs: dict[tuple[int, int], list[dict]] = {c: [] for _, configs in groups for c in configs}
    for _ in range(args.repeats):  # interleaved, so load changes hit every contender alike
        for config in runs:
            runs[config].append(launch(args, *config))
    print(f"engine={args.engine}  epochs={args.epochs} (+{args.warmup} warm-up)  ", end="")
    print(f"repeats={args.repeats}  copies={args.copies}  cores={os.cpu_count()}  ", end="")
    print("torch threads per process=1")
    print(f"load average before: {load:.1f}, after: {os.getloadavg()[0]:.1f}")
    print("| processes | batch per process | global batch | examples/s | vs 1 process "
          "| rank 0's CPU share | in average_gradients (incl. waiting) "
          "| all-reduce alone |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for _, configs in groups:
        base = statistics.median(r["examples_per_second"] for r in runs[configs[0]])
        for nproc, batch_size in configs:
            results = runs[nproc, batch_size]
            speed = statistics.median(r["examples_per_second"] for r in results)
            fractions = [r["comm_fraction"] for r in results if r["comm_fraction"] is not None]
            comm = f"{100 * statistics.median(fractions):.0f}%" if fractions else "n/a"
            syncs = [r["sync_ms"] for r in results if r["sync_ms"] is not None]
            sync = f"{statistics.median(syncs):.2f} ms" if syncs else "n/a"
            share = statistics.median(r["cpu_share"] for r in results)
            print(f"| {nproc} | {batch_size} | {nproc * batch_size} | {speed:,.0f} | "
                  f"{speed / base:.2f}x | {100 * share:.0f}% | {comm} | {sync} |")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--engine", choices=["loop", "fit"], default="loop")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128])
    parser.add_argument("--copies", type=int, default=8, help="repeat the 1,500 images")
    parser.add_argument("--batch-size", type=int, default=128, help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    main(parser.parse_args())
