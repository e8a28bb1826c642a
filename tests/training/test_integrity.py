"""Checkpoint files (issue 15, items 5-7): content hash, dtypes, finite weights, the
metadata schema, the model size before allocation, and regular files only.

Every damaged, crafted or special file must end in a ``ValueError`` naming the file (and,
for the contents, the field), never in another exception, a hang, or different weights.
"""

import json
import os
import random
import resource
import signal
import struct

import pyro
import pytest
import torch
from pyro.distributions import constraints
from safetensors.torch import save as st_save

from pvae.models import VAE
from pvae.training.checkpoint import (
    UnverifiedCheckpointWarning,
    load,
    model_state,
    read_state,
    save,
    write_state,
)
from pvae.training.loop import fit
from pvae.training.resume import resume


def _vae():
    torch.manual_seed(0)
    return VAE(6, 2, hidden=(4,))


def _flip(data, index):
    flipped = bytearray(data)
    flipped[index // 8] ^= 1 << (index % 8)
    return bytes(flipped)


def _outcome(path):
    """'loaded' or 'refused'; any other exception escapes and fails the test."""
    try:
        load(path)
    except ValueError as err:
        assert str(path) in str(err)
        return "refused"
    return "loaded"


def _flips(tmp_path, count, seed):
    good = save(_vae(), tmp_path / "good.safetensors").read_bytes()
    n = int.from_bytes(good[:8], "little")
    bad = tmp_path / "bad.safetensors"
    rng = random.Random(seed)
    where = {"header": 0, "tensors": 0}
    bits = range(8 * len(good)) if count is None else rng.sample(range(8 * len(good)), count)
    for bit in bits:
        bad.write_bytes(_flip(good, bit))
        assert _outcome(bad) == "refused", f"bit {bit} flipped loaded silently"
        where["header" if bit < 8 * (8 + n) else "tensors"] += 1
    return where


def test_a_few_hundred_single_bit_flips_are_all_refused(tmp_path):
    where = _flips(tmp_path, 300, seed=15)
    assert where["header"] > 50 and where["tensors"] > 50  # both parts were hit


@pytest.mark.slow
def test_every_single_bit_flip_is_refused(tmp_path):
    _flips(tmp_path, None, seed=0)


def test_a_flip_in_tensor_data_names_the_hash(tmp_path):
    path = save(_vae(), tmp_path / "m.safetensors")
    data = path.read_bytes()
    path.write_bytes(_flip(data, 8 * (len(data) - 3)))  # inside the last tensor's bytes
    with pytest.raises(ValueError, match=r"is damaged: its content hash \(pvae_sha256\)"):
        load(path)


def test_truncated_and_padded_files_are_refused(tmp_path):
    good = save(_vae(), tmp_path / "m.safetensors").read_bytes()
    bad = tmp_path / "bad.safetensors"
    for size in [0, 1, 7, 8, 9, 100, len(good) // 2, len(good) - 1]:
        bad.write_bytes(good[:size])
        assert _outcome(bad) == "refused"
    bad.write_bytes(good + b"\0")
    with pytest.raises(ValueError, match="the header describes .* but the file has"):
        load(bad)
    bad.write_bytes(struct.pack("<Q", 2**40) + good[8:])  # an absurd header length
    with pytest.raises(ValueError, match="header length"):
        load(bad)


def _model_file(tmp_path, name, **changes):
    state = {**model_state(_vae()), **changes}
    return write_state(tmp_path / f"{name}.safetensors", state, kind="model")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int32, torch.bool])
def test_wrong_dtypes_are_refused_not_cast(tmp_path, dtype):
    sd = {k: v.to(dtype) for k, v in _vae().state_dict().items()}
    path = _model_file(tmp_path, "cast", state_dict=sd)
    with pytest.raises(
        ValueError, match=rf"is a {dtype} tensor, but the model holds torch.float32; pvae does not"
    ):
        load(path)
    with pytest.raises(ValueError, match=rf"is a {dtype} tensor"):
        load(path, model=_vae())


def test_param_store_values_must_be_float32_or_float64(tmp_path):
    path = write_state(
        tmp_path / "p.safetensors",
        {"values": {"w": torch.ones(2, dtype=torch.float16)}, "constraints": {"w": "real"}},
        kind="param_store",
    )
    with pytest.raises(ValueError, match=r"field `state.values.w` must be a float32 or float64"):
        load(path)


def test_non_finite_weights_are_refused_unless_allowed(tmp_path):
    net = _vae()
    sd = dict(net.state_dict())
    sd["decoder.mlp.net.0.bias"] = sd["decoder.mlp.net.0.bias"].clone()
    sd["decoder.mlp.net.0.bias"][1] = float("nan")
    path = _model_file(tmp_path, "nan", state_dict=sd)
    with pytest.raises(ValueError, match=r"state_dict.decoder.mlp.net.0.bias` holds NaN .*allow"):
        load(path)
    twin = load(path, allow_nonfinite=True)
    assert torch.isnan(twin.state_dict()["decoder.mlp.net.0.bias"][1])
    _ = pyro.param("s", torch.tensor([1.0, float("inf")]), constraint=constraints.positive)
    path = save(pyro.get_param_store(), tmp_path / "store.safetensors")
    pyro.clear_param_store()
    with pytest.raises(ValueError, match=r"`state.values.s` holds NaN or infinite"):
        load(path)
    assert "s" not in pyro.get_param_store()  # refused before the store was touched


def test_files_without_a_hash_from_pvae_0_2_load_with_a_warning(tmp_path):
    """Format 1 (pvae <= 0.2) had no hash: load it, warn, and say how to re-save."""
    from pvae.training.codec import encode

    net = _vae()
    tensors = {}
    tree = encode(model_state(net), tensors)
    header = {"format": "pvae-checkpoint", "version": 1, "kind": "model", "state": tree}
    path = tmp_path / "old.safetensors"
    path.write_bytes(st_save(tensors, metadata={"pvae": json.dumps(header)}))
    with pytest.warns(UnverifiedCheckpointWarning, match=r"no content hash.*re-save"):
        twin = load(path)
    assert all(torch.equal(twin.state_dict()[k], v) for k, v in net.state_dict().items())
    header["version"] = 2  # a current file that lost its hash is damaged, not old
    path.write_bytes(st_save(tensors, metadata={"pvae": json.dumps(header)}))
    with pytest.raises(ValueError, match="has no content hash"):
        load(path)


def _rehash(path, edit):
    """Rewrite a file's "pvae" metadata with ``edit(header)`` and a matching hash: crafted,
    not damaged, so only the schema check can refuse it."""
    from pvae.training.safefile import content_digest, read_file

    raw = read_file(path)
    header = json.loads(raw.metadata["pvae"])
    edit(header)
    meta = json.dumps(header)
    tensors = {name: torch.frombuffer(bytearray(rec[2]), dtype=_DT[rec[0]]).reshape(rec[1])
               for name, rec in raw.tensors.items()}  # fmt: skip
    digest = content_digest(meta, raw.tensors)
    path.write_bytes(st_save(tensors, metadata={"pvae": meta, "pvae_sha256": digest}))
    return path


_DT = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "U8": torch.uint8}


def _set(keys, value):
    def edit(header):
        node = header["state"]
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return edit


def _drop(keys):
    def edit(header):
        node = header["state"]
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]

    return edit


_CRAFTED_MODEL = [
    (_set(["class"], 7), "state.class"),
    (_set(["class"], "Sequential"), "class"),
    (_set(["custom"], "no"), "state.custom"),
    (_set(["config"], [1, 2]), "state.config"),
    (_set(["config", "x_dim"], "six"), "config"),
    (_set(["config", "bogus"], 1), "config"),
    (_set(["config", "hidden"], [4, 4]), "config"),
    (_set(["state_dict"], None), "state.state_dict"),
    (_set(["state_dict", "encoder.body.net.0.bias"], 3.5), "state.state_dict.encoder"),
    (_set(["state_dict", "encoder.body.net.0.bias"], {"__tensor__": "t999"}), "t999"),
    (_set(["state_dict", "encoder.body.net.0.bias"], {"__float__": "1e9"}), "malformed float"),
    (_set(["state_dict", "encoder.body.net.0.bias"], {"__tuple__": 3}), "must be a list"),
    (_set(["state_dict", "x"], {"__items__": [[1]]}), "pair"),
    (_set(["state_dict", "x"], {"__weird__": 1}), "malformed tagged"),
    (_drop(["state_dict", "encoder.body.net.0.bias"]), "missing"),
    (_drop(["config"]), "state.config` is missing"),
    (lambda h: h.update(kind=["model"]), "kind"),
    (lambda h: h.update(version="2"), "version"),
    (lambda h: h.update(version=0), "version"),
    (lambda h: h.update(version=3), "newer pvae"),
    (lambda h: h.pop("state"), "state"),
    (lambda h: h.update(format="other"), "not a pvae checkpoint"),
]


@pytest.mark.parametrize("edit, field", _CRAFTED_MODEL)
def test_crafted_model_metadata_is_refused_naming_the_field(tmp_path, edit, field):
    path = _rehash(save(_vae(), tmp_path / "m.safetensors"), edit)
    with pytest.raises(ValueError) as err:
        load(path)
    assert str(path) in str(err.value) and field in str(err.value)


@pytest.fixture(scope="module")
def fit_bytes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fit")
    x = (torch.rand(16, 6, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    fit(_vae(), x, epochs=2, batch_size=8, seed=0, checkpoint_dir=folder, progress=False)
    return (folder / "last.safetensors").read_bytes()


@pytest.fixture
def fit_file(tmp_path, fit_bytes):
    path = tmp_path / "last.safetensors"
    path.write_bytes(fit_bytes)
    return path


_CRAFTED_FIT = [
    (_set(["epoch"], -1), "state.epoch"),
    (_set(["epoch"], True), "state.epoch"),
    (_set(["partial"], 1), "state.partial"),
    (_set(["history"], {"epoch": 1}), "state.history"),
    (_set(["history"], [{"epoch": 1}, {"epoch": 2}, {"epoch": 3}]), "state.history"),
    (_set(["history", 0], {"train_elbo": 1.0}), "state.history[0].epoch"),
    (_set(["best"], [1, 2]), "state.best"),
    (_set(["best", 0], "one"), "state.best[0]"),
    (_set(["rng", "torch"], {"__tensor__": "t0"}), "state.rng.torch"),
    (_set(["rng", "python"], [3, [1, 2], None]), "state.rng.python"),
    (_set(["rng", "numpy"], ["PCG64", 1]), "state.rng.numpy"),
    (_drop(["rng"]), "state.rng` is missing"),
    (_set(["optimizer", "shapes"], "many"), "state.optimizer.shapes"),
    (_set(["optimizer", "groups"], [99]), "state.optimizer.groups"),
    (_set(["optimizer", "torch"], [1]), "state.optimizer.torch"),
    (_set(["optimizer", "num_steps"], -5), "state.optimizer.num_steps"),
    (_set(["param_store", "constraints"], {"ghost": "real"}), "constraints"),
    (_set(["param_store", "values"], {"w": 1.0}), "state.param_store.values.w"),
    (
        _set(["position"], {"epoch": 9, "steps": 1, "total": 0, "count": 0, "batches": None}),
        "state.position.epoch",
    ),  # fmt: skip
    (_set(["position"], {"epoch": 3}), "state.position.steps` is missing"),
    (_set(["model", "custom"], None), "state.model.custom"),
]


@pytest.mark.parametrize("edit, field", _CRAFTED_FIT)
def test_crafted_fit_metadata_is_refused_naming_the_field(fit_file, edit, field):
    path = _rehash(fit_file, edit)
    for call in (lambda: load(path), lambda: resume(path, _vae())):
        with pytest.raises(ValueError) as err:
            call()
        assert str(path) in str(err.value) and field in str(err.value)


@pytest.mark.parametrize(
    "hidden, message",
    [
        # 2 * 10^8 numbers (800 MB): built on the meta device, compared with the file's 90
        (
            [10**7],
            r"config` describes does not match: .*has shape .*2000\d+ numbers in all; "
            r"the file holds 90",
        ),  # fmt: skip
        # 2 * 10^12 numbers (8 TB): the model's own size limit refuses the config
        ([10**6, 10**6], r"field `config` does not build a VAE: .*parameters"),
        # more layers than stored
        ([10**3, 10**3], r"does not fit a VAE \(missing .*the file holds 90"),
    ],
)
def test_a_tiny_file_asking_for_a_huge_network_is_refused_before_allocating(
    tmp_path, hidden, message
):
    """Peak memory of the refusal must stay within 100 MB."""
    path = _rehash(save(_vae(), tmp_path / "m.safetensors"), _set(["config", "hidden"], hidden))
    assert path.stat().st_size < 3000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with pytest.raises(ValueError, match=message):
        load(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024


def _alarm(seconds):
    def fail(*_):
        raise AssertionError("reading the file hung")

    signal.signal(signal.SIGALRM, fail)
    signal.alarm(seconds)


def test_special_files_are_refused_without_hanging_or_filling_memory(tmp_path):
    zero = tmp_path / "zero.safetensors"
    zero.symlink_to("/dev/zero")
    fifo = tmp_path / "fifo.safetensors"
    os.mkfifo(fifo)
    _alarm(10)
    try:
        for path, what in [(zero, "character device"), (fifo, "FIFO"), (tmp_path, "directory")]:
            for call in (load, read_state, lambda p: resume(p, None)):
                with pytest.raises(
                    ValueError, match=f"is a {what}.*pvae reads checkpoints from regular"
                ):
                    call(path)
    finally:
        signal.alarm(0)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.safetensors")
    for target in (tmp_path, fifo, zero):  # nor is anything but a regular file replaced
        with pytest.raises(ValueError, match="writes checkpoints to regular files only"):
            save(_vae(), target)
    assert zero.is_symlink() and fifo.exists() and not fifo.is_file()
    good = save(_vae(), tmp_path / "good.safetensors")
    link = tmp_path / "link.safetensors"
    link.symlink_to(good)  # a link to a regular file is fine
    assert isinstance(load(link), VAE)
