"""Sphinx configuration for pvae (builds offline with -W).

Offline and with pictures: MathJax is served from ``_static/mathjax`` (sphinx-mathjax-offline;
no CDN), the tutorial notebooks (``notebooks/``, made from ``tutorials/`` by
``notebooks.py``) are executed at build time by myst-nb and rendered with their outputs and
figures, every example runs with ``--smoke`` into ``_generated/gallery/`` for the gallery
page (``PVAE_DOCS_EXAMPLES=0`` reuses the last run's outputs), and code blocks get a copy
button (sphinx-copybutton, without the ``>>>`` prompts).
"""

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, os.path.abspath(".."))
os.environ.setdefault("MPLBACKEND", "Agg")

import pvae  # noqa: E402

project = "pvae"
author = "pvae developers"
copyright = "2026, pvae developers"
release = pvae.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_nb",  # MyST Markdown (as myst_parser) and executed notebooks
    "sphinx_copybutton",
    "sphinx-mathjax-offline",  # after sphinx.ext.mathjax: serves MathJax from _static
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "_generated", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]

# The notebooks run at build time, so their figures are drawn by the code they show.
nb_execution_mode = "force"
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
nb_execution_excludepatterns = ["tutorials/*", "guide/*", "*.md"]  # the .md pages are text
# fit's progress widget (tqdm.auto) renders as its text: no widget JavaScript from a CDN.
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]
nb_ipywidgets_js = {}

# Copy the code of a doctest transcript without its prompts and outputs.
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}

# Offline: no intersphinx inventories are fetched.
html_theme = "furo"
html_title = f"pvae {release}"
html_static_path = ["_static"]


# ----------------------------------------------------------------------------- gallery
#: Where the examples write their figures (``gallery.md`` shows them).
GALLERY = Path(__file__).resolve().parent / "_generated" / "gallery"


def _run_examples() -> None:
    """Run every example with ``--smoke --out _generated/gallery/<name>`` (a fresh process)."""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "MPLBACKEND": "Agg", "PVAE_PROGRESS_INTERVAL": "3600"}
    scripts = sorted((root / "examples").glob("*.py"))
    if os.environ.get("PVAE_DOCS_EXAMPLES") == "0":  # editing prose: reuse the last outputs
        _write_gallery([s for s in scripts if (GALLERY / s.stem / "output.txt").is_file()])
        return
    for script in scripts:
        out = GALLERY / script.stem
        out.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [sys.executable, str(script), "--smoke", "--out", str(out)],
            capture_output=True, text=True, env=env, timeout=600,
        )  # fmt: skip
        (out / "output.txt").write_text(done.stdout)
        if done.returncode != 0:
            raise RuntimeError(f"examples/{script.name} --smoke failed:\n{done.stderr[-3000:]}")
    _write_gallery(scripts)


def _write_gallery(scripts: list) -> None:
    """``_generated/gallery.md``: per example, its summary, command, output and figures."""
    lines = []
    for script in scripts:
        out = GALLERY / script.stem
        doc = (script.read_text().split('"""')[1:2] or [""])[0].strip().splitlines()
        title = doc[0] if doc else script.stem
        lines += [f"## `{script.name}`", "", title, "", "```bash"]
        lines += [f"python examples/{script.name} --smoke --out out/", "```", ""]
        printed = (out / "output.txt").read_text().strip().splitlines()
        if printed:
            cut = printed[:25] + (
                [f"... {len(printed) - 25} more lines"] if len(printed) > 25 else []
            )
            lines += ["```text", *cut, "```", ""]
        for png in sorted(out.glob("*.png")):
            path = f"/_generated/gallery/{script.stem}/{png.name}"
            lines += [f"```{{figure}} {path}", ":width: 90%", "", f"`{png.name}`", "```", ""]
    (GALLERY.parent / "gallery.md").write_text("\n".join(lines))


def setup(app):
    _run_examples()
