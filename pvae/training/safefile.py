r"""The bytes of a checkpoint: a safetensors file read defensively, and its content hash.

A pvae checkpoint is a `safetensors <https://huggingface.co/docs/safetensors>`_ file: an
8-byte little-endian header length :math:`n`, :math:`n` bytes of JSON (each tensor's dtype,
shape and byte range, and a ``__metadata__`` table of strings), then the tensor bytes.
:func:`read_file` reads such a file only after checking, from the header alone, that

- the path is a **regular file** (a directory, a FIFO, a device such as ``/dev/zero`` or
  a symlink to one is refused before any byte is read, so nothing hangs or fills memory);
- the header is at most :data:`MAX_HEADER_BYTES` and parses as the layout above: known
  dtypes, non-negative shapes whose byte size matches the byte range, ranges that tile the
  data section without holes or overlaps;
- the file is exactly as long as the header says (so a truncated or padded file is
  refused, and the size limit of the read is derived from the header).

:func:`content_digest` is the SHA-256 of everything a load uses: the ``"pvae"`` metadata
string and, in name order, each tensor's name, dtype, shape and bytes. pvae writes it under
the metadata key ``"pvae_sha256"`` and checks it on every load, so a flipped bit anywhere
in the header or the tensor data is refused instead of loading as other numbers.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
from pathlib import Path
from typing import Any, NamedTuple

import torch

__all__ = [
    "DTYPES",
    "MAX_HEADER_BYTES",
    "FileFormatError",
    "RawFile",
    "build_tensor",
    "content_digest",
    "read_file",
    "tensor_record",
]

#: Largest header pvae reads (100 MiB: the JSON of a checkpoint is far smaller).
MAX_HEADER_BYTES = 100 * 2**20

#: safetensors dtype codes and the torch dtypes they hold.
DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
_CODES = {dtype: code for code, dtype in DTYPES.items()}


class RawFile(NamedTuple):
    """A checkpoint file checked by :func:`read_file`, before its tensors are built."""

    #: The file read.
    path: Path
    #: The ``__metadata__`` table (strings).
    metadata: dict[str, str]
    #: Each tensor's ``(dtype code, shape, bytes)``, by name.
    tensors: dict[str, tuple[str, list[int], bytes]]


class FileFormatError(ValueError):
    """The bytes are not a well-formed safetensors file (internal: names what is wrong)."""


def _open_regular(path: Path) -> tuple[int, int]:
    """Open ``path`` for reading if it is a regular file; ``(fd, size)``."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        info = os.stat(path)  # follows symlinks: a link to /dev/zero is a device
    except FileNotFoundError:
        raise FileNotFoundError(
            f"`path` {str(path)!r} does not exist (no such file or directory). "
            "Pass the path of a .safetensors file."
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(_not_regular(path, info.st_mode))
    fd = os.open(path, flags)  # non-blocking: a FIFO swapped in after stat cannot hang
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise ValueError(_not_regular(path, info.st_mode))
    return fd, info.st_size


def _not_regular(path: Path, mode: int) -> str:
    kinds = [
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    what = next((name for test, name in kinds if test(mode)), "not a regular file")
    return (
        f"`path` {str(path)!r} is {what}; pvae reads checkpoints from regular files only. "
        "Pass the path of a .safetensors file."
    )


def _read_exactly(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left > 0:
        chunk = os.read(fd, min(left, 2**24))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_file(path: Path) -> RawFile:
    """Read and check a safetensors file (see the module docstring); no tensor is built.

    Raises
    ------
    ValueError
        If ``path`` is not a regular file, or its bytes are not a complete safetensors
        file (:class:`FileFormatError`, a subclass, for the latter).
    OSError
        If the file cannot be opened (``FileNotFoundError``, ``PermissionError``, ...).
    """
    fd, size = _open_regular(path)
    try:
        if size < 8:
            raise FileFormatError(f"the file has {size} bytes, fewer than a header needs")
        n = int.from_bytes(_read_exactly(fd, 8), "little")
        if not 2 <= n <= min(MAX_HEADER_BYTES, size - 8):
            raise FileFormatError(
                f"the header length {n} does not fit the file's {size} bytes "
                f"(limit {MAX_HEADER_BYTES})"
            )
        header = _parse_header(_read_exactly(fd, n))
        layout, end = _layout(header)
        if 8 + n + end != size:
            raise FileFormatError(
                f"the header describes {8 + n + end} bytes but the file has {size}"
            )
        data = _read_exactly(fd, end)
        if len(data) != end:
            raise FileFormatError("the file shrank while it was read")
    finally:
        os.close(fd)
    tensors = {
        name: (code, shape, data[begin:stop])
        for name, (code, shape, begin, stop) in layout.items()
    }
    return RawFile(path, header.get("__metadata__") or {}, tensors)


def _parse_header(text: bytes) -> dict[str, Any]:
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise FileFormatError("the header is not JSON") from None
    if not isinstance(header, dict):
        raise FileFormatError("the header is not a JSON object")
    meta = header.get("__metadata__")
    if meta is not None and not (
        isinstance(meta, dict) and all(isinstance(v, str) for v in meta.values())
    ):
        raise FileFormatError("the header's __metadata__ is not a table of strings")
    return header


def _layout(header: dict[str, Any]) -> tuple[dict[str, tuple[str, list[int], int, int]], int]:
    """Each tensor's ``(code, shape, begin, end)``; the data section's length."""
    layout = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            raise FileFormatError(f"the header entry of tensor {name!r} is malformed")
        code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if code not in DTYPES:
            raise FileFormatError(f"tensor {name!r} has unknown dtype {code!r}")
        if not (isinstance(shape, list) and all(_index(s) for s in shape)):
            raise FileFormatError(f"tensor {name!r} has a malformed shape {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_index, offsets))):
            raise FileFormatError(f"tensor {name!r} has malformed data_offsets {offsets!r}")
        begin, end = offsets
        itemsize = torch.empty((), dtype=DTYPES[code]).element_size()
        if end - begin != math.prod(shape) * itemsize:
            raise FileFormatError(
                f"tensor {name!r} of dtype {code} and shape {shape} needs "
                f"{math.prod(shape) * itemsize} bytes, its range has {end - begin}"
            )
        layout[name] = (code, shape, begin, end)
    position = 0
    for name, (_, _, begin, end) in sorted(layout.items(), key=lambda kv: kv[1][2:]):
        if begin != position:
            raise FileFormatError(f"tensor {name!r}'s bytes do not follow the previous tensor's")
        position = end
    return layout, position


def _index(value: Any) -> bool:
    return type(value) is int and 0 <= value < 2**62


def content_digest(meta_json: str, tensors: dict[str, tuple[str, list[int], bytes]]) -> str:
    """SHA-256 (hex) of the ``"pvae"`` metadata string and every tensor, in name order.

    Examples
    --------
    >>> t = tensor_record(torch.ones(2))
    >>> content_digest("{}", {"t0": t}) == content_digest("{}", {"t0": t})
    True
    >>> content_digest("{}", {"t0": t}) == content_digest("{} ", {"t0": t})
    False
    """
    h = hashlib.sha256(b"pvae-checkpoint\0")
    h.update(meta_json.encode("utf-8") + b"\0")
    for name in sorted(tensors):
        code, shape, data = tensors[name]
        h.update(json.dumps([name, code, list(shape), len(data)]).encode("utf-8") + b"\0")
        h.update(data)
    return h.hexdigest()


def tensor_record(tensor: torch.Tensor) -> tuple[str, list[int], bytes]:
    """A CPU tensor's ``(dtype code, shape, little-endian bytes)``, as stored in the file."""
    if tensor.dtype not in _CODES:
        raise ValueError(
            f"cannot store a tensor of dtype {tensor.dtype} in a checkpoint; pvae stores "
            f"{sorted(str(d) for d in _CODES)}."
        )
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    data = flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""
    return _CODES[tensor.dtype], list(tensor.shape), data


def build_tensor(record: tuple[str, list[int], bytes]) -> torch.Tensor:
    """The tensor a :func:`tensor_record` describes (a fresh, writable CPU tensor)."""
    code, shape, data = record
    if not data:
        return torch.empty(shape, dtype=DTYPES[code])
    return torch.frombuffer(bytearray(data), dtype=DTYPES[code]).reshape(shape)
