"""Training faults (issue 15, items 1 and 4): the last good checkpoint is good, a full disk
loses nothing, stale temporary files are cleaned, kill -9 and SIGINT resume bit for bit.

References: the closed-form SGD iterates of w -> w^2 (w_t = (-199)^t at lr 100), the
uninterrupted run with the same seed (torch.equal), and autograd at the stored state.
"""

import errno
import math
import os
import subprocess
import sys
import textwrap

import pyro
import pytest
import torch

from pvae.training.checkpoint import read_state, write_state
from pvae.training.loop import FitResult, TrainingDivergedError, fit
from pvae.training.resume import CheckpointWriteError


def _no_guide(x):
    pass


def _square(x):
    """Loss w^2 whatever the batch: SGD at lr 100 maps w to w - 200 w = -199 w."""
    w = pyro.param("w", torch.tensor(1.0))
    pyro.factor("f", -(w**2))


_SGD = dict(guide=_no_guide, batch_size=1, optimizer=torch.optim.SGD)


def test_lr_100_the_named_last_good_checkpoint_holds_a_finite_pre_divergence_state(tmp_path):
    """3 steps per epoch. After 9 updates w = 199^9 ~ 4.9e20 is finite but its loss
    w^2 ~ 2.4e41 overflows float32: the state after epoch 3 must not be written; the last
    good checkpoint is epoch 2's (w = 199^6), whose loss and gradient are finite."""
    x = torch.zeros(3)
    with pytest.raises(  # the epoch's ELBO terms show it first: -w^2 = -inf after epoch 3
        TrainingDivergedError, match=r"became -inf at the end of epoch 3"
    ) as e:
        fit(_square, x, epochs=10, lr=100.0, checkpoint_dir=tmp_path, **_SGD)
    assert str(tmp_path / "last.safetensors") in str(e.value)
    assert pyro.param("w").item() == pytest.approx(-(199.0**9), rel=1e-6)  # not updated again
    _, state = read_state(tmp_path / "last.safetensors")
    w = state["param_store"]["values"]["w"].clone().requires_grad_(True)
    assert state["epoch"] == 2 and w.item() == pytest.approx(199.0**6, rel=1e-6)
    loss = w**2  # autograd at the stored state: finite loss and gradient
    loss.backward()
    assert math.isfinite(loss.item()) and math.isfinite(w.grad.item())
    # resuming from it continues where it stopped (epoch 3), then names the state that fails
    pyro.clear_param_store()
    with pytest.raises(TrainingDivergedError, match=r"end of epoch 3.*not written"):
        last = tmp_path / "last.safetensors"
        fit(_square, x, epochs=3, lr=100.0, resume_from=last, checkpoint_dir=tmp_path, **_SGD)
    assert read_state(tmp_path / "last.safetensors")[1]["epoch"] == 2  # never overwritten


def _hooked(bad_step):
    """(w - 3)^2 / 2 with a gradient hook that makes step ``bad_step``'s gradient NaN while
    its loss stays finite."""
    calls = {"n": 0, "hooked": False}

    def model(x):
        w = pyro.param("w", torch.tensor(0.0))
        if torch.is_grad_enabled():
            calls["n"] += 1
            leaf = pyro.param("w").unconstrained()
            if not calls["hooked"]:
                calls["hooked"] = True
                leaf.register_hook(lambda g: g * math.nan if calls["n"] == bad_step else g)
        pyro.factor("f", -0.5 * (w - 3.0) ** 2)

    return model


@pytest.mark.parametrize("bad_step", [2, 4])
def test_finite_loss_nan_gradient_refuses_the_update_and_names_step_and_parameter(
    tmp_path, bad_step
):
    """2 steps per epoch, SGD at lr 0.5 from 0: w_t = 3 (1 - 0.5^t)."""
    x = torch.zeros(2)
    with pytest.raises(TrainingDivergedError) as err:
        fit(_hooked(bad_step), x, epochs=4, lr=0.5, checkpoint_dir=tmp_path, **_SGD)
    epoch, step = (bad_step - 1) // 2 + 1, (bad_step - 1) % 2 + 1
    assert f"gradient of `w` became non-finite at epoch {epoch}, step {step} of 2" in str(
        err.value
    )
    assert err.value.parameter == "w" and math.isfinite(err.value.loss)
    w = pyro.param("w").unconstrained()
    assert w.item() == pytest.approx(3 * (1 - 0.5 ** (bad_step - 1))) and w.grad is None
    if bad_step == 2:  # nothing had been checked yet
        assert not (tmp_path / "last.safetensors").exists()
        assert "No checkpoint had passed its check" in str(err.value)
    else:  # epoch 1's state was checked by step 3, then written
        _, state = read_state(tmp_path / "last.safetensors")
        assert state["epoch"] == 1
        assert state["param_store"]["values"]["w"].item() == pytest.approx(2.25)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lr": math.inf},
        {"lr": 0.0},
        {"lr": -1e-3},
        {"lr": math.nan},
        {"clip_norm": math.nan},
        {"clip_norm": -1.0},
        {"clip_norm": math.inf},
    ],
)
def test_bad_rates_and_clip_norms_are_refused_at_construction(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=rf"`{name}` must be a positive, finite number"):
        fit(_square, torch.zeros(2), guide=_no_guide, epochs=1, **kwargs)


def test_a_rate_beyond_float32_is_refused_by_name():
    """lr = 1e300 overflows float32 inside Adam's update (a RuntimeError deep in torch)."""
    with pytest.raises(ValueError, match=r"`lr` must be at most 3.403e\+38.*got 1e\+300"):
        fit(_square, torch.zeros(2), guide=_no_guide, epochs=1, lr=1e300)


def test_an_epoch_whose_terms_overflow_after_its_last_update_is_a_divergence():
    """One Adam step of lr 1e30 from loc = 0 on x = [1] moves loc by lr (Adam's first step
    is lr * sign(gradient)): loc = 1e30, and the epoch's reconstruction log N(1; 1e30, 1)
    = -(1e30 - 1)^2 / 2 - log sqrt(2 pi) overflows float32 to -inf. No step checks that
    state (no checkpoint is written), so the history would have held -inf."""
    pyro.clear_param_store()
    loc = torch.tensor(0.0, requires_grad=True)
    step = torch.optim.Adam([loc], lr=1e30)  # the closed form above, checked on torch
    (-pyro.distributions.Normal(loc, 1.0).log_prob(torch.tensor(1.0))).backward()
    step.step()
    loc = loc.detach()
    assert float(loc) == pytest.approx(1e30, rel=1e-6)
    assert float(pyro.distributions.Normal(loc, 1.0).log_prob(torch.tensor(1.0))) == -math.inf
    expected = r"`train_reconstruction` became -inf at the end of epoch 1.*`lr` \(now 1e\+30\)"
    with pytest.raises(TrainingDivergedError, match=expected + r".*pass `checkpoint_dir`"):
        fit(_mean_model, torch.tensor([1.0]), guide=_no_guide, epochs=1, lr=1e30, seed=0)


def _mean_model(x):
    loc = pyro.param("loc", torch.tensor(0.0))
    with pyro.plate("data", len(x)):
        pyro.sample("x", pyro.distributions.Normal(loc, 1.0), obs=x)


def test_a_full_disk_keeps_the_fit_result_and_names_the_file(tmp_path, monkeypatch):
    x = torch.linspace(-1.0, 3.0, 8)
    run = dict(guide=_no_guide, batch_size=4, lr=0.1, seed=0)  # 2 steps per epoch
    reference = fit(_mean_model, x, epochs=2, **run)
    pyro.clear_param_store()
    real_replace, calls = os.replace, {"n": 0}

    def replace(src, dst):
        calls["n"] += 1
        if calls["n"] == 2:  # the second checkpoint: epoch 2's, written at epoch 3 step 1
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(CheckpointWriteError) as err:
        fit(_mean_model, x, epochs=5, checkpoint_dir=tmp_path, **run)
    last = tmp_path / "last.safetensors"
    assert isinstance(err.value, OSError) and err.value.errno == errno.ENOSPC
    assert err.value.filename == str(last) and str(last) in str(err.value)
    assert "No space left on device" in str(err.value) and "`.result`" in str(err.value)
    result = err.value.result
    assert isinstance(result, FitResult) and result.stopped == "checkpoint_failed"
    assert len(result.history) == 2  # what was done, as done: no update after epoch 2
    assert torch.equal(result.params["loc"], reference.params["loc"])
    assert torch.equal(pyro.param("loc").detach(), reference.params["loc"])
    assert read_state(last)[1]["epoch"] == 1  # the previous file is intact
    assert sorted(os.listdir(tmp_path)) == ["last.safetensors"]  # no temporary file left


def test_stale_temporary_files_of_killed_writes_are_removed_on_the_next_write(tmp_path):
    ours = [".c.safetensors.k3_9xQzA.tmp", ".c.safetensors.00000000.tmp"]
    others = [
        ".c.safetensors.toolong12.tmp",  # 9 random characters: not mkstemp's
        ".d.safetensors.k3_9xQzA.tmp",  # another target's
        "c.safetensors.k3_9xQzA.tmp",  # no leading dot
        ".c.safetensors.k3_9xQzA.tmpx",
    ]
    for name in ours + others:
        (tmp_path / name).write_bytes(b"partial")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / ours[0]).write_bytes(b"another folder")
    write_state(tmp_path / "c.safetensors", {"epoch": 1}, kind="tree")
    assert sorted(os.listdir(tmp_path)) == sorted([*others, "c.safetensors", "sub"])
    assert (tmp_path / "sub" / ours[0]).exists()


# --- kill -9 and SIGINT at random moments, in subprocesses
_SCRIPT = textwrap.dedent(
    """
    import sys, torch, pyro, pyro.distributions as dist
    from pyro.distributions import constraints
    from pvae import fit, save
    def model(x, num_examples=None):
        mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
        with pyro.plate("data", num_examples or len(x), subsample_size=len(x)):
            pyro.sample("x", dist.Normal(mu, 1.0), obs=x)
    def guide(x, num_examples=None):
        m = pyro.param("m", torch.tensor(0.0))
        s = pyro.param("s", torch.tensor(1.0), constraint=constraints.positive)
        pyro.sample("mu", dist.Normal(m, s))
    out, resume = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else None)
    x = torch.randn(400, generator=torch.Generator().manual_seed(1)) + 2.0
    res = fit(model, x, guide=guide, epochs=60, batch_size=20, lr=0.01, seed=4,
              checkpoint_dir=out + "/ckpt", resume_from=resume, progress=False)
    if res.stopped == "completed":
        save(pyro.get_param_store(), out + "/final.safetensors")
    print(res.stopped)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGINT"])
def test_kill_or_sigint_at_random_moments_then_resume_is_bit_identical(tmp_path, signal_name):
    import random
    import signal
    import time

    script = tmp_path / "run.py"
    script.write_text(_SCRIPT)
    full = tmp_path / "full"
    assert subprocess.run([sys.executable, str(script), str(full)], check=True).returncode == 0
    _, reference = read_state(full / "final.safetensors")
    rng = random.Random(signal_name)
    for trial in range(3):
        out = tmp_path / f"t{trial}"
        proc = subprocess.Popen([sys.executable, str(script), str(out)])
        while not (out / "ckpt" / "last.safetensors").exists():
            assert proc.poll() is None
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 1.5))
        proc.send_signal(getattr(signal, signal_name))
        proc.wait(timeout=120)
        last = out / "ckpt" / "last.safetensors"
        read_state(last)  # whatever the moment, a valid checkpoint
        subprocess.run([sys.executable, str(script), str(out), str(last)], check=True)
        _, resumed = read_state(out / "final.safetensors")
        for name, value in reference["values"].items():
            assert torch.equal(resumed["values"][name], value), (signal_name, trial, name)
        leftovers = [p for p in os.listdir(out / "ckpt") if p.endswith(".tmp")]
        assert leftovers == []  # the resumed run's writes removed any stale temp file
