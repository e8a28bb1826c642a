"""Fixtures for tests/.

The repository's root ``conftest.py`` runs before every test (and every doctest): it
clears Pyro's param store, seeds 0, enables Pyro validation and resets the default dtype.
"""

import pytest
import torch


@pytest.fixture
def float64():
    """Run a test in float64, as the exact (enumeration) tests need for 1e-9 tolerances."""
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)
