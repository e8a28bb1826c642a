"""Shared pytest set-up for tests/, the doctests in pvae/ and the tutorials in docs/.

Like Pyro's ``tests/conftest.py``: every test and every doctest starts from a cleared
param store, seed 0, Pyro validation on, float32 as the default dtype, and one torch thread
(tiny tensors run fastest on one thread; two threads on two busy cores thrash).
"""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pyro  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _fresh_pyro_state():
    """Clear the param store, seed every generator, validate distributions."""
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    pyro.enable_validation(True)
    torch.set_default_dtype(torch.float32)
    yield
    pyro.clear_param_store()
    torch.set_default_dtype(torch.float32)
