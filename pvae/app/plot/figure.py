"""The figure every ``pvae.plot`` function returns: a matplotlib Figure that shows itself.

:class:`PvaeFigure` is a plain :class:`matplotlib.figure.Figure` (made without
:mod:`matplotlib.pyplot`, so it needs no backend and works headless under Agg) with a
``_repr_png_`` method: returned as the last value of a Jupyter cell, it is displayed as a PNG
without ``%matplotlib inline`` or ``plt.show()``. Where the inline backend is active anyway,
IPython's own figure formatter draws it instead, once. In a script nothing is shown; save it
with ``fig.savefig(path)``.

Examples
--------
>>> fig = PvaeFigure(figsize=(2, 1))
>>> png = fig._repr_png_()
>>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
True
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure

__all__ = ["PvaeFigure"]


class PvaeFigure(Figure):
    """A :class:`~matplotlib.figure.Figure` that Jupyter displays as a PNG when returned."""

    def _repr_png_(self) -> bytes:
        """The figure as PNG bytes (what IPython shows for ``image/png``)."""
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()
