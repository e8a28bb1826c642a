"""Tests for pvae.training.checkpoint: round trips, atomic writes, and refusing pickles."""

import os
import pickle
import stat

import pyro
import pytest
import torch
from pyro.distributions import constraints

from pvae.models import VAE
from pvae.training.checkpoint import load, read_state, save, write_state


def test_pvae_model_is_rebuilt_from_its_config(tmp_path):
    torch.manual_seed(0)
    vae = VAE(6, 3, hidden=(5,), likelihood="gaussian", beta=0.5)
    path = save(vae, tmp_path / "vae.safetensors")
    twin = load(path)
    assert type(twin) is VAE and twin.config == vae.config and twin.beta == 0.5
    x = torch.rand(4, 6)
    for a, b in zip(vae.encode(x), twin.encode(x), strict=True):
        assert torch.equal(a, b)


def test_custom_module_needs_a_template(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh())
    path = save(net, tmp_path / "net.safetensors")
    with pytest.raises(ValueError, match="load\\(path, model=template\\)"):
        load(path)
    twin = load(path, model=torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh()))
    assert torch.equal(twin[0].weight, net[0].weight)
    with pytest.raises(ValueError, match="does not match the checkpoint"):
        load(path, model=torch.nn.Linear(3, 5))


def test_param_store_round_trip_keeps_values_and_constraints(tmp_path):
    pyro.param("loc", torch.tensor([1.0, -2.0]))
    pyro.param("scale", torch.tensor(0.3), constraint=constraints.positive)
    pyro.param("probs", torch.tensor([0.2, 0.8]), constraint=constraints.simplex)
    pyro.param("p", torch.tensor(0.25), constraint=constraints.interval(0.0, 0.5))
    before = {k: v.detach().clone() for k, v in pyro.get_param_store().items()}
    path = save(pyro.get_param_store(), tmp_path / "params.safetensors")
    pyro.clear_param_store()
    store = load(path)
    for name, value in before.items():
        assert torch.allclose(store[name], value, atol=1e-6), name
    assert store._constraints["scale"] is constraints.positive
    assert store._constraints["p"].upper_bound == 0.5


def test_tree_codec_round_trip(tmp_path):
    state = {
        "ints": {0: "a", 7: (1, 2.5)},
        "inf": float("-inf"),
        "nested": [{"t": torch.arange(3)}, None, True],
        "__odd": "key",
    }
    write_state(tmp_path / "s.safetensors", state, kind="tree")
    kind, back = read_state(tmp_path / "s.safetensors")
    assert kind == "tree" and back["ints"] == {0: "a", 7: (1, 2.5)}
    assert back["inf"] == float("-inf") and back["__odd"] == "key"
    assert torch.equal(back["nested"][0]["t"], torch.arange(3)) and back["nested"][1:] == [
        None,
        True,
    ]


class _Malicious:
    """Unpickling this object would write a file: the attack pvae must never run."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (exec, (f"open({self.target!r}, 'w').write('pwned')",))


def test_malicious_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned.txt"
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps({"w": _Malicious(str(marker))}))
    with pytest.raises(ValueError, match="is a pickle .*never unpickles"):
        load(evil)
    assert not marker.exists()
    # the same payload inside a torch.save archive
    archive = tmp_path / "evil.pt"
    with open(archive, "wb") as f:
        pickle.dump(_Malicious(str(marker)), f)
    torch.save({"w": torch.ones(1)}, tmp_path / "plain.pt")
    for path in (archive, tmp_path / "plain.pt"):
        with pytest.raises(ValueError, match="pickle"):
            load(path)
    assert not marker.exists()


def test_truncated_or_foreign_files_are_refused(tmp_path):
    good = save(torch.nn.Linear(2, 2), tmp_path / "good.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(good.read_bytes()[:40])
    with pytest.raises(ValueError, match="not a pvae checkpoint"):
        load(bad)
    with pytest.raises(ValueError, match="`obj` must be a torch.nn.Module"):
        save({"a": 1}, tmp_path / "x.safetensors")


def test_failed_write_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    path = write_state(tmp_path / "c.safetensors", {"epoch": 1}, kind="tree")
    with pytest.raises(ValueError, match="cannot store a value of type object"):
        write_state(path, {"epoch": 2, "bad": object()}, kind="tree")

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        write_state(path, {"epoch": 3}, kind="tree")
    assert read_state(path) == ("tree", {"epoch": 1})
    assert os.listdir(tmp_path) == ["c.safetensors"]  # no temporary file left behind


def test_saved_file_has_the_usual_permissions(tmp_path):
    """The atomic temp-file write must not leave a private 0600 file behind."""
    old = os.umask(0o022)
    try:
        path = write_state(tmp_path / "state.safetensors", {"w": torch.ones(1)}, kind="demo")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
