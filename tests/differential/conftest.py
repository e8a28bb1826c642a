"""Every differential test runs in float64: exact references are compared to 1e-9."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)
