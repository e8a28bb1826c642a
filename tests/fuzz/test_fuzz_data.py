"""Fuzz :mod:`pvae.data`: ``binarize``, ``as_batches``, ``as_tensor``, ``check_support``,
``read_idx``, ``load_array`` and ``load_dataset``, each against an independent reference
(NumPy's own readers, a hand-written IDX parser, the input itself)."""

from __future__ import annotations

import gzip
import io
import math
import numbers
import struct
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from hypothesis import strategies as st

from pvae import data

from .contract import call, fuzz
from .strategies import hostile_data, hostile_scalar, seeds, sizes, tensors, wrong_types

TMP = Path(tempfile.mkdtemp(prefix="pvae-fuzz-"))


def _reference_tensor(x):
    """What an input means as numbers (NumPy's reading), or None if it is not numeric."""
    if isinstance(x, torch.Tensor) and x.dtype == torch.bfloat16:
        x = x.float()
    if isinstance(x, list) and any(isinstance(item, torch.Tensor) for item in x):
        items = [_reference_tensor(item) for item in x]
        if any(item is None for item in items):
            return None
        x = items
    try:
        array = np.asarray(x.numpy() if isinstance(x, torch.Tensor) else x)
    except (ValueError, TypeError, RuntimeError):
        return None
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        return None
    return array


# -- binarize -------------------------------------------------------------------------------
def test_binarize(tier):
    def check(case):
        x, seed = case
        gen = torch.Generator().manual_seed(seed)
        out = call("data.binarize", data.binarize, x, generator=gen, names=["`x`"])
        ref = _reference_tensor(x)
        assert ref is not None and not np.iscomplexobj(ref)
        ref = ref.astype(np.float64)
        assert np.all((ref >= 0) & (ref <= 1)), "accepted probabilities outside [0, 1]"
        assert isinstance(out, torch.Tensor) and out.is_floating_point()
        assert tuple(out.shape) == ref.shape
        got = out.double().numpy()
        assert np.all((got == 0) | (got == 1))
        assert np.array_equal(got[ref == 0], ref[ref == 0])  # Bernoulli(0) is 0
        assert np.array_equal(got[ref == 1], ref[ref == 1])  # Bernoulli(1) is 1

    cases = st.tuples(st.one_of(tensors(unit=True), tensors(), hostile_data), st.integers(0, 9))
    fuzz(cases, check, tier, fast=150)


def test_binarize_rate_matches_the_probability():
    """Reference: the Bernoulli mean; 20,000 draws at p = 0.3 within 4 standard errors."""
    for dtype in (torch.float32, torch.float64):
        x = torch.full((20_000,), 0.3, dtype=dtype)
        out = data.binarize(x, generator=torch.Generator().manual_seed(0))
        assert out.dtype == torch.get_default_dtype()
        assert abs(out.double().mean().item() - 0.3) < 4 * math.sqrt(0.3 * 0.7 / 20_000)


# -- as_tensor, check_support ---------------------------------------------------------------
def test_as_tensor(tier):
    def check(x):
        out = call("data.as_tensor", data.as_tensor, x, name="data", names=["`data`"])
        ref = _reference_tensor(x)
        assert ref is not None and not np.iscomplexobj(ref)
        assert not np.isnan(ref.astype(np.float64)).any()
        assert tuple(out.shape) == ref.shape
        if np.issubdtype(ref.dtype, np.floating):  # floats become the default dtype
            assert out.dtype == torch.get_default_dtype()
            ref = ref.astype(np.float32)
            assert not (np.isinf(ref) & ~np.isinf(_reference_tensor(x))).any()
        assert np.array_equal(out.double().numpy(), ref.astype(np.float64))

    fuzz(hostile_data, check, tier, fast=150)


def test_check_support(tier):
    def check(case):
        x, likelihood = case
        call(
            "data.check_support", data.check_support, x, likelihood,
            names=["`data`", "`likelihood`"],
        )  # fmt: skip
        ref = _reference_tensor(x).astype(np.float64)
        if likelihood == "bernoulli":
            assert np.all((ref == 0) | (ref == 1))
        elif likelihood == "continuous_bernoulli":
            assert np.all((ref >= 0) & (ref <= 1))
        else:
            assert likelihood == "gaussian" and np.all(np.isfinite(ref))

    likelihoods = st.one_of(
        st.sampled_from(["bernoulli", "continuous_bernoulli", "gaussian"]), hostile_scalar
    )
    fuzz(st.tuples(st.one_of(tensors(unit=True), hostile_data), likelihoods), check, tier,
         fast=100)  # fmt: skip


# -- as_batches -----------------------------------------------------------------------------
def test_as_batches(tier):
    def check(case):
        x, batch_size, shuffle, seed = case
        batches = call(
            "data.as_batches", data.as_batches, x, batch_size=batch_size, shuffle=shuffle,
            seed=seed, names=["`data", "`batch_size`", "`shuffle`", "`seed`", "`tensors`"],
        )  # fmt: skip
        got = list(batches)
        assert got, "no batches"
        # accepted: None or a whole number (NumPy integers too, as `pvae._checks` reads them)
        whole = isinstance(batch_size, numbers.Integral) and not isinstance(batch_size, bool)
        assert (batch_size is None or whole) and isinstance(shuffle, bool)
        columns = [torch.cat(col).double().numpy() for col in zip(*got, strict=True)]

        def single(item):
            return isinstance(item, int | float | complex) or getattr(item, "ndim", 1) == 0

        def array(item):
            return isinstance(item, torch.Tensor | np.ndarray) and item.ndim > 0

        # components, such as (x, y): a tuple, or a list of arrays (as documented)
        if (isinstance(x, tuple) and not all(map(single, x))) or (
            isinstance(x, list) and x and all(map(array, x))
        ):
            refs = [_reference_tensor(item) for item in x]
        else:
            refs = [_reference_tensor(x)]
        assert len(columns) == len(refs)
        for col, ref in zip(columns, refs, strict=True):
            if np.issubdtype(ref.dtype, np.floating):  # as the default dtype holds it
                ref = ref.astype(np.float32)
            ref = ref.astype(np.float64)
            assert col.shape == ref.shape
            if shuffle:  # the same rows, in some order
                col = np.sort(col.reshape(len(col), -1), axis=0)
                ref = np.sort(ref.reshape(len(ref), -1), axis=0)
            assert np.array_equal(col, ref, equal_nan=False)
        size = batch_size or len(columns[0])
        assert all(len(b[0]) <= size for b in got)

    cases = st.tuples(
        st.one_of(tensors(), hostile_data),
        st.one_of(st.none(), sizes),
        st.one_of(st.booleans(), wrong_types),
        seeds,
    )
    fuzz(cases, check, tier, fast=150)


def test_as_batches_of_a_dataset(tier):
    ds = data.DynamicBinarized(torch.full((5, 2), 0.5))

    def check(case):
        batch_size, shuffle, seed = case
        batches = call(
            "data.as_batches", data.as_batches, ds, batch_size=batch_size, shuffle=shuffle,
            seed=seed, names=["`batch_size`", "`shuffle`", "`seed`"],
        )  # fmt: skip
        got = list(batches)
        assert sum(len(b[0]) for b in got) == 5

    fuzz(st.tuples(st.one_of(st.none(), sizes), st.one_of(st.booleans(), wrong_types), seeds),
         check, tier, fast=60)  # fmt: skip


# -- files ------------------------------------------------------------------------------------
_IDX_CODES = {np.dtype("u1"): 0x08, np.dtype("i1"): 0x09, np.dtype(">i2"): 0x0B,
              np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D, np.dtype(">f8"): 0x0E}  # fmt: skip


def _parse_idx(raw: bytes):
    """An independent IDX reader (element by element), or None if ``raw`` is not one."""
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib_error()):
            return None
    if len(raw) < 4 or raw[:2] != b"\0\0":
        return None
    kinds = {v: k for k, v in _IDX_CODES.items()}
    if raw[2] not in kinds:
        return None
    dtype, ndim = kinds[raw[2]], raw[3]
    if len(raw) < 4 + 4 * ndim:
        return None
    shape = [struct.unpack(">I", raw[4 + 4 * i : 8 + 4 * i])[0] for i in range(ndim)]
    count = math.prod(shape)
    if len(raw) - 4 - 4 * ndim != count * dtype.itemsize:
        return None
    fmt = {"u1": "B", "i1": "b", "i2": "h", "i4": "i", "f4": "f", "f8": "d"}[dtype.str[1:]]
    body = raw[4 + 4 * ndim :]
    values = struct.unpack(f">{count}{fmt}", body)
    return np.array(values, dtype=dtype.newbyteorder("=")).reshape(shape)


def zlib_error():
    import zlib

    return zlib.error


@st.composite
def idx_bytes(draw):
    dtype = draw(st.sampled_from(list(_IDX_CODES)))
    shape = tuple(draw(st.lists(st.integers(0, 3), min_size=0, max_size=3)))
    values = np.arange(math.prod(shape)).astype(dtype).reshape(shape)
    raw = bytes([0, 0, _IDX_CODES[dtype], len(shape)]) + struct.pack(f">{len(shape)}I", *shape)
    raw += values.astype(dtype).tobytes()
    if draw(st.booleans()):
        raw = gzip.compress(raw)
    return draw(corrupted(raw))


@st.composite
def corrupted(draw, raw: bytes):
    """``raw`` as it is, truncated, padded, with bytes flipped, or replaced by noise."""
    kind = draw(st.sampled_from(["keep", "truncate", "pad", "flip", "noise", "empty"]))
    if kind == "truncate" and raw:
        return raw[: draw(st.integers(0, len(raw) - 1))]
    if kind == "pad":
        return raw + draw(st.binary(min_size=1, max_size=8))
    if kind == "flip" and raw:
        data_ = bytearray(raw)
        for _ in range(draw(st.integers(1, 3))):
            i = draw(st.integers(0, len(data_) - 1))
            data_[i] ^= 1 << draw(st.integers(0, 7))
        return bytes(data_)
    if kind == "noise":
        return draw(st.binary(max_size=64))
    if kind == "empty":
        return b""
    return raw


def _write(raw: bytes, name: str) -> Path:
    folder = Path(tempfile.mkdtemp(dir=TMP))
    path = folder / name
    path.write_bytes(raw)
    return path


def test_read_idx(tier):
    def check(raw):
        path = _write(raw, "x-idx-ubyte")
        out = call("data.read_idx", data.read_idx, path, names=[str(path), "`path`"])
        ref = _parse_idx(raw)
        assert ref is not None, "read a file the reference parser refuses"
        assert out.shape == ref.shape and out.dtype == ref.dtype
        assert np.array_equal(out, ref, equal_nan=True)

    fuzz(idx_bytes(), check, tier, fast=150)


@st.composite
def array_file(draw):
    suffix = draw(st.sampled_from([".npy", ".npz", ".csv"]))
    kind = draw(st.sampled_from(["f8", "f4", "u1", "i8", "bool", "c16", "object", "str"]))
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=3)))
    values = np.arange(math.prod(shape)).reshape(shape) % 3
    if kind == "object":
        array = np.empty(shape, dtype=object)
    elif kind == "str":
        array = values.astype(str)
    else:
        array = values.astype(kind)
    buf = io.BytesIO()
    if suffix == ".npy":
        np.save(buf, array, allow_pickle=True)
    elif suffix == ".npz":
        keys = draw(st.sampled_from([["x"], ["a"], ["a", "b"], ["x", "y"]]))
        np.savez(buf, **{k: array for k in keys}, allow_pickle=True)
    else:
        header = "a,b\n" if draw(st.booleans()) else ""
        if array.size == 0:
            flat = []
        elif array.ndim < 2:
            flat = array.reshape(-1, 1)
        else:
            flat = array.reshape(array.shape[0], -1)
        body = "\n".join(",".join(str(v) for v in row) for row in flat)
        buf.write((header + body).encode())
    raw = draw(corrupted(buf.getvalue()))
    return raw, suffix, draw(st.one_of(st.none(), st.sampled_from(["x", "a", "y", "zz"])))


def _numpy_reference(path: Path, key):
    """NumPy's reading (no pickle), or None where NumPy fails or finds no numbers."""
    try:
        if path.suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                names = list(archive.keys())
                key = key or (names[0] if len(names) == 1 else "x")
                array = archive[key]
        else:
            return "csv"
    except Exception:  # noqa: BLE001 -- any failure of the reference means "no array here"
        return None
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        return None
    return array


def _parse_csv(raw: bytes):
    """Rows of comma-separated numbers (one optional header line), or None."""
    try:
        lines = [line for line in raw.decode().splitlines() if line.strip()]
    except UnicodeDecodeError:
        return None
    rows = []
    for i, line in enumerate(lines):
        try:
            rows.append([float(v) for v in line.split(",")])
        except ValueError:
            if i or len(lines) < 2:
                return None
    if not rows or len({len(r) for r in rows}) != 1:
        return None
    return np.array(rows, dtype=np.float64)


def test_load_array(tier):
    def check(case):
        raw, suffix, key = case
        path = _write(raw, "data" + suffix)
        out = call(
            "data.load_array", data.load_array, path, key=key,
            names=[str(path), path.name, "`path`", "`key`"],
        )  # fmt: skip
        assert isinstance(out, np.ndarray)
        assert np.issubdtype(out.dtype, np.number) or out.dtype == bool
        assert not np.iscomplexobj(out)
        ref = _numpy_reference(path, key)
        assert ref is not None, "read a file NumPy cannot read"
        if isinstance(ref, str):  # csv: the reference is Python's float() cell by cell
            ref = _parse_csv(raw)
            assert ref is not None, "read a CSV file that is not rectangular numbers"
        assert out.shape == ref.shape
        assert np.array_equal(out, ref, equal_nan=True)

    fuzz(array_file(), check, tier, fast=150)


def test_load_array_refuses_what_is_not_a_file():
    with zipfile.ZipFile(TMP / "bad.npz", "w") as z:
        z.writestr("x.npy", b"not an array")
    for path in (TMP / "bad.npz", TMP):
        try:
            data.load_array(path)
        except (ValueError, FileNotFoundError) as err:
            assert str(path.name) in str(err) or "`path`" in str(err)
        else:
            raise AssertionError(f"{path} was read")


@st.composite
def dataset_file(draw):
    n = draw(st.integers(0, 6))
    d = draw(st.sampled_from([(1,), (4,), (2, 2), (3,)]))
    kind = draw(st.sampled_from(["u1", "f4", "f8", "bool", "i8", "c16"]))
    values = draw(st.sampled_from(["unit", "odd", "nan", "inf", "big"]))
    array = (np.arange(n * math.prod(d)).reshape((n, *d)) % 4) / 3.0
    if values == "odd":
        array = array * 7 - 2
    elif values == "nan" and array.size:
        array.flat[0] = np.nan
    elif values == "inf" and array.size:
        array.flat[-1] = np.inf
    elif values == "big":
        array = array * 1e300
    if kind in ("u1", "i8", "bool"):
        array = np.nan_to_num(array * 3, nan=0, posinf=0).clip(0, 255)
    with np.errstate(all="ignore"):
        array = array.astype(kind)
    path = Path(tempfile.mkdtemp(dir=TMP)) / "set.npy"
    np.save(path, array)
    return path, array


def test_load_dataset(tier):
    def check(case):
        (path, array), binarize, test_fraction, seed = case
        names = ["`binarize`", "`test_fraction`", "`seed`", path.name, "`source`"]
        out = call(
            "data.load_dataset", data.load_dataset, path, binarize=binarize,
            test_fraction=test_fraction, seed=seed, names=names, allow=(FileNotFoundError,),
        )  # fmt: skip
        n = len(array)
        ref = array.reshape(n, -1).astype(np.float64) / (255.0 if array.dtype == np.uint8 else 1)
        assert np.isfinite(ref).all() and not np.iscomplexobj(array)
        assert len(out.x_train) >= 1 and len(out.x_test) >= 1, "an empty split"
        assert len(out.x_train) + len(out.x_test) == n
        assert out.x_train.shape[1] == ref.shape[1]
        got = torch.cat([out.x_train, out.x_test]).double().numpy()
        assert torch.isfinite(out.x_train).all() and torch.isfinite(out.x_test).all()
        if binarize is None:  # the same rows, in some order (float32 rounding)
            a = np.sort(got, axis=0)
            b = np.sort(ref.astype(np.float32).astype(np.float64), axis=0)
            assert np.array_equal(a, b)
        else:
            assert np.all((ref >= 0) & (ref <= 1))
            assert np.isin(out.x_test.numpy(), [0.0, 1.0]).all()

    cases = st.tuples(
        dataset_file(),
        st.one_of(st.sampled_from([None, "static", "dynamic"]), hostile_scalar),
        st.one_of(st.sampled_from([0.1, 0.5, 0.9, 0.99]), st.floats(-1, 2), hostile_scalar),
        st.one_of(st.integers(0, 3), seeds),
    )
    fuzz(cases, check, tier, fast=100)


def test_load_dataset_named_sources(tier):
    def check(case):
        source, binarize, seed = case
        out = call(
            "data.load_dataset", data.load_dataset, source, binarize=binarize, seed=seed,
            names=["`source`", "`binarize`", "`seed`", str(source)], allow=(FileNotFoundError,),
        )  # fmt: skip
        assert source == "digits"
        assert out.x_train.shape == (1500, 64) and out.x_test.shape == (297, 64)

    sources = st.one_of(st.sampled_from(["digits", "nope", "", "digits.npy"]), wrong_types)
    binarize = st.one_of(st.sampled_from([None, "static"]), hostile_scalar)
    fuzz(st.tuples(sources, binarize, seeds), check, tier, fast=20)
