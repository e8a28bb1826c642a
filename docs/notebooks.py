"""The tutorials as Jupyter notebooks: one `docs/notebooks/*.ipynb` per `docs/tutorials/*.md`.

The Markdown pages are the source: doctest transcripts (```` ```pycon ```` blocks of ``>>> ``
input and expected output) that ``make test`` runs. Each page is paired with a notebook made
from it here: the prose becomes Markdown cells and the ``>>>`` statements code cells, a new
cell after each statement that shows output (so the notebook displays every value the page
prints), the expected output left to the kernel. The notebooks carry no outputs in the
repository; ``make docs`` executes them (myst-nb) and renders them with their outputs and
figures, and the slow test ``tests/test_notebooks.py`` executes them on a real kernel.

Run ``python docs/notebooks.py`` after editing a tutorial; ``tests/test_notebooks.py`` fails
while a notebook is out of date.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TUTORIALS = HERE / "tutorials"
NOTEBOOKS = HERE / "notebooks"

_FENCE = re.compile(r"^```(\w*)\s*$")
_DIRECTIVE = re.compile(r"\s*#\s*doctest:.*$")
_KERNEL = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def _code_cells(block: list[str]) -> list[tuple[str, bool]]:
    """The code cells of one transcript block: ``(source, raises)`` per cell, ``raises`` when
    the transcript expects the cell's last statement to raise (a ``Traceback`` output)."""
    cells, current, statement = [], [], []
    raises = False

    def end_statement() -> None:
        if statement:
            current.extend(statement)
            statement.clear()

    for line in block:
        if line.startswith(">>> ") or line == ">>>":
            end_statement()
            statement.append(line[4:])
        elif (line.startswith("... ") or line == "...") and statement:
            statement.append(line[4:])
        elif statement:  # expected output: the statement shows something, end the cell here
            raises = line.startswith("Traceback (most recent call last)")
            end_statement()
            cells.append((current, raises))
            current = []
    end_statement()
    if current:
        cells.append((current, False))
    out = []
    for cell, raises in cells:
        if any("doctest: +SKIP" in line for line in cell):
            continue  # not run by the doctests either
        source = "\n".join(_DIRECTIVE.sub("", line) for line in cell).strip("\n")
        if source.strip():
            out.append((source, raises))
    return out


def notebook(markdown: str):
    """The notebook of one tutorial page (an :mod:`nbformat` v4 node, no outputs)."""
    import nbformat

    cells, prose, block, fence = [], [], None, None
    for line in markdown.splitlines():
        match = _FENCE.match(line)
        if block is None and match and match.group(1) in ("pycon", "python"):
            block, fence = [], match.group(1)
            continue
        if block is not None and line.strip() == "```":
            codes = _code_cells(block) if fence == "pycon" else [("\n".join(block), False)]
            if codes and "".join(prose).strip():
                cells.append(nbformat.v4.new_markdown_cell("\n".join(prose).strip("\n")))
                prose = []
            for source, raises in codes:  # an expected error is tagged, as Jupyter Book does
                cell = nbformat.v4.new_code_cell(source)
                if raises:
                    cell.metadata["tags"] = ["raises-exception"]
                cells.append(cell)
            block = None
            continue
        if block is not None:
            block.append(line)
        else:
            prose.append(line)
    if "".join(prose).strip():
        cells.append(nbformat.v4.new_markdown_cell("\n".join(prose).strip("\n")))
    nb = nbformat.v4.new_notebook(cells=cells, metadata=dict(_KERNEL))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"  # stable ids: the same page gives the same file
    return nb


def render(markdown: str) -> str:
    """The notebook of a page as the text of its ``.ipynb`` file."""
    import nbformat

    return nbformat.writes(notebook(markdown)) + "\n"


def pairs() -> list[tuple[Path, Path]]:
    """``(tutorial page, its notebook)`` for every tutorial."""
    return [(p, NOTEBOOKS / f"{p.stem}.ipynb") for p in sorted(TUTORIALS.glob("[0-9]*.md"))]


def main() -> int:
    NOTEBOOKS.mkdir(exist_ok=True)
    for page, path in pairs():
        path.write_text(render(page.read_text()))
        print(f"wrote {path.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
