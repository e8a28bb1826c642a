"""Test set-up shared by every test, after Pyro's own ``tests/conftest.py``."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pyro  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

# Tiny tensors run fastest on one thread; two threads on two busy cores thrash.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _fresh_pyro_state():
    """Clear the param store, seed every generator and validate distributions."""
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    pyro.enable_validation(True)
    torch.set_default_dtype(torch.float32)
    yield
    pyro.clear_param_store()
