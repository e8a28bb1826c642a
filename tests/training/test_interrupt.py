"""Ctrl-C during fit (issue 15, items 2 and 3): held to a step boundary, saved with its
position inside the epoch, and resumed bit for bit like the uninterrupted run.

The reference is the uninterrupted run with the same seed: every parameter must be
``torch.equal`` to it, and every history row equal (but ``seconds``).
"""

import json
import os
import signal

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.distributions import constraints

from pvae.app.cli import main
from pvae.models import VAE
from pvae.training.checkpoint import read_state, write_state
from pvae.training.interrupts import Interrupts, deferred_interrupts
from pvae.training.loop import fit
from pvae.training.resume import resume


def _strip(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def _sigint_at(calls, at):
    """Send this process SIGINT inside the ``at``-th training step (a gradient run)."""
    if torch.is_grad_enabled():
        calls["n"] += 1
        if calls["n"] == at:
            os.kill(os.getpid(), signal.SIGINT)


# --- a global latent mean, minibatched: Adam, shuffling and a sampled latent all matter
def _pair(at=None):
    calls = {"n": 0}

    def model(x, num_examples=None):
        if at is not None:
            _sigint_at(calls, at)
        mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
        with pyro.plate("data", num_examples or len(x), subsample_size=len(x)):
            pyro.sample("x", dist.Normal(mu, 1.0), obs=x)

    def guide(x, num_examples=None):
        m = pyro.param("m", torch.tensor(0.0))
        s = pyro.param("s", torch.tensor(1.0), constraint=constraints.positive)
        pyro.sample("mu", dist.Normal(m, s))

    return model, guide


_X = torch.randn(40, generator=torch.Generator().manual_seed(1)) + 2.0
_RUN = dict(epochs=3, batch_size=10, lr=0.05, seed=4)  # 4 steps per epoch, 12 in all


def _fit_pair(at=None, **kwargs):
    model, guide = _pair(at)
    return fit(model, _X, guide=guide, **{**_RUN, **kwargs})


@pytest.fixture(scope="module")
def uninterrupted():
    pyro.clear_param_store()
    full = _fit_pair()
    return full, {k: pyro.param(k).detach().clone() for k in ("m", "s")}


# steps 2 and 6: inside epochs 1 and 2; 4: the last step of epoch 1 (before its history
# row); 12: the very last step of the run
@pytest.mark.parametrize("at", [2, 4, 6, 12])
def test_sigint_inside_an_epoch_then_resume_is_bit_identical(tmp_path, uninterrupted, at):
    full, reference = uninterrupted
    pyro.clear_param_store()
    cut = _fit_pair(at, checkpoint_dir=tmp_path)
    assert cut.stopped == "interrupted"
    _, state = read_state(cut.checkpoint)
    epoch, step = (at - 1) // 4 + 1, (at - 1) % 4 + 1
    assert state["partial"] is True and state["epoch"] == epoch - 1
    assert state["position"]["epoch"] == epoch and state["position"]["steps"] == step
    assert len(cut.history) == epoch - 1

    pyro.clear_param_store()
    pyro.set_rng_seed(123)  # the checkpoint restores every generator
    resumed = _fit_pair(resume_from=cut.checkpoint, seed=99)
    assert resumed.stopped == "completed"
    assert _strip(resumed.history) == _strip(full.history)
    for name, value in reference.items():
        assert torch.equal(pyro.param(name).detach(), value), name


class _InterruptedVAE(VAE):
    """A VAE that sends itself SIGINT inside its ``at``-th training step."""

    at = None

    def model(self, x):
        _sigint_at(self.__dict__.setdefault("_calls", {"n": 0}), type(self).at)
        return super().model(x)


@pytest.mark.parametrize("at", [3, 5])  # mid epoch 1; first step of epoch 2
def test_a_vae_interrupted_mid_epoch_resumes_bit_identically(tmp_path, at):
    x = torch.rand(48, 6, generator=torch.Generator().manual_seed(0))
    run = dict(epochs=2, batch_size=12, seed=3, val_data=x[:8])

    def vae(cls=VAE):
        torch.manual_seed(0)
        return cls(6, 2, hidden=(5,), likelihood="continuous_bernoulli")

    full_model = vae()
    full = fit(full_model, x, **run)
    pyro.clear_param_store()
    _InterruptedVAE.at = at
    cut = fit(vae(_InterruptedVAE), x, checkpoint_dir=tmp_path, **run)
    assert cut.stopped == "interrupted" and read_state(cut.checkpoint)[1]["partial"]
    pyro.clear_param_store()
    again = vae()
    resumed = fit(again, x, resume_from=cut.checkpoint, **run)
    assert _strip(resumed.history) == _strip(full.history)
    for name, value in full_model.state_dict().items():
        assert torch.equal(again.state_dict()[name], value), name


def test_an_old_partial_checkpoint_without_its_position_is_refused(tmp_path):
    pyro.clear_param_store()
    cut = _fit_pair(6, checkpoint_dir=tmp_path)
    kind, state = read_state(cut.checkpoint)
    state["position"] = None  # what pvae 0.2 wrote on Ctrl-C
    old = write_state(tmp_path / "old.safetensors", state, kind=kind)
    with pytest.raises(ValueError, match="interrupted by Ctrl-C without the position"):
        resume(old, None)


def test_sigint_is_held_to_the_step_boundary_and_a_second_one_is_not():
    flag = Interrupts()
    flag._handle(signal.SIGINT, None)  # the first: only noted
    assert flag.pending and not flag.forced
    with pytest.raises(KeyboardInterrupt):
        flag._handle(signal.SIGINT, None)  # the second: at once
    assert flag.forced
    with deferred_interrupts() as held:  # installed over the default handler, then removed
        assert held.active and signal.getsignal(signal.SIGINT) == held._handle
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_pvae_train_interrupted_says_so_and_exits_130(tmp_path, capsys, monkeypatch):
    """In process: Ctrl-C in the 3rd step of `pvae train` (the CLI's own VAE)."""
    import pvae.models.vae as vae_module

    calls = {"n": 0}
    original = vae_module.VAE.model

    def interrupted(self, x):
        _sigint_at(calls, 3)
        return original(self, x)

    monkeypatch.setattr(vae_module.VAE, "model", interrupted)
    out = tmp_path / "run"
    argv = ["train", "--data", "digits", "--z-dim", "2", "--hidden", "8", "--epochs", "2",
            "--batch-size", "512", "--num-particles", "2", "--out", str(out),
            "--no-progress"]  # fmt: skip
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "interrupted after 0 of 2 epochs" in err and "--resume" in err
    record = json.loads((out / "metrics.json").read_text())
    assert record["interrupted"] is True and record["epochs"] == 0 and record["history"] == []
    assert not (out / "model.safetensors").exists()  # never an untrained model as trained
    checkpoint = out / "checkpoints" / "last.safetensors"
    assert record["checkpoint"] == str(checkpoint)
    assert read_state(checkpoint)[1]["position"]["steps"] == 3


@pytest.mark.slow
def test_pvae_train_sigint_in_a_subprocess_then_resume(tmp_path):
    """The real thing: SIGINT to a `pvae train` process at a random moment, then --resume
    finishes the run with the same parameters as an uninterrupted run (torch.equal)."""
    import random
    import subprocess
    import sys
    import time

    from pvae.training.checkpoint import load

    base = [sys.executable, "-m", "pvae", "train", "--data", "digits", "--z-dim", "2",
            "--hidden", "8", "--epochs", "6", "--batch-size", "64", "--num-particles", "2",
            "--no-progress"]  # fmt: skip
    full = subprocess.run([*base, "--out", str(tmp_path / "full")], capture_output=True)
    assert full.returncode == 0, full.stderr
    reference = load(tmp_path / "full" / "model.safetensors").state_dict()
    rng = random.Random(15)
    for trial in range(2):
        out = tmp_path / f"cut{trial}"
        proc = subprocess.Popen([*base, "--out", str(out)], stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not (out / "checkpoints" / "last.safetensors").exists():  # training has begun
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.5))
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=120)[1]
        if proc.returncode == 0:  # it finished before the signal
            continue
        assert proc.returncode == 130, err
        assert "interrupted" in err and "--resume" in err
        record = json.loads((out / "metrics.json").read_text())
        assert record["interrupted"] is True and len(record["history"]) == record["epochs"]
        assert not (out / "model.safetensors").exists()
        again = subprocess.run(
            [*base, "--out", str(out), "--resume", record["checkpoint"]], capture_output=True
        )
        assert again.returncode == 0, again.stderr
        resumed = load(out / "model.safetensors").state_dict()
        for name, value in reference.items():
            assert torch.equal(resumed[name], value), (trial, name)
