"""
Checkpoint files under damage and crafting, and the cost of the checks (issue 15)
=================================================================================

Three measurements:

* ``flips``: every single-bit flip of a small VAE model file and of a fit checkpoint
  (written by ``fit(checkpoint_dir=...)``); each damaged file goes through ``pvae.load``
  (and, for the fit file, ``resume``). Outcomes by kind: refused with ``ValueError``,
  loaded (anything loaded is compared with the original weights: a silent change is the
  failure this measures), or any other exception (also a failure).
* ``special``: a symlink to ``/dev/zero``, a FIFO, a directory: outcome and seconds.
* ``time``: median seconds of ``save`` and ``load`` of a VAE(784, 8, hidden=(256,))
  with the content hash and the schema checks, and of safetensors' own save/load of the
  same tensors, over ``--repeats`` interleaved runs; ratios within the same run.

``torch.set_num_threads(1)``.

Run: ``.venv/bin/python benchmarks/bench_checkpoint_faults.py`` (``--smoke``: one bit in
eight, 3 repeats).
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import pyro
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from pvae.models import VAE
from pvae.training.checkpoint import load, save
from pvae.training.loop import fit
from pvae.training.resume import resume


def _vae(hidden=(4,), x_dim=6):
    torch.manual_seed(0)
    return VAE(x_dim, 2, hidden=hidden)


def _same(a: dict, b: dict) -> bool:
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def flips(folder: Path, stride: int) -> None:
    model_file = save(_vae(), folder / "model.safetensors")
    x = (torch.rand(16, 6, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    fit(_vae(), x, epochs=2, batch_size=8, seed=0, checkpoint_dir=folder / "ck", progress=False)
    fit_file = folder / "ck" / "last.safetensors"
    reference = _vae().state_dict()
    for name, path, calls in [
        ("model file", model_file, {"load": lambda p: load(p).state_dict()}),
        (
            "fit file",
            fit_file,
            {"load": lambda p: load(p).state_dict(), "resume": lambda p: _resumed(p)},
        ),
    ]:
        good = path.read_bytes()
        n = int.from_bytes(good[:8], "little")
        originals = {call: fn(path) for call, fn in calls.items()}
        bad = folder / "bad.safetensors"
        for call, fn in calls.items():
            outcomes: collections.Counter = collections.Counter()
            for bit in range(0, 8 * len(good), stride):
                data = bytearray(good)
                data[bit // 8] ^= 1 << (bit % 8)
                bad.write_bytes(bytes(data))
                part = "header" if bit < 8 * (8 + n) else "tensor data"
                pyro.clear_param_store()
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("error")
                        got = fn(bad)
                except ValueError:
                    outcomes[part, "ValueError"] += 1
                except Exception as err:  # the failure this counts
                    outcomes[part, type(err).__name__] += 1
                else:
                    same = _same(got, originals[call])
                    outcomes[part, "loaded, same" if same else "LOADED, DIFFERENT"] += 1
            total = sum(outcomes.values())
            print(f"{name} ({len(good)} bytes, header {8 + n}), {call}: {total} flips")
            for (part, kind), count in sorted(outcomes.items()):
                print(f"    {part:12s} {kind:20s} {count}")
    del reference


def _resumed(path):
    back = resume(path, _vae())
    return {"epoch": torch.tensor(back.start), **pyro.get_param_store().get_state()["params"]}


def special(folder: Path) -> None:
    zero = folder / "zero.safetensors"
    zero.symlink_to("/dev/zero")
    fifo = folder / "fifo.safetensors"
    os.mkfifo(fifo)
    for path in (zero, fifo, folder):
        t0 = time.perf_counter()
        try:
            load(path)
            outcome = "LOADED"
        except ValueError as err:
            outcome = f"ValueError: {str(err)[len(str(path)) + 9 :][:50]}..."
        except Exception as err:
            outcome = type(err).__name__
        print(f"    {path.name:18s} {outcome}  ({time.perf_counter() - t0:.4f} s)")


def timing(folder: Path, repeats: int) -> None:
    net = _vae(hidden=(256,), x_dim=784)
    tensors = {k: v.contiguous() for k, v in net.state_dict().items()}
    raw = folder / "raw.safetensors"
    ours = folder / "ours.safetensors"
    times = collections.defaultdict(list)
    for _ in range(repeats):
        t0 = time.perf_counter()
        save(net, ours)
        times["pvae save"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        raw.write_bytes(st_save(tensors))
        times["safetensors save"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        load(ours)
        times["pvae load (rebuild + checks)"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        twin = _vae(hidden=(256,), x_dim=784)
        twin.load_state_dict(st_load(raw.read_bytes()))
        times["safetensors load + build"].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in med.items():
        print(f"    {k:30s} {v * 1e3:8.2f} ms")
    save_ratio = med["pvae save"] / med["safetensors save"]
    load_ratio = med["pvae load (rebuild + checks)"] / med["safetensors load + build"]
    print(f"    save ratio {save_ratio:.2f}x, load ratio {load_ratio:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print("flips:")
        flips(folder, 8 if args.smoke else 1)
        print("special files:")
        special(folder)
        print("time:")
        timing(folder, 3 if args.smoke else args.repeats)


if __name__ == "__main__":
    main()
