#!/usr/bin/env bash
# The package as a user gets it: build the sdist and the wheel, check that both carry the
# LICENSE, install the wheel into a fresh venv with only its declared dependencies (torch
# pinned by constraints.txt, nothing from the dev extra), then run `pvae demo --smoke` and
# the README's quickstart from that venv, outside the checkout. Run by
# tests/test_wheel.py (slow tier), or by hand: bash .ci/wheel_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
python="${PYTHON:-.venv/bin/python}"
case "$python" in /*) ;; *) python="$root/$python" ;; esac
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$python" -m build --sdist --wheel --outdir "$work/dist" . > "$work/build.log" 2>&1 \
    || { tail -40 "$work/build.log"; exit 1; }
wheel="$(ls "$work"/dist/*.whl)"
sdist="$(ls "$work"/dist/*.tar.gz)"
"$python" - "$wheel" "$sdist" <<'PY'
import sys, tarfile, zipfile
wheel, sdist = sys.argv[1:]
names = zipfile.ZipFile(wheel).namelist()
lic = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
assert lic, f"no LICENSE in the wheel: {names[-8:]}"
meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA")))
meta = meta.decode()
for needed in ("License-Expression: MIT", "Classifier: Programming Language :: Python :: 3.11",
               "Project-URL: ", "License-File: LICENSE"):
    assert needed in meta, f"wheel METADATA lacks {needed!r}"
assert "](docs/" not in meta and "](examples/" not in meta, "relative links in the README"
members = tarfile.open(sdist).getnames()
assert any(m.endswith("/LICENSE") for m in members), "no LICENSE in the sdist"
print("wheel and sdist carry LICENSE; metadata has the license, classifiers and URLs")
PY

"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -c "$root/constraints.txt" "$wheel"
cd "$work"  # away from the checkout: the installed package, not the source tree
"$work/venv/bin/python" -c "import pvae, sys; assert '$root' not in pvae.__file__, pvae.__file__; print('pvae', pvae.__version__, 'from', pvae.__file__)"
MPLBACKEND=Agg "$work/venv/bin/pvae" demo --smoke --out "$work/demo" --no-progress
test -s "$work/demo/report.html"
# The README's quickstart, as a user pastes it, and its numbers.
"$python" - "$root/README.md" > "$work/quickstart.py" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
block = re.search(r"## Quickstart\s+```python\n(.*?)```", text, re.S).group(1)
print(block)
print("assert abs(t.prob('disease') - 0.0776398) < 1e-6")
print("assert abs(float(post.marginal('burglary')[1]) - 0.284) < 1e-3")
print("assert ev.elbo <= ev.log_evidence < 0, (ev.elbo, ev.log_evidence)")
print("print('quickstart ok', round(ev.elbo, 3), round(ev.log_evidence, 3))")
PY
MPLBACKEND=Agg PVAE_PROGRESS_INTERVAL=3600 "$work/venv/bin/python" "$work/quickstart.py"
echo "wheel check passed"
