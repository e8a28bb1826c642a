r"""Where this process sits in a ``torchrun`` job, and how a failed collective is reported.

:func:`init_distributed` joins the process group that ``torchrun`` describes in the
environment (or returns a single-process :class:`DistributedContext` without it);
:func:`collective` wraps every collective operation so that a peer that exits, crashes or
stops answering becomes one :class:`DistributedError` naming this rank and the operation,
instead of a hang or a backend traceback.
"""

from __future__ import annotations

import atexit
import collections
import datetime
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "DEFAULT_TIMEOUT",
    "DistributedContext",
    "DistributedError",
    "active_context",
    "collective",
    "collective_device",
    "current_context",
    "init_distributed",
]

#: Seconds a collective waits for a silent peer before failing (``PVAE_DIST_TIMEOUT``
#: overrides it). A peer that *exits* is noticed at once: its socket closes.
DEFAULT_TIMEOUT = 120.0

_TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class DistributedError(RuntimeError):
    """A collective failed: another rank exited, crashed or stopped answering."""


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in the process group.

    Attributes
    ----------
    rank : int
        Global index of this process, ``0 <= rank < world_size``.
    world_size : int
        Number of processes training together (1: not distributed).
    local_rank : int
        Index of this process on its machine (picks the GPU).
    device : torch.device
        Device this rank trains on.
    backend : str or None
        ``"gloo"`` or ``"nccl"``; ``None`` when not distributed.

    Examples
    --------
    >>> ctx = DistributedContext()
    >>> ctx.is_main, ctx.is_distributed, ctx.world_size
    (True, False, 1)
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that prints and writes files."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        """More than one process trains together."""
        return self.world_size > 1


def _env_int(name: str, default: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None:
        if default is None:
            raise ValueError(
                f"`{name}` must be set in the environment when WORLD_SIZE > 1, got nothing. "
                "Launch with `torchrun --nproc_per_node=N ...`, which sets it."
            )
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(
            f"`{name}` in the environment must be an integer, got {value!r}."
        ) from None


def _resolve_device(device: Any, local_rank: int) -> torch.device:
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


def current_context(device: Any = None) -> DistributedContext:
    """The context of the process group this process already joined, else single-process.

    Parameters
    ----------
    device : str or torch.device, optional
        Device to record; default ``cuda:LOCAL_RANK`` under NCCL, else CPU.

    Returns
    -------
    DistributedContext

    Examples
    --------
    >>> current_context().world_size
    1
    """
    if not (dist.is_available() and dist.is_initialized()):
        return DistributedContext(device=torch.device(device if device is not None else "cpu"))
    local_rank = _env_int("LOCAL_RANK", 0)
    backend = str(dist.get_backend())
    if device is None:
        device = "cuda" if backend == "nccl" else "cpu"
    return DistributedContext(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=local_rank,
        device=_resolve_device(device, local_rank),
        backend=backend,
    )


def init_distributed(
    device: Any = None, *, backend: str | None = None, timeout: float | None = None
) -> DistributedContext:
    """Join the process group that ``torchrun`` describes in the environment.

    Reads ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``.
    Without ``WORLD_SIZE`` (or with ``WORLD_SIZE=1``) nothing is initialised and a
    single-process context is returned. Calling it again returns the existing group.

    Parameters
    ----------
    device : str or torch.device, optional
        ``None`` picks ``cuda:LOCAL_RANK`` when CUDA is available, else CPU; ``"cuda"``
        becomes ``cuda:LOCAL_RANK``.
    backend : str, optional
        ``"gloo"`` (CPU) or ``"nccl"`` (CUDA); default chosen from the device.
    timeout : float, optional
        Seconds a collective waits for a silent peer before raising; default
        ``PVAE_DIST_TIMEOUT`` from the environment, else :data:`DEFAULT_TIMEOUT`.

    Returns
    -------
    DistributedContext

    Raises
    ------
    ValueError
        If the environment is incomplete or ``timeout`` is not positive.
    DistributedError
        If the process group cannot be formed within ``timeout``.

    Examples
    --------
    Outside ``torchrun`` this is a no-op:

    >>> ctx = init_distributed(device="cpu")
    >>> ctx.rank, ctx.world_size, ctx.backend
    (0, 1, None)
    """
    world_size = _env_int("WORLD_SIZE", 1)
    if world_size < 1:
        raise ValueError(f"`WORLD_SIZE` in the environment must be >= 1, got {world_size}.")
    if world_size == 1 or dist.is_initialized():
        return current_context(device)
    if timeout is None:
        timeout = float(os.environ.get("PVAE_DIST_TIMEOUT", DEFAULT_TIMEOUT))
    if not timeout > 0:
        raise ValueError(f"`timeout` must be a positive number of seconds, got {timeout!r}.")
    for name in _TORCHRUN_VARIABLES:
        if name not in os.environ:
            raise ValueError(
                f"`{name}` must be set in the environment when WORLD_SIZE={world_size}, "
                "got nothing. Launch with `torchrun --nproc_per_node=N ...`, which sets it."
            )
    rank, local_rank = _env_int("RANK"), _env_int("LOCAL_RANK")
    device = _resolve_device(device, local_rank)
    if backend is None:
        backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    with collective("joining the process group"):
        dist.init_process_group(
            backend,
            rank=rank,
            world_size=world_size,
            timeout=datetime.timedelta(seconds=timeout),
            device_id=device if device.type == "cuda" else None,
        )
    atexit.register(_destroy)
    return current_context(device)


def _release_buffers(seconds: float = 2.0) -> None:
    """Wait until gloo's worker threads have dropped the latest collectives' buffers."""
    deadline = time.monotonic() + seconds
    while any(b._use_count() > 1 for b in _recent_buffers) and time.monotonic() < deadline:
        time.sleep(0.001)  # lets a worker take the GIL, which it needs to free its work
    _recent_buffers.clear()


def _destroy() -> None:
    """At exit: leave the process group cleanly, before the interpreter shuts down."""
    if dist.is_initialized():
        if not _failed:  # after a failure the buffers may never be released: do not wait
            _release_buffers()
        dist.destroy_process_group()


# Buffers of the latest collectives. Gloo's worker thread drops its reference to a buffer
# after the caller has returned, and needs the GIL to do so; if the interpreter is shutting
# down by then, the process aborts ("terminate called without an active exception").
# `_destroy` waits for these references to go before leaving the process group.
_recent_buffers: collections.deque[torch.Tensor] = collections.deque(maxlen=4)
_failed = False  # a collective failed in this process


@contextmanager
def collective(what: str, buffer: torch.Tensor | None = None) -> Iterator[None]:
    """Turn a backend failure into one clear error naming the rank and the operation."""
    if buffer is not None:
        _recent_buffers.append(buffer)
    try:
        yield
    except (RuntimeError, dist.DistError) as error:  # gloo/NCCL raise RuntimeError subclasses
        global _failed
        _failed = True
        rank = dist.get_rank() if dist.is_initialized() else _env_int("RANK", 0)
        raise DistributedError(
            f"rank {rank} failed while {what}: another rank exited, crashed or stopped "
            "answering (or the rendezvous address is wrong). Look at the other ranks' output "
            "for the first error; torchrun names the rank that failed first. Backend said: "
            f"{str(error).splitlines()[0] if str(error) else type(error).__name__}"
        ) from error


def active_context(context: DistributedContext | None) -> DistributedContext | None:
    """The context when more than one rank trains, else ``None`` (cheap: no CUDA queries).

    Examples
    --------
    >>> active_context(None) is None, active_context(DistributedContext(world_size=2)).rank
    (True, 0)
    """
    if context is None:
        if not (dist.is_available() and dist.is_initialized()):
            return None
        context = current_context()
    return context if context.is_distributed else None


def collective_device(context: DistributedContext) -> torch.device:
    """Where a collective's buffer lives: the GPU under NCCL, else the CPU.

    Examples
    --------
    >>> collective_device(DistributedContext(backend="gloo"))
    device(type='cpu')
    """
    return context.device if context.backend == "nccl" else torch.device("cpu")
