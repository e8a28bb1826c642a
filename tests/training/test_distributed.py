"""Tests for pvae.training.distributed: sharding, gradient averaging and failure handling.

The multi-process tests start real process groups on 127.0.0.1 with gloo: through
``torchrun --standalone`` (as users launch), or as two plain processes when the test needs
to kill one; they are the second tier (``@pytest.mark.slow``, ``make test-slow``). This
file is also the workers' script: ``python tests/training/test_distributed.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pyro
import pyro.distributions as dist
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from pvae.data import TensorBatches
from pvae.training.distributed import (
    DistributedBatches,
    DistributedContext,
    DistributedError,
    all_reduce_mean,
    all_reduce_sum,
    average_gradients,
    broadcast_parameters,
    init_distributed,
    shard_batches,
    shard_indices,
)

REPO = Path(__file__).resolve().parents[2]
LAUNCH_TIMEOUT = 120  # seconds: bounds every multi-process test, start-up included
DEATH_NOTICED_WITHIN = 60  # seconds from a rank's death to the others' exit


# ----------------------------------------------------------------------------- sharding


@pytest.mark.parametrize("num_examples", [7, 8, 3])
@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("drop_last", [True, False])
def test_shard_indices_match_distributed_sampler(num_examples, world_size, shuffle, drop_last):
    dataset = list(range(num_examples))
    for epoch in (0, 3):
        for rank in range(world_size):
            sampler = DistributedSampler(
                dataset, world_size, rank, shuffle=shuffle, seed=5, drop_last=drop_last
            )
            sampler.set_epoch(epoch)
            ours = shard_indices(
                num_examples,
                rank=rank,
                world_size=world_size,
                epoch=epoch,
                seed=5,
                shuffle=shuffle,
                drop_last=drop_last,
            )
            assert ours.tolist() == list(sampler)


def test_shards_partition_the_data_and_change_every_epoch():
    def shards(epoch):
        return [shard_indices(10, rank=r, world_size=2, epoch=epoch) for r in range(2)]

    first, second = shards(0), shards(1)
    assert sorted(torch.cat(first).tolist()) == list(range(10))
    assert sorted(torch.cat(second).tolist()) == list(range(10))
    assert first[0].tolist() != second[0].tolist()
    assert [s.tolist() for s in shards(0)] == [s.tolist() for s in first]  # reproducible


def test_distributed_batches_pad_to_equal_steps_and_follow_the_epoch():
    x = torch.arange(10.0)
    ranks = [
        DistributedBatches([x], 2, context=DistributedContext(rank=r, world_size=3), shuffle=True)
        for r in range(3)
    ]
    assert [len(b) for b in ranks] == [2, 2, 2]  # 10 examples -> 4 per rank, padded
    passes = [[torch.cat([b[0] for b in batches]) for _ in range(2)] for batches in ranks]
    union = torch.cat([p[0] for p in passes])
    assert union.numel() == 12 and set(union.tolist()) == set(range(10))
    assert not torch.equal(passes[0][0], passes[0][1])  # next pass, next epoch
    ranks[0].set_epoch(1)
    assert torch.equal(torch.cat([b[0] for b in ranks[0]]), passes[0][1])
    assert ranks[0].epoch == 2


def test_union_of_rank_batches_is_one_global_batch():
    """Step k on R ranks with batch B sees the examples of step k of one rank with R*B."""
    x = torch.arange(24.0)
    ctxs = [DistributedContext(rank=r, world_size=2) for r in range(2)]
    single = DistributedBatches([x], 6, shuffle=True, seed=3, context=DistributedContext())
    split = [DistributedBatches([x], 3, shuffle=True, seed=3, context=c) for c in ctxs]
    for whole, *parts in zip(single, *split, strict=True):
        together = torch.cat([p[0] for p in parts])
        assert sorted(together.tolist()) == sorted(whole[0].tolist())


def test_shard_batches_keeps_tensor_batches_settings():
    whole = TensorBatches([torch.zeros(9, 2), torch.ones(9)], 4, shuffle=True, seed=11)
    mine = shard_batches(whole, DistributedContext(rank=1, world_size=2))
    assert isinstance(mine, DistributedBatches)
    assert (mine.batch_size, mine.seed, mine.shuffle, mine.num_examples) == (4, 11, True, 9)
    assert [tuple(b[0].shape) for b in mine] == [(4, 2), (1, 2)]
    assert shard_batches(whole, DistributedContext()) is whole  # not distributed: unchanged


def test_shard_batches_rebuilds_a_data_loader_over_a_distributed_sampler():
    data = TensorDataset(torch.arange(10.0))
    loader = DataLoader(data, batch_size=3, shuffle=True)
    mine = shard_batches(loader, DistributedContext(rank=0, world_size=2), seed=4)
    assert isinstance(mine.sampler, DistributedSampler) and mine.sampler.shuffle
    first = torch.cat([b[0] for b in mine])
    second = torch.cat([b[0] for b in mine])
    assert first.tolist() == [data[i][0].item() for i in shard_indices(10, seed=4, world_size=2)]
    assert first.tolist() != second.tolist()
    assert mine.num_examples == 10 and len(mine) == 2
    plain = shard_batches(DataLoader(data, batch_size=2), DistributedContext(rank=1, world_size=2))
    assert [b[0].tolist() for b in plain] == [[1.0, 3.0], [5.0, 7.0], [9.0]]


def test_shard_batches_refuses_other_containers():
    with pytest.raises(
        ValueError, match="`batches` must be a pvae.data.TensorBatches or a torch DataLoader"
    ):
        shard_batches([1, 2, 3], DistributedContext(rank=0, world_size=2))


# ----------------------------------------------------------------------------- context


def test_the_names_of_0_1_still_import_from_the_package():
    import pvae.training.distributed as distributed

    for name in distributed.__all__:
        assert getattr(distributed, name) is not None
    assert distributed.DEFAULT_TIMEOUT == 120.0


def test_single_process_context_and_no_op_collectives(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ctx = init_distributed(device="cpu")
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.is_distributed) == (0, 1, True, False)
    p = torch.ones(2, requires_grad=True)
    (3.0 * p).sum().backward()
    average_gradients([("p", p)], ctx)
    broadcast_parameters([("p", p)], ctx)
    assert p.grad.tolist() == [3.0, 3.0] and p.tolist() == [1.0, 1.0]
    assert all_reduce_sum([2.0, 5.0], ctx) == (2.0, 5.0)


def test_init_distributed_validates_the_environment(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="`WORLD_SIZE` in the environment must be an integer"):
        init_distributed(device="cpu")
    monkeypatch.setenv("WORLD_SIZE", "2")
    for name in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="`RANK` must be set .* `torchrun"):
        init_distributed(device="cpu")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(ValueError, match="`timeout` must be a positive"):
        init_distributed(device="cpu", timeout=0)


# ----------------------------------------------------------------------------- processes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    env.pop("WORLD_SIZE", None)
    env.update(extra)
    return env


def _torchrun(*args: str, nproc: int = 2) -> list[str]:
    """Launch this file under torchrun; return each rank's stderr."""
    logs = Path(args[-1]) / "logs"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += [f"--nproc_per_node={nproc}", "--redirects=2", f"--log-dir={logs}"]
    command += [__file__, *args]
    done = subprocess.run(
        command, env=_env(), capture_output=True, text=True, timeout=LAUNCH_TIMEOUT
    )
    stderr = [
        "".join(p.read_text() for p in logs.glob(f"**/attempt_*/{rank}/stderr.log"))
        for rank in range(nproc)
    ]
    assert done.returncode == 0, done.stderr[-2000:] + "".join(stderr)[-3000:]
    return stderr


def _regression_data(num_examples: int = 48):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(num_examples, 3, generator=generator, dtype=torch.float64)
    y = x @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) + 0.3 * torch.randn(
        num_examples, generator=generator, dtype=torch.float64
    )
    return x, y


def _regression_model(x, y, num_examples):
    """Bayesian regression with three same-shaped weights: a wrong order would mix them."""
    weights = [
        pyro.sample(f"w{i}", dist.Normal(torch.zeros(3, dtype=x.dtype), 1.0).to_event(1))
        for i in range(3)
    ]
    mean = x @ weights[0] + (x**2) @ weights[1] + torch.sin(x) @ weights[2]
    with pyro.plate("data", num_examples, subsample=torch.arange(len(x))):
        pyro.sample("y", dist.Normal(mean, 0.3), obs=y)


def _map_guide(x, y, num_examples):
    for i in range(3):
        loc = pyro.param(f"w{i}_loc", lambda: torch.randn(3, dtype=x.dtype))
        pyro.sample(f"w{i}", dist.Delta(loc).to_event(1))


def _reference_map_loop(context, batch_size, epochs, die_at_step=None):
    """A hand-written SVI loop: loss, backward, gradient average, gradient step.

    Parameters start different on each rank (seeded by rank) and are made equal by
    ``broadcast_parameters``; rank 1 hands parameters in reversed order, as ``SVI.step``'s
    set would, so only name ordering keeps the average right.
    """
    dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    pyro.clear_param_store()
    pyro.set_rng_seed(context.rank)
    x, y = _regression_data()
    batches = DistributedBatches([x, y], batch_size, context=context, shuffle=True, seed=1)
    elbo = pyro.infer.Trace_ELBO()
    pyro.poutine.trace(_map_guide).get_trace(x[:1], y[:1], len(x))  # create the parameters
    store = pyro.get_param_store()
    broadcast_parameters(store.named_parameters(), context)
    step = 0
    for _ in range(epochs):
        for xb, yb in batches:
            if step == die_at_step:
                os._exit(3)  # a rank dying mid-training, no clean-up
            loss = elbo.differentiable_loss(_regression_model, _map_guide, xb, yb, len(x))
            loss.backward()
            named = list(store.named_parameters())
            average_gradients(named[::-1] if context.rank == 1 else named, context)
            with torch.no_grad():  # plain gradient descent (torch.optim's import costs seconds)
                for _, p in named:
                    p -= 2e-4 * p.grad
                    p.grad = None
            step += 1
    torch.set_default_dtype(dtype)
    params = {name: p.detach().clone() for name, p in store.named_parameters()}
    return params


def _linear_gaussian_data():
    """Probabilistic-PCA data: x = W z + noise, 8 features, 2 latent dimensions."""
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(2, 8, generator=generator)
    x = torch.randn(1536, 2, generator=generator) @ weight
    x = x + 0.3 * torch.randn(1536, 8, generator=generator)
    return x[:1024], x[1024:]


def _fit_linear_vae(batch_size, out=None, rank=0):
    """pvae.fit on a linear VAE; returns (params, test ELBO, test log-likelihood, history)."""
    from pvae.evaluation import evaluate
    from pvae.models.vae import VAE
    from pvae.training.loop import fit

    x_train, x_test = _linear_gaussian_data()
    pyro.set_rng_seed(rank)  # ranks start from different weights: fit must align them
    vae = VAE(8, 2, hidden=(), likelihood="gaussian", scale="learned")
    result = fit(
        vae,
        x_train,
        epochs=20,
        batch_size=batch_size,
        lr=3e-2,
        lr_schedule=lambda epoch: 3e-2 if epoch <= 12 else 3e-3,
        seed=0,
        progress=True,
        checkpoint_dir=None if out is None else Path(out) / f"checkpoints{rank}",
    )
    test = evaluate(vae, x_test, num_particles=200, seed=0)
    return result.params, test.elbo, test.log_evidence, result.history


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """One torchrun launch of 2 ranks running both workloads (start-up is the slow part)."""
    out = tmp_path_factory.mktemp("two_ranks")
    logs = _torchrun("train", str(out))
    return out, logs


@pytest.mark.slow
def test_two_ranks_take_the_same_steps_as_one_process_with_the_global_batch(two_ranks):
    """Deterministic MAP loss: 2 ranks x batch 4 must equal 1 process x batch 8 (float64)."""
    out, _ = two_ranks
    ranks = [torch.load(out / f"map{r}.pt", weights_only=True) for r in range(2)]
    single = _reference_map_loop(DistributedContext(), batch_size=8, epochs=4)
    assert set(ranks[0]) == set(single) == {"w0_loc", "w1_loc", "w2_loc"}
    for name, value in single.items():
        assert torch.equal(ranks[0][name], ranks[1][name])  # replicas identical, bit for bit
        torch.testing.assert_close(ranks[0][name], value, rtol=0, atol=1e-10)
    assert not torch.allclose(single["w0_loc"], single["w1_loc"], atol=0.1)  # it trained


@pytest.mark.slow
def test_fit_on_two_ranks_matches_one_process_with_the_global_batch(two_ranks):
    """pvae.fit under torchrun: identical replicas, and test log p(x) within 0.05 nats.

    Seed-to-seed spread of the test log-likelihood in one process is about 0.02 nats
    (-5.924, -5.932, -5.940 for seeds 0-2); 2 ranks x 32 gave -5.917, -5.931, -5.939.
    """
    out, logs = two_ranks
    ranks = [torch.load(out / f"fit{r}.pt", weights_only=True) for r in range(2)]
    for name in ranks[0]:
        assert torch.equal(ranks[0][name], ranks[1][name]), name
    metrics = json.loads((out / "fit_metrics.json").read_text())
    _, elbo, log_evidence, history = _fit_linear_vae(batch_size=64)
    assert abs(metrics["log_evidence"] - log_evidence) < 0.05
    assert abs(metrics["elbo"] - elbo) < 0.05
    assert len(metrics["history"]) == len(history) == 20
    assert abs(metrics["history"][-1]["train_elbo"] - history[-1]["train_elbo"]) < 0.05
    # rank 0 alone writes checkpoints and shows progress
    assert (out / "checkpoints0" / "last.safetensors").exists()
    assert not (out / "checkpoints1").exists()
    assert "fit: epoch 20/20" in logs[0] and "fit:" not in logs[1]


@pytest.mark.slow
def test_metrics_are_summed_and_averaged_over_ranks(two_ranks):
    out, _ = two_ranks
    for rank in range(2):
        assert json.loads((out / f"sums{rank}.json").read_text()) == [[3.0, 20.0], [1.5]]


@pytest.mark.slow
def test_ranks_with_different_parameters_all_fail_clearly(two_ranks):
    out, _ = two_ranks
    for rank in range(2):
        message = (out / f"mismatch{rank}.txt").read_text()
        assert message.startswith(f"ranks hold different parameters (rank {rank} has 1: w:(")


@pytest.mark.slow
def test_a_dead_rank_stops_the_others_with_a_clear_error(tmp_path):
    """Rank 1 exits mid-training; rank 0 must fail within 60 s (not hang) and say why.

    A peer that exits closes its sockets, so rank 0 fails at its next all-reduce;
    ``PVAE_DIST_TIMEOUT=20`` bounds the wait even if it did not.
    """
    port = str(_free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "map", str(tmp_path), "--die-at-step", "3"],
            env=_env(
                WORLD_SIZE="2",
                RANK=str(rank),
                LOCAL_RANK=str(rank),
                MASTER_ADDR="127.0.0.1",
                MASTER_PORT=port,
                PVAE_DIST_TIMEOUT="20",
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(2)
    ]
    try:
        procs[1].communicate(timeout=LAUNCH_TIMEOUT)  # start-up, then dies at step 3
        _, err = procs[0].communicate(timeout=DEATH_NOTICED_WITHIN)  # raises if it hangs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert procs[1].returncode == 3
    assert procs[0].returncode != 0
    assert "DistributedError: rank 0 failed while averaging gradients" in err
    assert "another rank exited" in err


@pytest.mark.slow
def test_pvae_train_command_under_torchrun_writes_once(tmp_path):
    """`torchrun -m pvae train`: rank 0 alone prints and writes OUT (with world_size 2)."""
    out = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node=2", "-m", "pvae", "train", "--epochs", "2", "--hidden", "32"]
    command += ["--z-dim", "2", "--batch-size", "64", "--num-particles", "10", "--out", str(out)]
    done = subprocess.run(
        command, env=_env(), capture_output=True, text=True, timeout=LAUNCH_TIMEOUT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("trained in") == 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and len(metrics["history"]) == 2
    assert (out / "model.safetensors").exists()


# ----------------------------------------------------------------------------- workers


def _main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description="worker for tests/test_distributed.py")
    parser.add_argument("mode", choices=["map", "train"])
    parser.add_argument("out")
    parser.add_argument("--die-at-step", type=int, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    context = init_distributed(device="cpu")
    die = args.die_at_step if context.rank == 1 else None
    params = _reference_map_loop(context, batch_size=4, epochs=4, die_at_step=die)
    torch.save(params, Path(args.out) / f"map{context.rank}.pt")
    if args.mode == "train":
        params, elbo, log_evidence, history = _fit_linear_vae(32, args.out, context.rank)
        torch.save(params, Path(args.out) / f"fit{context.rank}.pt")
        if context.is_main:
            metrics = {"elbo": elbo, "log_evidence": log_evidence, "history": history}
            (Path(args.out) / "fit_metrics.json").write_text(json.dumps(metrics))
        sums = [all_reduce_sum([context.rank + 1, 10.0]), all_reduce_mean([context.rank + 1])]
        (Path(args.out) / f"sums{context.rank}.json").write_text(json.dumps(sums))
        try:  # ranks that built different parameters must all fail, none hang
            broadcast_parameters([("w", torch.zeros(2 + context.rank))], context)
        except DistributedError as error:
            (Path(args.out) / f"mismatch{context.rank}.txt").write_text(str(error))


if __name__ == "__main__":
    _main(sys.argv[1:])
