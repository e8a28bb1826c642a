"""The one seed convention: ``seed=`` seeds inside a call and leaves the caller's RNG alone.

Every public function and constructor that takes ``seed=`` runs its random work inside
:func:`seeded`: torch (CPU and CUDA), Python's :mod:`random` and NumPy are seeded as
:func:`pyro.set_rng_seed` seeds them, and their previous states are restored on the way
out. The same seed gives the same numbers, and code after the call draws the numbers it
would have drawn without it. ``seed=None`` leaves the generators alone (and advances them).

Examples
--------
>>> import torch
>>> before = torch.get_rng_state()
>>> with seeded(0):
...     a = torch.rand(2)
>>> with seeded(0):
...     b = torch.rand(2)
>>> bool((a == b).all()), bool((torch.get_rng_state() == before).all())
(True, True)
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pyro
import torch

from pvae._checks import seed as check_seed

__all__ = ["seeded"]


@contextmanager
def seeded(seed: int | None, *, name: str = "seed") -> Iterator[None]:
    """Seed torch, CUDA, :mod:`random` and NumPy inside the block; restore them after."""
    seed = check_seed(name, seed)
    if seed is None:
        yield
        return
    cpu, py, np_state = torch.get_rng_state(), random.getstate(), np.random.get_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    pyro.set_rng_seed(seed)
    try:
        yield
    finally:
        torch.set_rng_state(cpu)
        random.setstate(py)
        np.random.set_state(np_state)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
