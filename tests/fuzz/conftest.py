"""The two tiers of the fuzz suite and the optional outcome tally (see ``contract.py``)."""

import json
import os

import pytest

from .contract import TALLY


@pytest.fixture(params=["fast", pytest.param("slow", marks=pytest.mark.slow)])
def tier(request):
    """``"fast"`` (``make test``: a few hundred cases) or ``"slow"`` (>= 1,000 cases)."""
    return request.param


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("PVAE_FUZZ_TALLY")
    if path and TALLY:
        counts = {entry: dict(sorted(c.items())) for entry, c in sorted(TALLY.items())}
        with open(path, "w") as f:
            json.dump(counts, f, indent=1)
