"""Shared pytest set-up for tests/, the doctests in pvae/ and the tutorials in docs/.

Like Pyro's ``tests/conftest.py``: every test and every doctest starts from a cleared
param store, seed 0, Pyro validation on, float32 as the default dtype, and one torch thread
(tiny tensors run fastest on one thread; two threads on two busy cores thrash).
"""

import os
import signal

os.environ.setdefault("MPLBACKEND", "Agg")

# A shell without job control starts background jobs with Ctrl-C ignored (SIG_IGN), and
# Python then installs no KeyboardInterrupt handler. The interrupt tests and doctests need
# what an interactive session has: Python's own handler (children started by the tests get
# the default disposition back at exec).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

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
