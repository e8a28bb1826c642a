import gzip
import struct

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from pvae.data import (
    FASHION_MNIST_DIR,
    DynamicBinarized,
    as_batches,
    binarize,
    check_support,
    digits,
    fashion_mnist,
    load_array,
    load_dataset,
    read_idx,
)


def write_idx(path, array, code=0x08, compress=False):
    """Write an IDX file by hand: 00 00 <type> <ndim>, big-endian dims, big-endian data."""
    dtype = {0x08: ">u1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + np.asarray(array, dtype=dtype).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


# ----------------------------------------------------------------------------- digits


def test_digits_split_scaling_and_labels():
    d = digits()
    raw = load_digits()
    assert d.x_train.shape == (1500, 64) and d.x_test.shape == (297, 64)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert d.image_shape == (8, 8) and d.x_dim == 64 and d.classes[3] == "3"
    np.testing.assert_array_equal(d.x_train.numpy() * 16, raw.data[:1500].astype(np.float32))
    np.testing.assert_array_equal(d.x_test.numpy() * 16, raw.data[1500:].astype(np.float32))
    assert d.y_test.tolist() == raw.target[1500:].tolist()
    assert float(d.x_train.min()) == 0.0 and float(d.x_train.max()) == 1.0
    # every digit appears in both parts of the fixed split
    assert torch.bincount(d.y_test).min() >= 27 and torch.bincount(d.y_train).min() >= 146
    assert d.train is d.x_train


def test_static_binarization_is_binary_seeded_and_unbiased():
    a, b, c = digits("static"), digits("static"), digits("static", seed=1)
    assert set(a.x_train.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.x_test, b.x_test)
    assert not torch.equal(a.x_train, c.x_train)
    grey = digits().x_train
    # one Bernoulli draw per pixel: the mean over 96,000 pixels matches within 4 standard errors
    se = float((grey * (1 - grey)).sum().sqrt() / grey.numel())
    assert abs(float(a.x_train.mean() - grey.mean())) < 4 * se
    # pixels that are exactly 0 or 1 stay as they are
    assert torch.all(a.x_train[grey == 0] == 0) and torch.all(a.x_train[grey == 1] == 1)


def test_dynamic_binarization_draws_new_pixels_every_pass():
    d = digits("dynamic")
    assert torch.equal(d.x_train, digits().x_train)  # grey intensities kept for training
    assert set(d.x_test.unique().tolist()) == {0.0, 1.0}  # the test set is binarized once
    assert torch.equal(d.x_test, digits("static").x_test)  # the same one as with "static"
    ds = d.train
    assert isinstance(ds, DynamicBinarized) and len(ds) == 1500
    first = torch.cat([b[0] for b in as_batches(ds, batch_size=500)])
    second = torch.cat([b[0] for b in as_batches(ds, batch_size=500)])
    assert first.shape == (1500, 64) and set(first.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(first, second)
    # the average of many draws approaches the intensities
    x = torch.full((2000, 4), 0.25)
    draws = torch.cat([b[0] for b in as_batches(DynamicBinarized(x), batch_size=256)])
    assert abs(float(draws.mean()) - 0.25) < 4 * (0.25 * 0.75 / 8000) ** 0.5


def test_dynamic_dataset_with_labels_and_bad_input():
    x, y = torch.full((5, 2), 0.5), torch.arange(5)
    (xb, yb), *_ = list(as_batches(DynamicBinarized(x, y), batch_size=5))
    assert xb.shape == (5, 2) and yb.tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match=r"`x` must hold probabilities in \[0, 1\]"):
        DynamicBinarized(torch.tensor([[2.0]]))
    with pytest.raises(ValueError, match="`y` must have 5 labels"):
        DynamicBinarized(x, torch.arange(4))
    with pytest.raises(ValueError, match=r"got values in \[-1, 0.5\]"):
        binarize(torch.tensor([-1.0, 0.5]))
    with pytest.raises(ValueError, match="`binarize` must be None, 'static' or 'dynamic'"):
        digits("threshold")


# ----------------------------------------------------------------------------- IDX files


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_bytes_roundtrip(tmp_path, compress):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 10
    p = write_idx(tmp_path / "img-idx3-ubyte", images, compress=compress)
    out = read_idx(p)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, images)


@pytest.mark.parametrize(
    ("code", "values"),
    [(0x0B, [-300, 2, 30000]), (0x0C, [-(2**31), 0, 2**31 - 1]), (0x0D, [0.5, -1.25, 3e9])],
)
def test_read_idx_big_endian_types(tmp_path, code, values):
    p = write_idx(tmp_path / "v.idx", np.array(values), code=code)
    out = read_idx(p)
    assert out.dtype.byteorder in ("=", "|") and out.tolist() == values


def test_read_idx_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such IDX file"):
        read_idx(tmp_path / "missing")
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01\x00")
    with pytest.raises(ValueError, match="is not an IDX file"):
        read_idx(tmp_path / "bad")
    good = write_idx(tmp_path / "t", np.zeros((4, 5), dtype=np.uint8)).read_bytes()
    (tmp_path / "short").write_bytes(good[:-3])
    with pytest.raises(
        ValueError, match=r"shape \(4, 5\) needs 20 bytes of data, the file has 17"
    ):
        read_idx(tmp_path / "short")


def write_fashion(root, n_train=6, n_test=3, height=4, width=3, compress=True):
    rng = np.random.default_rng(0)
    root.mkdir(exist_ok=True)
    parts = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, height, width), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        suffix = ".gz" if compress else ""
        write_idx(root / f"{prefix}-images-idx3-ubyte{suffix}", images, compress=compress)
        write_idx(root / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress=compress)
        parts[prefix] = (images, labels)
    return parts


@pytest.mark.parametrize("compress", [False, True])
def test_fashion_mnist_reads_generated_files(tmp_path, compress):
    parts = write_fashion(tmp_path / "fm", compress=compress)
    d = fashion_mnist(tmp_path / "fm")
    images, labels = parts["train"]
    assert d.image_shape == (4, 3) and d.x_train.shape == (6, 12) and d.x_test.shape == (3, 12)
    np.testing.assert_allclose(d.x_train.numpy(), images.reshape(6, 12) / 255.0, atol=1e-7)
    assert d.y_train.tolist() == labels.tolist()
    assert d.y_test.tolist() == parts["t10k"][1].tolist()
    assert d.classes[9] == "Ankle boot" and d.name == "fashion-mnist"
    assert set(fashion_mnist(tmp_path / "fm", binarize="static").x_test.unique().tolist()) <= {
        0.0,
        1.0,
    }


def test_fashion_mnist_missing_and_inconsistent_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist(tmp_path)
    write_fashion(tmp_path / "fm")
    write_idx(tmp_path / "fm" / "t10k-labels-idx1-ubyte.gz", np.zeros(2, np.uint8), compress=True)
    with pytest.raises(ValueError, match=r"t10k images must have shape \(N, H, W\) and labels"):
        fashion_mnist(tmp_path / "fm")


@pytest.mark.slow
@pytest.mark.skipif(not FASHION_MNIST_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_debian_files():
    d = fashion_mnist()
    assert d.x_train.shape == (60000, 784) and d.x_test.shape == (10000, 784)
    assert d.y_train[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]  # the published order


# ----------------------------------------------------------------------------- arrays


def test_load_array_formats(tmp_path):
    x = np.arange(6.0).reshape(3, 2)
    np.save(tmp_path / "a.npy", x)
    np.testing.assert_array_equal(load_array(tmp_path / "a.npy"), x)
    np.savez(tmp_path / "one.npz", data=x)
    np.testing.assert_array_equal(load_array(tmp_path / "one.npz"), x)
    np.savez(tmp_path / "xy.npz", x=x, y=np.arange(3))
    np.testing.assert_array_equal(load_array(tmp_path / "xy.npz"), x)
    assert load_array(tmp_path / "xy.npz", key="y").tolist() == [0, 1, 2]
    (tmp_path / "h.csv").write_text("p0,p1\n0,1\n0.5,0.25\n")
    assert load_array(tmp_path / "h.csv").tolist() == [[0.0, 1.0], [0.5, 0.25]]
    (tmp_path / "n.csv").write_text("1,2,3\n")
    assert load_array(tmp_path / "n.csv").shape == (1, 3)


def test_load_array_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_array(tmp_path / "nope.npy")
    (tmp_path / "x.json").write_text("[]")
    with pytest.raises(ValueError, match=r"must end in .npy, .npz or .csv, got 'x.json'"):
        load_array(tmp_path / "x.json")
    np.savez(tmp_path / "ab.npz", a=np.zeros(2), b=np.ones(2))
    with pytest.raises(
        ValueError, match=r"`key` must name an array in ab.npz, one of \['a', 'b'\]"
    ):
        load_array(tmp_path / "ab.npz")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="cannot read .*obj.npy as a numeric array"):
        load_array(tmp_path / "obj.npy")
    (tmp_path / "bad.csv").write_text("a,b\n1,zz\n")
    with pytest.raises(ValueError, match="cannot read .*bad.csv"):
        load_array(tmp_path / "bad.csv")


def test_load_dataset_from_files(tmp_path):
    images = np.random.default_rng(1).integers(0, 256, size=(20, 5, 4), dtype=np.uint8)
    np.savez(tmp_path / "imgs.npz", x=images, y=np.arange(20) % 3)
    d = load_dataset(tmp_path / "imgs.npz")
    assert d.image_shape == (5, 4) and d.x_train.shape == (18, 20) and d.x_test.shape == (2, 20)
    assert float(d.x_train.max()) <= 1.0  # uint8 divided by 255
    all_x = torch.cat([d.x_train, d.x_test])
    all_y = torch.cat([d.y_train, d.y_test])
    order = torch.argsort(all_x[:, 0] * 1e6 + all_x[:, 1] * 1e3 + all_x[:, 2])
    ref = torch.from_numpy(images.reshape(20, -1) / 255.0).float()
    ref_order = torch.argsort(ref[:, 0] * 1e6 + ref[:, 1] * 1e3 + ref[:, 2])
    assert torch.allclose(all_x[order], ref[ref_order])  # the split loses and repeats nothing
    assert sorted(all_y.tolist()) == sorted((np.arange(20) % 3).tolist())
    np.save(tmp_path / "flat.npy", np.full((10, 9), 0.5))
    flat = load_dataset(tmp_path / "flat.npy", test_fraction=0.3, binarize="static")
    assert flat.image_shape == (3, 3) and len(flat.x_test) == 3 and flat.y_train is None
    np.save(tmp_path / "vec.npy", np.zeros(7))
    with pytest.raises(ValueError, match=r"must have shape \(N, D\) or \(N, H, W\).*got \(7,\)"):
        load_dataset(tmp_path / "vec.npy")
    np.save(tmp_path / "big.npy", np.full((4, 2), 3.0))
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        load_dataset(tmp_path / "big.npy", binarize="static")
    with pytest.raises(
        ValueError, match=r"`test_fraction` must be a number strictly between 0 and 1, got 1.5"
    ):
        load_dataset(tmp_path / "flat.npy", test_fraction=1.5)
    assert load_dataset("digits").x_train.shape == (1500, 64)


# ----------------------------------------------------------------------------- likelihoods


def test_check_support_per_likelihood():
    binary, grey, wide = torch.tensor([0.0, 1.0]), torch.tensor([0.0, 0.3]), torch.tensor([-2.0])
    check_support(binary, "bernoulli")
    check_support(grey, "continuous_bernoulli")
    check_support(wide, "gaussian")
    with pytest.raises(ValueError, match="got 1 value\\(s\\) that are not.*continuous_bernoulli"):
        check_support(grey, "bernoulli")
    with pytest.raises(ValueError, match=r"`x` must lie in \[0, 1\]"):
        check_support(wide, "continuous_bernoulli", name="x")
    with pytest.raises(ValueError, match="must be finite"):
        check_support(torch.tensor([float("inf")]), "gaussian")
    with pytest.raises(ValueError, match="`likelihood` must be"):
        check_support(binary, "poisson")
