"""Random state of a training run: fork it, capture it in a checkpoint, restore it.

A run's randomness lives in four generators: torch's (CPU, and CUDA where used), Python's
:mod:`random`, NumPy's, and the shuffling generator of the batches. :func:`rng_state` and
:func:`set_rng_state` capture and restore all four, so a resumed run draws exactly the
numbers the uninterrupted one drew; :func:`forked_rng` runs a block (the step object's
parameter discovery, evaluation passes) without moving any of them.

Examples
--------
>>> state = rng_state()
>>> a = torch.rand(2)
>>> set_rng_state(state)
>>> bool(torch.equal(a, torch.rand(2)))
True
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

__all__ = ["forked_rng", "rng_state", "set_rng_state"]


def _cuda_states() -> list[torch.Tensor] | None:
    return torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None


@contextmanager
def forked_rng() -> Iterator[None]:
    """Run the block, then put torch (CPU and CUDA), :mod:`random` and NumPy back as they were.

    Examples
    --------
    >>> state = torch.get_rng_state()
    >>> with forked_rng():
    ...     _ = torch.randn(5)
    >>> bool(torch.equal(state, torch.get_rng_state()))
    True
    """
    cpu, cuda = torch.get_rng_state(), _cuda_states()
    py, np_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        random.setstate(py)
        np.random.set_state(np_state)


def rng_state(batches: Any = None) -> dict[str, Any]:
    """Every generator's state, in a form :func:`pvae.training.checkpoint.write_state` stores.

    Parameters
    ----------
    batches : optional
        Batches with a ``generator`` attribute (:class:`~pvae.data.TensorBatches`, a
        ``DataLoader`` built with one): its state is captured too.

    Examples
    --------
    >>> sorted(rng_state())
    ['batches', 'cuda', 'numpy', 'python', 'torch']
    """
    generator = getattr(batches, "generator", None)
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": _cuda_states(),
        "python": random.getstate(),
        "numpy": [np_state[0], np_state[1].astype(np.int64), *np_state[2:]],
        "batches": generator.get_state() if isinstance(generator, torch.Generator) else None,
    }


def set_rng_state(state: dict[str, Any], batches: Any = None) -> None:
    """Restore what :func:`rng_state` captured (also after a round trip through a checkpoint).

    Examples
    --------
    >>> state = rng_state()
    >>> a = np.random.rand()
    >>> set_rng_state(state)
    >>> a == np.random.rand()
    True
    """
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, *rest = state["numpy"]
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else np.asarray(keys)
    np.random.set_state((kind, keys.astype(np.uint32), *rest))
    generator = getattr(batches, "generator", None)
    if state.get("batches") is not None and isinstance(generator, torch.Generator):
        generator.set_state(state["batches"])
