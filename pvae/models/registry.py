"""The one model registry: :data:`MODELS` maps a class name to a pvae model class.

Everything that turns a name into a model reads it: :func:`pvae.load` rebuilds a saved
model with ``MODELS[state["class"]](**state["config"])``, and the ``pvae train --model``
choices are its short names (:attr:`ModelRegistry.aliases`). Register your own model class
to make its checkpoints loadable by name::

    pvae.models.MODELS.register(MyVAE, alias="myvae")

Built-in entries are import paths until first use, so reading the names (``sorted(MODELS)``,
``MODELS.aliases``) imports neither torch nor Pyro: ``pvae --help`` stays instant.

Examples
--------
>>> sorted(MODELS)
['Autoencoder', 'ConditionalVAE', 'MixtureVAE', 'SemiSupervisedVAE', 'VAE']
>>> MODELS.aliases
{'vae': 'VAE', 'cvae': 'ConditionalVAE', 'ae': 'Autoencoder'}
>>> MODELS.resolve("cvae").__name__
'ConditionalVAE'
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping

__all__ = ["MODELS", "ModelRegistry"]


class ModelRegistry(MutableMapping):
    """Model classes by name, each with an optional short alias; loaded on first access.

    A mapping ``{name: class}``: ``MODELS["VAE"]``, ``"VAE" in MODELS``, ``sorted(MODELS)``.
    Entries are classes, or ``"module:attribute"`` paths imported when first read.

    Examples
    --------
    >>> registry = ModelRegistry()
    >>> registry.register("collections:OrderedDict", alias="od")
    >>> registry["OrderedDict"].__name__, registry.resolve("od").__name__
    ('OrderedDict', 'OrderedDict')
    >>> registry.resolve("nope")
    Traceback (most recent call last):
    ...
    ValueError: `model` must be one of 'OrderedDict', 'od', got 'nope' (str). ...
    """

    def __init__(self) -> None:
        self._entries: dict[str, type | str] = {}
        self._aliases: dict[str, str] = {}

    def register(
        self, target: type | str, *, name: str | None = None, alias: str | None = None
    ) -> None:
        """Add a model class (or a ``"module:attribute"`` path to one) under ``name``.

        Parameters
        ----------
        target : type or str
            The class, or where to import it from.
        name : str, optional
            The registry key (default: the class's ``__name__``, or the attribute of the
            path). Saved checkpoints record it.
        alias : str, optional
            A short name (``"vae"``) for the command line.

        Examples
        --------
        >>> registry = ModelRegistry()
        >>> registry.register(dict, name="Table")
        >>> list(registry)
        ['Table']
        """
        if isinstance(target, str):
            module, sep, attribute = target.partition(":")
            if not (sep and module and attribute):
                raise ValueError(
                    f"`target` must be a class or a 'module:attribute' path, got {target!r}."
                )
            default = attribute
        elif isinstance(target, type):
            default = target.__name__
        else:
            raise ValueError(
                f"`target` must be a class or a 'module:attribute' path, got "
                f"{target!r} ({type(target).__name__})."
            )
        name = default if name is None else name
        if not isinstance(name, str) or not name:
            raise ValueError(f"`name` must be a non-empty string, got {name!r}.")
        if alias is not None:
            if not isinstance(alias, str) or not alias:
                raise ValueError(f"`alias` must be a non-empty string, got {alias!r}.")
            owner = self._aliases.get(alias)
            if owner is not None and owner != name:
                raise ValueError(
                    f"`alias` {alias!r} already names {owner!r}; pick another short name."
                )
            self._aliases[alias] = name
        self._entries[name] = target

    @property
    def aliases(self) -> dict[str, str]:
        """Short names and the registry names they stand for (a copy)."""
        return dict(self._aliases)

    def resolve(self, name: str) -> type:
        """The class registered under ``name`` or under the alias ``name``."""
        key = self._aliases.get(name, name)
        if key not in self._entries:
            choices = ", ".join(repr(c) for c in [*self._entries, *self._aliases])
            raise ValueError(
                f"`model` must be one of {choices}, got {name!r} ({type(name).__name__}). "
                "Register your class with `pvae.models.MODELS.register(cls)`."
            )
        return self[key]

    def __getitem__(self, name: str) -> type:
        target = self._entries[name]
        if isinstance(target, str):
            module, _, attribute = target.partition(":")
            target = getattr(importlib.import_module(module), attribute)
            self._entries[name] = target
        return target

    def __setitem__(self, name: str, cls: type) -> None:
        self.register(cls, name=name)

    def __delitem__(self, name: str) -> None:
        del self._entries[name]
        self._aliases = {a: n for a, n in self._aliases.items() if n != name}

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"ModelRegistry({sorted(self._entries)})"


#: The model classes by name (the one registry; see the module docstring).
MODELS = ModelRegistry()
MODELS.register("pvae.models.vae:VAE", alias="vae")
MODELS.register("pvae.models.cvae:ConditionalVAE", alias="cvae")
MODELS.register("pvae.models.autoencoder:Autoencoder", alias="ae")
MODELS.register("pvae.models.semisupervised:SemiSupervisedVAE")
MODELS.register("pvae.models.mixture:MixtureVAE")
