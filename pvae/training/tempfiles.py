r"""Temporary files of atomic checkpoint writes: their names, and cleaning up after a kill.

:func:`~pvae.training.checkpoint.write_state` writes ``<dir>/.<name>.<random>.tmp`` and
renames it over ``<dir>/<name>``. A process killed between the two leaves the temporary
file behind; the next write of the same target removes such leftovers
(:func:`remove_stale`). Only files in the target's own folder whose names match this
exact pattern for this target are touched.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["remove_stale", "temp_prefix"]

_RANDOM = re.compile(r"[A-Za-z0-9_]{8}")  # the random part tempfile.mkstemp uses


def temp_prefix(path: Path) -> str:
    """The prefix of the temporary files of writes of ``path``.

    Examples
    --------
    >>> temp_prefix(Path("runs/last.safetensors"))
    '.last.safetensors.'
    """
    return f".{path.name}."


def remove_stale(path: Path) -> list[Path]:
    """Remove leftover temporary files of earlier writes of ``path``; returns them.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name in (".c.safetensors.abcd1234.tmp", ".c.safetensors.notours.tmp", "x.tmp"):
    ...     _ = (folder / name).write_bytes(b"")
    >>> [p.name for p in remove_stale(folder / "c.safetensors")]
    ['.c.safetensors.abcd1234.tmp']
    >>> sorted(p.name for p in folder.iterdir())
    ['.c.safetensors.notours.tmp', 'x.tmp']
    """
    prefix, removed = temp_prefix(path), []
    try:
        names = os.listdir(path.parent)
    except FileNotFoundError:
        return removed
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        if not _RANDOM.fullmatch(name[len(prefix) : -len(".tmp")]):
            continue
        stale = path.parent / name
        if stale.is_file() and not stale.is_symlink():
            try:
                stale.unlink()
            except FileNotFoundError:  # another writer's cleanup got there first
                continue
            removed.append(stale)
    return removed
