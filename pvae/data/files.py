r"""Reading data files without pickle: IDX files (the MNIST format) and numeric arrays.

:func:`read_idx` reads the IDX format of MNIST and Fashion-MNIST, raw or gzip-compressed;
:func:`load_array` reads ``.npy``, ``.npz`` and ``.csv`` files and refuses pickled
(object) arrays, which could run code when loaded.
"""

from __future__ import annotations

import gzip
import math
import struct
import tokenize
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np

from pvae._checks import path_arg

__all__ = ["load_array", "read_idx"]

_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), raw or gzip-compressed.

    The format: two zero bytes, a type code (``0x08`` unsigned byte, ``0x09`` signed
    byte, ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E`` float64), the number of
    dimensions, each dimension as a big-endian uint32, then the values, big-endian,
    row-major.

    Parameters
    ----------
    path : str or Path
        The file; gzip is detected from its first two bytes, not its name.

    Returns
    -------
    numpy.ndarray
        In native byte order, with the file's shape.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it is not an IDX file or is truncated.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "a-idx1-ubyte"
    >>> _ = p.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]))
    >>> read_idx(p).tolist()
    [7, 8, 9]
    """
    path = path_arg("path", path)
    if not path.is_file():
        raise FileNotFoundError(f"no such IDX file: {path}")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
            raise ValueError(f"{path} is not a readable gzip file ({err}).") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(
            f"{path} is not an IDX file: expected a header 00 00 <type> <ndim>, got "
            f"{raw[:4].hex(' ')}."
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path} is truncated: its header promises {ndim} dimensions.")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    count = math.prod(shape)
    if len(raw) - header != count * dtype.itemsize:
        raise ValueError(
            f"{path} is truncated or padded: shape {shape} needs {count * dtype.itemsize} "
            f"bytes of data, the file has {len(raw) - header}."
        )
    array = np.frombuffer(raw, dtype=dtype, count=count, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def load_array(path: str | Path, *, key: str | None = None) -> np.ndarray:
    """Load a numeric array from a ``.npy``, ``.npz`` or ``.csv`` file, without pickle.

    Parameters
    ----------
    path : str or Path
        The file. A ``.csv`` may start with one header line; values are comma-separated.
    key : str, optional
        For ``.npz``: which array. Default: the only one, else the one named ``"x"``.

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        For other suffixes, object (pickled) arrays, an ambiguous or missing ``key``, or
        non-numeric CSV cells.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "x.csv"
    >>> _ = p.write_text("a,b\\n0,1\\n1,0\\n")
    >>> load_array(p).tolist()
    [[0.0, 1.0], [1.0, 0.0]]
    """
    path = path_arg("path", path)
    if key is not None and not isinstance(key, str):
        raise TypeError(f"`key` must be None or a str, got {key!r} ({type(key).__name__}).")
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz", ".csv", ".txt"):
        raise ValueError(f"`path` must end in .npy, .npz or .csv, got {path.name!r}.")
    try:
        array = _read(path, suffix, key)
    except _KeyError:
        raise
    except _READ_ERRORS as err:
        raise ValueError(f"cannot read {path} as a numeric array: {err}") from None
    if not isinstance(array, np.ndarray):  # e.g. a zip archive named .npy
        raise ValueError(
            f"cannot read {path} as a numeric array: it holds a {type(array).__name__}, not "
            f"one array. Is it an .npz archive named {suffix}?"
        )
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(
            f"{path} must hold a numeric array, got dtype {array.dtype}. Save numbers only."
        )
    if np.iscomplexobj(array):
        raise ValueError(f"{path} must hold real numbers, got a complex array ({array.dtype}).")
    return array


#: what NumPy's readers raise on a corrupt file: zip, zlib, the refused pickle, text parsing,
#: the .npy header (parsed as a Python literal), a header asking for an absurd shape
_READ_ERRORS = (ValueError, TypeError, OSError, EOFError, zipfile.BadZipFile, zlib.error,
                KeyError, IndexError, struct.error, SyntaxError, tokenize.TokenError,
                OverflowError, MemoryError, Warning)  # fmt: skip


def _read(path: Path, suffix: str, key: str | None):
    if suffix == ".npy":
        with path.open("rb") as f:  # np.load of a path would open an .npz archive too
            if f.read(6) != b"\x93NUMPY":
                raise ValueError("not an .npy file (its first bytes are not \\x93NUMPY)")
            f.seek(0)
            return np.load(f, allow_pickle=False)
    if suffix == ".npz":
        with path.open("rb") as f:  # our handle: closed even when NumPy fails half-way
            if f.read(4) != b"PK\x03\x04":
                raise ValueError("not an .npz (zip) archive")
            f.seek(0)
            with np.load(f, allow_pickle=False) as archive:
                names = list(archive.keys())
                if key is None:
                    key = names[0] if len(names) == 1 else "x" if "x" in names else None
                if key not in names:
                    raise _KeyError(
                        f"`key` must name an array in {path.name}, one of {names}, got {key!r}."
                    )
                return archive[key]
    with path.open() as f:
        lines = [line for line in f if line.strip()]
    if not lines:
        raise ValueError("the file holds no numbers")
    try:
        [float(v) for v in lines[0].split(",")]
        skip = 0
    except ValueError:
        skip = 1  # a header line
    if len(lines) <= skip:
        raise ValueError("the file holds a header line and no numbers")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "input contained no data" is an error here
        return np.loadtxt(lines[skip:], delimiter=",", ndmin=2, dtype=np.float64)


class _KeyError(ValueError):
    """A missing ``key``: raised as it is, not as an unreadable file."""
