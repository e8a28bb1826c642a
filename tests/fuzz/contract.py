"""The rule every fuzzed call must keep, and the tiers that size the runs.

Every outcome of a public function is either the right answer (the test checks it against
an independent reference) or a :class:`ValueError` / :class:`TypeError` whose message
names the argument at fault. Any other exception escapes :func:`call` and fails the test;
so does a refusal that names none of the arguments it was told about.

The fast tier (``make test``) runs ``fast`` cases per entry point, the slow tier
(``make test-slow``, the ``slow`` marker) ``slow`` cases (at least 1,000). Outcomes are
counted in :data:`TALLY`; ``PVAE_FUZZ_TALLY=path`` writes the counts as JSON at the end of
the session (``tests/fuzz/conftest.py``), the figures of ``docs/reliability.md``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from hypothesis import HealthCheck, given, settings

#: entry point -> Counter of outcome kinds ("answer", "ValueError", "TypeError")
TALLY: dict[str, Counter] = defaultdict(Counter)

#: cases per entry point in the slow tier
SLOW_EXAMPLES = 1000


class Refused(Exception):
    """Raised by :func:`call` when the function refused the input as the rule allows."""

    def __init__(self, err: Exception) -> None:
        super().__init__(str(err))
        self.err = err


def call(
    entry: str,
    fn: Callable[..., Any],
    *args: Any,
    names: Iterable[str],
    allow: tuple[type[Exception], ...] = (),
    **kwargs: Any,
) -> Any:
    """``fn(*args, **kwargs)``, or :class:`Refused` for a ValueError/TypeError naming one of
    ``names``; any other exception (or a refusal naming no argument) propagates.

    ``allow`` adds documented exception types (``FileNotFoundError`` for a path that is not
    a file, as Python's own readers raise), held to the same rule: the message names it.
    """
    names = tuple(names)
    try:
        result = fn(*args, **kwargs)
    except (ValueError, TypeError, *allow) as err:
        message = str(err)
        if not any(name in message for name in names):
            raise AssertionError(
                f"{entry}: {type(err).__name__} names none of {names}: {message!r}"
            ) from err
        TALLY[entry][type(err).__name__] += 1
        raise Refused(err) from None
    TALLY[entry]["answer"] += 1
    return result


def finite(value: Any, what: str) -> float:
    """``value`` as a float, asserting that it is finite."""
    value = float(value)
    assert math.isfinite(value), f"{what} is not finite: {value}"
    return value


def fuzz(strategy: Any, check: Callable[[Any], None], tier: str, *, fast: int) -> None:
    """Run ``check`` on ``fast`` (or :data:`SLOW_EXAMPLES`) draws of ``strategy``.

    A :class:`Refused` from ``check`` is an allowed outcome and ends the case.
    """
    count = fast if tier == "fast" else max(SLOW_EXAMPLES, fast)

    @settings(
        max_examples=count,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(case: Any) -> None:
        try:
            check(case)
        except Refused:
            pass

    run()
