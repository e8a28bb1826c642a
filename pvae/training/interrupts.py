r"""Ctrl-C during training, taken between steps so that what is saved is a real state.

A ``SIGINT`` that lands inside an optimizer step (between the updates of two parameters,
or of a parameter and its Adam moments) would leave a state no uninterrupted run ever
had. Inside :func:`deferred_interrupts`, a first Ctrl-C only raises a flag;
:meth:`Interrupts.check`, called by :func:`pvae.fit` after every step, turns it into the
usual :class:`KeyboardInterrupt` at that step boundary. A second Ctrl-C raises at once
(and :attr:`Interrupts.forced` says so: the state may then be mid-update).

The handler is installed only in the main thread and only over Python's default one; a
program with its own ``SIGINT`` handler keeps it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Interrupts", "deferred_interrupts"]


class Interrupts:
    """The state of Ctrl-C inside :func:`deferred_interrupts`.

    Examples
    --------
    >>> flag = Interrupts()
    >>> flag.check()            # nothing pending
    >>> flag.pending = True
    >>> try:
    ...     flag.check()
    ... except KeyboardInterrupt:
    ...     print("raised at the step boundary")
    raised at the step boundary
    """

    def __init__(self) -> None:
        #: A Ctrl-C arrived and was not yet raised.
        self.pending = False
        #: A second Ctrl-C was raised at once, possibly inside a step.
        self.forced = False
        #: The handler is installed (main thread, default handler).
        self.active = False

    def check(self) -> None:
        """Raise :class:`KeyboardInterrupt` if a Ctrl-C is pending."""
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt

    def _handle(self, signum: int, frame: Any) -> None:
        if self.pending:  # the second Ctrl-C: do not make the user wait
            self.pending, self.forced = False, True
            raise KeyboardInterrupt
        self.pending = True


@contextmanager
def deferred_interrupts() -> Iterator[Interrupts]:
    """Hold Ctrl-C until the next :meth:`Interrupts.check` (see the module docstring).

    Examples
    --------
    >>> import os
    >>> with deferred_interrupts() as flag:
    ...     os.kill(os.getpid(), signal.SIGINT)     # arrives "inside a step"
    ...     held = flag.pending
    ...     try:
    ...         flag.check()                        # the step boundary
    ...     except KeyboardInterrupt:
    ...         print("interrupted between steps; held until then:", held)
    interrupted between steps; held until then: True
    """
    flag = Interrupts()
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if main else None
    if main and previous is signal.default_int_handler:
        signal.signal(signal.SIGINT, flag._handle)
        flag.active = True
    try:
        yield flag
        if flag.pending:  # arrived after the last check: deliver it, late but not lost
            flag.pending = False
            raise KeyboardInterrupt
    finally:
        if flag.active:
            signal.signal(signal.SIGINT, previous)
