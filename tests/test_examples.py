"""Smoke-run every script in ``examples/`` (after Pyro's ``tests/test_examples.py``).

Each example is run in a fresh interpreter with ``--smoke --out <tmp>``, from the repository
root, with the Agg backend: the second tier (``@pytest.mark.slow``, ``make test-slow``, run by
CI). The coverage test runs in the fast tier and fails when a script in ``examples/`` is missing
from :data:`EXAMPLES`, so a new example cannot escape CI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "examples"

# Every example in examples/; each is run with ``--smoke --out <tmp>``.
EXAMPLES = [
    "bayes_table.py",
    "enumeration_bayes_net.py",
    "kl_and_elbo_identity.py",
    "vi_vs_exact_discrete.py",
    "autoencoder_digits.py",
    "vae_digits.py",
    "custom_model_ppca.py",
    "conditional_vae.py",
    "arviz_diagnostics.py",
    "semi_supervised_digits.py",
    "mixture_vae_digits.py",
]


def test_coverage() -> None:
    """Every script in examples/ is listed above, and every listed script exists."""
    found = {p.name for p in EXAMPLES_DIR.glob("*.py")}
    missing = sorted(found - set(EXAMPLES))
    stale = sorted(set(EXAMPLES) - found)
    assert not missing, (
        f"examples not covered by tests/test_examples.py: {missing}. "
        "Add them to EXAMPLES so CI smoke-runs them."
    )
    assert not stale, f"EXAMPLES lists scripts that do not exist in examples/: {stale}."


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES)
def test_example_smoke(example: str, tmp_path: Path) -> None:
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    # Tiny networks gain nothing from threads, and oversubscribed cores slow them down a lot.
    env.setdefault("OMP_NUM_THREADS", "1")
    cmd = [sys.executable, str(EXAMPLES_DIR / example), "--smoke", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (
        f"`{' '.join(cmd[1:])}` failed with exit code {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout[-3000:]}\n--- stderr ---\n{proc.stderr[-3000:]}"
    )
    # Warnings are errors in the test suite; an example should not emit any either.
    assert "Warning" not in proc.stderr, f"{example} emitted warnings:\n{proc.stderr[-3000:]}"
