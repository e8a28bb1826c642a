"""The package as a user installs it: ``.ci/wheel_check.sh`` (slow tier).

It builds the sdist and the wheel, checks both carry the LICENSE and the metadata its
license, classifiers and project URLs, installs the wheel into a fresh venv with only its
declared dependencies (torch pinned by ``constraints.txt``), and from there runs
``pvae demo --smoke`` and the README's quickstart with its numbers checked.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_installs_alone_and_runs_the_demo_and_quickstart():
    done = subprocess.run(
        ["bash", str(ROOT / ".ci" / "wheel_check.sh")],
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "wheel and sdist carry LICENSE" in out and "report:" in out
    assert "quickstart ok" in out and out.rstrip().endswith("wheel check passed")
