r"""Progress of a long step (``fit``, ``evaluate``, ``fit_guide``, the demo): one helper.

:class:`ProgressBar` picks how to show progress from where the output goes:

============  ===========================================================================
mode          when, and what is shown
============  ===========================================================================
notebook      in a Jupyter kernel (``tqdm.auto`` finds one, with ipywidgets): a widget
terminal      the stream is a terminal: a tqdm bar
plain         a log file or a pipe (CI, ``nohup``, ``2> log``): one plain line every
              :data:`PLAIN_INTERVAL` seconds and a last one at the end, each with the step
              count, the numbers shown (ELBO) and the time left
off           ``enabled=False`` (``progress=False``, the CLI's ``--no-progress``), or not
              rank 0 of a ``torch.distributed`` job
============  ===========================================================================

A plain line reads ``fit: epoch 3/50 elbo=-3.25 val=-3.5 | 2.0 s, ~31 s left``. A run
shorter than :data:`PLAIN_INTERVAL` writes one line, at its end.

Examples
--------
>>> import io
>>> log = io.StringIO()  # not a terminal: plain lines
>>> with ProgressBar(True, total=2, desc="fit", unit="epoch", file=log, interval=0) as bar:
...     bar.update(elbo=-3.25)
...     bar.update(elbo=-3.0)
>>> print(log.getvalue().splitlines()[-1].split(" | ")[0])
fit: epoch 2/2 elbo=-3
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

__all__ = ["PLAIN_INTERVAL", "ProgressBar", "progress_mode"]

#: Seconds between two plain progress lines in a log or pipe (``PVAE_PROGRESS_INTERVAL``).
PLAIN_INTERVAL = float(os.environ.get("PVAE_PROGRESS_INTERVAL", "5"))


def _main_process() -> bool:
    torch = sys.modules.get("torch")
    dist = getattr(torch, "distributed", None)
    if dist is None or not (dist.is_available() and dist.is_initialized()):
        return True
    return dist.get_rank() == 0


def _notebook_tqdm() -> Any:
    """tqdm's notebook widget class when a Jupyter kernel with ipywidgets runs, else None."""
    if "ipykernel" not in sys.modules:
        return None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tqdm's "experimental"/"no ipywidgets" notices
        from tqdm.auto import tqdm
        from tqdm.notebook import tqdm as widget
    return tqdm if issubclass(tqdm, widget) else None  # else tqdm.auto fell back to text


def progress_mode(enabled: bool | None, file: TextIO | None = None) -> str:
    """How progress shows: ``"notebook"``, ``"terminal"``, ``"plain"`` or ``"off"``.

    Parameters
    ----------
    enabled : bool or None
        False: off. True or None: on (rank 0 only), in the look that suits ``file``.
    file : text stream, optional
        Where progress goes (default ``sys.stderr``).

    Examples
    --------
    >>> import io
    >>> progress_mode(True, io.StringIO()), progress_mode(False)
    ('plain', 'off')
    """
    if enabled is False or not _main_process():
        return "off"
    stream = sys.stderr if file is None else file
    if file is None and _notebook_tqdm() is not None:
        return "notebook"
    isatty = getattr(stream, "isatty", None)
    return "terminal" if isatty is not None and isatty() else "plain"


def _seconds(s: float) -> str:
    if s < 60:
        return f"{s:.1f} s" if s < 10 else f"{s:.0f} s"
    return f"{int(s // 60)} min {int(s % 60):02d} s"


def _value(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


class ProgressBar:
    """Progress over ``total`` steps, shown as :func:`progress_mode` says.

    Parameters
    ----------
    enabled : bool or None
        ``False`` silences it; ``True``/``None`` show it (see :func:`progress_mode`).
    total : int
        Steps in all.
    desc, unit : str
        What runs (``"fit"``) and what a step is (``"epoch"``).
    initial : int
        Steps done before (a resumed run).
    file : text stream, optional
        Where it goes (default ``sys.stderr``; a notebook widget only then).
    interval : float, optional
        Seconds between plain lines (default :data:`PLAIN_INTERVAL`).

    Examples
    --------
    >>> import io
    >>> quiet = io.StringIO()
    >>> with ProgressBar(False, total=3, desc="fit", unit="epoch", file=quiet) as bar:
    ...     bar.update(elbo=-1.0)
    >>> quiet.getvalue(), bar.mode
    ('', 'off')
    """

    def __init__(
        self,
        enabled: bool | None,
        total: int,
        *,
        desc: str,
        unit: str,
        initial: int = 0,
        file: TextIO | None = None,
        interval: float | None = None,
    ) -> None:
        self.mode = progress_mode(enabled, file)
        self.total, self.desc, self.unit = int(total), desc, unit
        self.n = self.start_n = int(initial)
        self.file = sys.stderr if file is None else file
        self.interval = PLAIN_INTERVAL if interval is None else float(interval)
        self.postfix: dict[str, Any] = {}
        self.t0 = self.last = time.perf_counter()
        self.bar = None
        if self.mode == "notebook":
            self.bar = _notebook_tqdm()(total=total, initial=initial, desc=desc, unit=unit)
        elif self.mode == "terminal":
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=self.file)
        self.lines = 0

    def update(self, n: int = 1, **postfix: Any) -> None:
        """``n`` more steps done; ``postfix`` (e.g. ``elbo=-3.2``) is shown beside the count."""
        self.n += n
        self.postfix = postfix or self.postfix
        if self.bar is not None:
            if postfix:
                self.bar.set_postfix({k: _value(v) for k, v in postfix.items()}, refresh=False)
            self.bar.update(n)
        elif self.mode == "plain":
            now = time.perf_counter()
            if now - self.last >= self.interval and self.n < self.total:
                self._line(now)

    def _line(self, now: float) -> None:
        elapsed = now - self.t0
        done = self.n - self.start_n
        left = (self.total - self.n) * elapsed / done if done > 0 else float("nan")
        shown = " ".join(f"{k}={_value(v)}" for k, v in self.postfix.items())
        timing = _seconds(elapsed) + (
            ", done" if self.n >= self.total else f", ~{_seconds(left)} left" if done else ""
        )
        head = f"{self.desc}: {self.unit} {self.n}/{self.total}"
        print(f"{head}{' ' + shown if shown else ''} | {timing}", file=self.file, flush=True)
        self.last = now
        self.lines += 1

    def close(self) -> None:
        """Finish: close the bar, or write the last plain line."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.mode == "plain" and self.n > self.start_n:
            self._line(time.perf_counter())
        self.mode = "off" if self.mode == "plain" else self.mode

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
