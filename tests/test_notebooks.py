"""The tutorials as Jupyter notebooks, and what a notebook really shows of pvae.

Fast: every notebook in ``docs/notebooks/`` is the one ``docs/notebooks.py`` makes from its
tutorial page (so the doctested page and the notebook never drift apart). Slow: the
notebooks run on a real kernel (nbclient + ipykernel) without an error, and a notebook's
outputs carry the MIME types that make a display: ``image/png`` for a returned
``pvae.plot`` figure (with the inline backend and without it, once), ``text/html`` for a
record, a tqdm widget for ``fit``'s progress; and the docs build (``make docs``, which
executes the tutorial notebooks on a kernel) rendered them with their figures, offline.
"""

import importlib.util
import os
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _converter():
    spec = importlib.util.spec_from_file_location("pvae_docs_notebooks", DOCS / "notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_tutorial_has_its_notebook_and_it_is_up_to_date():
    nb = _converter()
    pairs = nb.pairs()
    assert len(pairs) == len(list((DOCS / "tutorials").glob("[0-9]*.md"))) >= 9
    for page, notebook in pairs:
        assert notebook.is_file(), f"{notebook.name} missing: run `python docs/notebooks.py`"
        assert notebook.read_text() == nb.render(page.read_text()), (
            f"{notebook.name} is out of date with {page.name}: run `python docs/notebooks.py`"
        )
    extra = {p.stem for p in (DOCS / "notebooks").glob("*.ipynb")} - {p.stem for p, _ in pairs}
    assert not extra, f"notebooks without a tutorial page: {sorted(extra)}"


def test_cells_are_the_transcripts_statements():
    nb = _converter().notebook(
        "# T\n\ntext\n\n```pycon\n>>> a = 1\n>>> a + 1\n2\n>>> for i in (1, 2):\n"
        "...     a += i\n>>> a  # doctest: +ELLIPSIS\n4\n>>> b = 2  # doctest: +SKIP\n```\n\nend\n"
    )
    kinds = [(c.cell_type, c.source) for c in nb.cells]
    assert kinds == [
        ("markdown", "# T\n\ntext"),
        ("code", "a = 1\na + 1"),
        ("code", "for i in (1, 2):\n    a += i\na"),
        ("markdown", "end"),
    ]
    raising = _converter().notebook(
        "```pycon\n>>> 1 / 0\nTraceback (most recent call last):\nZeroDivisionError: ...\n```\n"
    )
    assert raising.cells[0].metadata["tags"] == ["raises-exception"]  # runs on, as the page


def _run(cells: list[str], env: dict | None = None, cwd: Path | None = None):
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    return _execute(nb, env, cwd)


def _execute(nb, env=None, cwd=None):
    import nbclient

    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env if env is not None else old)
    try:
        client = nbclient.NotebookClient(
            nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
        )
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return nb


def _mimes(cell) -> set[str]:
    found = set()
    for out in cell.outputs:
        found |= set(out.get("data", {}))
        if out.output_type == "stream":
            found.add(f"stream:{out.name}")
    return found


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["Agg", None])  # CI's Agg, and Jupyter's own default
def test_figures_records_and_progress_display_in_a_kernel(backend, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    if backend:
        env["MPLBACKEND"] = backend
    nb = _run(
        [
            "import torch, pvae\nt = pvae.bayes_rule([0.5, 0.5], [0.2, 0.6])\nt",
            "pvae.plot.bayes_table(t)",
            "vae = pvae.VAE(4, 2, hidden=(3,), seed=0)\n"
            "x = (torch.rand(20, 4) > 0.5).float()\n"
            "res = pvae.fit(vae, x, epochs=2, batch_size=10)\nres",
            "pvae.fit(vae, x, epochs=1, progress=False)",
        ],
        env,
        tmp_path,
    )
    table, figure, fitted, quiet = nb.cells
    assert {"text/html", "text/plain"} <= _mimes(table)
    assert "0.75" in table.outputs[0]["data"]["text/html"]  # posterior of h=1: 0.3 / 0.4
    pngs = [o for o in figure.outputs if "image/png" in o.get("data", {})]
    assert len(pngs) == 1, _mimes(figure)  # shown once, with no %matplotlib ritual
    assert "application/vnd.jupyter.widget-view+json" in _mimes(fitted)  # tqdm.auto widget
    assert "text/html" in _mimes(fitted)  # the FitResult
    assert not any(m.startswith("stream") for m in _mimes(quiet))  # progress=False: silent


# The tutorial notebooks themselves run on a kernel in `make docs` (myst-nb executes them and
# fails the build on an error); test_built_docs_... below checks what that build rendered.


BUILT = DOCS / "_build" / "html"


@pytest.fixture
def built_docs():
    if not (BUILT / "index.html").is_file():
        if os.environ.get("CI"):
            pytest.fail(
                "docs/_build/html is missing: .ci/run runs `make docs` before the slow tier"
            )
        pytest.skip("run `make docs` first")
    return BUILT


@pytest.mark.slow
def test_built_docs_work_offline_and_show_the_notebooks_outputs(built_docs):
    import re

    remote = re.compile(r"""<(?:script|link|img)\b[^>]*\b(?:src|href)=["'](?:https?:)?//""", re.I)
    pages = sorted(built_docs.rglob("*.html"))
    offenders = [str(p.relative_to(built_docs)) for p in pages if remote.search(p.read_text())]
    assert not offenders, f"pages that load from the network: {offenders[:5]}"
    assert (built_docs / "_static" / "mathjax" / "tex-chtml.js").is_file()  # served here
    tutorial = (built_docs / "tutorials" / "01_bayes_rule.html").read_text()
    assert "_static/mathjax/tex-chtml.js" in tutorial and "copybutton" in tutorial
    for source, notebook in _converter().pairs():
        page = (built_docs / "notebooks" / f"{notebook.stem}.html").read_text()
        images = re.findall(r'<img[^>]+src="([^"]+)"', page)
        if ">>> pvae.plot." in source.read_text():  # the page draws a figure: it is rendered
            assert images, f"{notebook.stem}: no figure rendered"
        for src in images:
            assert src.startswith("data:") or (built_docs / "notebooks" / src).resolve().is_file()
    first = (built_docs / "notebooks" / "01_bayes_rule.html").read_text()
    assert "0.0776398" in first  # the Bayes table the kernel printed: executed, not copied
    gallery = (built_docs / "gallery.html").read_text()
    examples = sorted((DOCS.parent / "examples").glob("*.py"))
    for script in examples:
        assert f"{script.name}" in gallery, script.name
    assert gallery.count("<img") >= len(examples) - 1
