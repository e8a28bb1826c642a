"""Import paths of pvae 0.1, kept working for one release.

pvae 0.1 was 23 flat modules (``pvae.bayes``, ``pvae.train``, ...); 0.2 groups them in a
package per layer. A finder on :data:`sys.meta_path` answers the old paths with the new
modules, so ``from pvae.train import fit`` and ``import pvae.comparison`` still work:

* the short names documented as submodules (``pvae.toy``, ``pvae.plot``, ``pvae.nn``,
  ``pvae.distributed``) stay as aliases without a warning;
* every other old path emits a :class:`DeprecationWarning` naming its new home, and goes
  away in 0.3 (see ``CHANGELOG.md``).

Old and new path give the same module object, so ``pvae.fit is pvae.training.loop.fit``.

The renamed record fields and dict keys of 0.1 (``Evaluation.log_likelihood``, history
``kl``, ...) read through :func:`renamed` and :class:`RenamedKeys`, with one warning.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

__all__ = ["ALIASES", "DEPRECATED", "RenamedKeys", "install", "renamed", "warn_renamed"]

#: Short submodule names that stay (no warning).
ALIASES = {
    "pvae.toy": "pvae.exact.toy",
    "pvae.plot": "pvae.app.plot",
    "pvae.nn": "pvae.models.networks",
    "pvae.distributed": "pvae.training.distributed",
}

#: Old module paths of pvae 0.1 -> their home in 0.2 (deprecated; removed in 0.3).
DEPRECATED = {
    "pvae.bayes": "pvae.exact.bayes",
    "pvae.divergence": "pvae.vi.divergence",
    "pvae.guide_enumeration": "pvae.vi.guide_enumeration",
    "pvae.guides": "pvae.vi.guides",
    "pvae.comparison": "pvae.vi.comparison",
    "pvae.amortization": "pvae.vi.amortization",
    "pvae.train": "pvae.training.loop",
    "pvae.checkpoint": "pvae.training.checkpoint",
    "pvae.diagnostics": "pvae.evaluation",
    "pvae.collapse": "pvae.evaluation.collapse",
    "pvae.report": "pvae.app.report",
    "pvae.cli": "pvae.app.cli",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path and loads it as the module that now lives at the new one."""

    def __init__(self) -> None:
        self._specs: dict = {}

    def find_spec(self, fullname, path=None, target=None):
        if fullname in ALIASES or fullname in DEPRECATED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        new = ALIASES.get(spec.name) or DEPRECATED[spec.name]
        if spec.name in DEPRECATED:
            warnings.warn(
                f"`{spec.name}` moved to `{new}` in pvae 0.2; the old path goes away in 0.3. "
                f"Import from `{new}` (or from `pvae`).",
                DeprecationWarning,
                stacklevel=2,
            )
        module = importlib.import_module(new)
        self._specs[spec.name] = module.__spec__
        return module

    def exec_module(self, module):
        """The module ran under its new name already; give it back its own ``__spec__``."""
        for old, spec in list(self._specs.items()):
            if spec.name == module.__name__:
                module.__spec__ = self._specs.pop(old)


_FINDER = _Alias()


def install() -> None:
    """Put the finder on :data:`sys.meta_path` (once)."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.append(_FINDER)


# ----------------------------------------------------------------------------- old names
def warn_renamed(old: str, new: str, stacklevel: int = 3) -> None:
    """The one warning for a name of pvae 0.1 that still reads until 0.3."""
    warnings.warn(
        f"{old} is renamed `{new}` in pvae 0.2 (one name per quantity); the old name goes "
        "away in 0.3.",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def renamed(record: str, old: str, new: str) -> property:
    """A read-only attribute ``old`` of a record that reads ``new``, with a warning."""

    def read(self):
        warn_renamed(f"`{record}.{old}`", new)
        return getattr(self, new)

    read.__doc__ = f"Deprecated name of :attr:`{new}` (pvae 0.1)."
    return property(read)


class RenamedKeys(dict):
    """A ``dict`` that also answers the key names of pvae 0.1, with a warning.

    Iteration, ``keys()``, ``in``, JSON and equality see only the current names; reading an
    old name (``d[old]``, ``d.get(old)``) gives the current value with a
    :class:`DeprecationWarning`. Subclasses set :attr:`what` and :meth:`new_name`.

    Examples
    --------
    >>> class Row(RenamedKeys):
    ...     what = "the key"
    ...     @staticmethod
    ...     def new_name(key):
    ...         return {"kl": "kl_prior"}.get(key)
    >>> row = Row(kl_prior=1.5)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     old = row["kl"]
    >>> old, list(row), caught[0].category.__name__
    (1.5, ['kl_prior'], 'DeprecationWarning')
    """

    what = "the key"

    @staticmethod
    def new_name(key) -> str | None:
        """The current name of an old ``key`` (``None`` for a current or unknown one)."""
        return None

    def _alias(self, key) -> str | None:
        new = self.new_name(key) if isinstance(key, str) else None
        if new is None or not dict.__contains__(self, new):
            return None
        warnings.warn(
            f"{self.what} {key!r} is deprecated since pvae 0.2 and goes away in 0.3; use {new!r}.",
            DeprecationWarning,
            stacklevel=3,
        )
        return new

    def __missing__(self, key):
        new = self._alias(key)
        if new is None:
            raise KeyError(key)
        return dict.__getitem__(self, new)

    def get(self, key, default=None):
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        new = self._alias(key)
        return default if new is None else dict.__getitem__(self, new)
