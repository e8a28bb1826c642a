"""Benchmarks are scripts, not tests; their tiny settings run here so they cannot rot.

The runs start fresh interpreters: the second tier (``@pytest.mark.slow``, ``make test-slow``,
run by CI). The check that every benchmark has smoke settings stays in the fast tier.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SMOKE = {
    "bench_svi.py": ["--smoke"],
    "bench_evaluate.py": ["--smoke"],
    "bench_exact.py": ["--repeats", "1"],
    "bench_discrete.py": ["--smoke"],
    "bench_checkpoint_faults.py": ["--smoke"],
}


def test_every_benchmark_has_smoke_settings_here_or_is_listed_as_slow():
    found = {p.name for p in (ROOT / "benchmarks").glob("bench_*.py")}
    # bench_distributed starts process groups for every configuration: run by `make bench`
    assert found - set(SMOKE) <= {"bench_distributed.py"}, sorted(found - set(SMOKE))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SMOKE))
def test_benchmark_runs(name):
    if name == "bench_exact.py":
        pytest.importorskip("pgmpy", reason="bench_exact needs the `bench` extra (pgmpy)")
    env = {**os.environ, "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / name), *SMOKE[name]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    # printed its table (bench_checkpoint_faults prints aligned columns of outcome counts)
    assert "|" in result.stdout or "ValueError" in result.stdout
