r"""What a pvae model offers, as a :class:`typing.Protocol`, and the one front door.

A *pvae model* is any object with a Pyro ``model`` and ``guide`` method taking the same
arguments (the data); :class:`pvae.models.VAE`, :class:`~pvae.models.ConditionalVAE` and
:class:`~pvae.models.Autoencoder` are ones. Functions across pvae accept either such an
object, or a Pyro model function with ``guide=``; :func:`model_and_guide` is the one place
that tells them apart.

Optional parts, each its own protocol:

- :class:`HasELBOTerms` -- ``elbo_terms(*data)`` returns per-example reconstruction and
  analytic :math:`\mathrm{KL}(q \,\|\, p(z))` (the analytic fast path of training), and
  ``beta``, the weight of that KL in the training objective;
- :class:`SquaredError` -- ``objective == "squared_error"``: a deterministic autoencoder,
  which has no likelihood, so no ELBO or :math:`\log p(x)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "Encodes",
    "HasConfig",
    "HasELBOTerms",
    "HasLogEvidence",
    "PvaeModel",
    "SquaredError",
    "model_and_guide",
    "objective",
    "pair_and_args",
]


@runtime_checkable
class PvaeModel(Protocol):
    """A Pyro model/guide pair as two methods of one object."""

    def model(self, *args: Any, **kwargs: Any) -> Any: ...

    def guide(self, *args: Any, **kwargs: Any) -> Any: ...


@runtime_checkable
class HasELBOTerms(Protocol):
    """A model with per-example ELBO terms in closed form (see the module docstring)."""

    beta: float

    def elbo_terms(self, *args: Any) -> Any: ...


@runtime_checkable
class Encodes(Protocol):
    """A model with a Gaussian encoder: ``encode(*data) -> (loc, scale)`` of q(z | x)."""

    def encode(self, *args: Any) -> Any: ...


@runtime_checkable
class HasLogEvidence(Protocol):
    r"""A model that knows its own :math:`\log p(x)` (a conjugate toy): a float, or a
    callable taking the model's arguments."""

    log_evidence: Any


@runtime_checkable
class HasConfig(Protocol):
    """A model that can be rebuilt from ``type(model)(**model.config)``."""

    config: dict


@runtime_checkable
class SquaredError(Protocol):
    """A model trained on squared error (``objective == "squared_error"``)."""

    objective: str


def objective(model: Any) -> str:
    """``"squared_error"`` for a deterministic autoencoder, else ``"elbo"``."""
    if isinstance(model, SquaredError) and model.objective == "squared_error":
        return "squared_error"
    return "elbo"


def model_and_guide(model: Any, guide: Callable | None = None) -> tuple[Callable, Callable]:
    """The Pyro ``(model, guide)`` functions of a pvae model, or of a function and ``guide``.

    Raises
    ------
    ValueError
        When ``model`` is not a pvae model and no callable ``guide`` is given.

    Examples
    --------
    >>> def model(x): ...
    >>> def guide(x): ...
    >>> model_and_guide(model, guide) == (model, guide)
    True
    """
    if guide is not None:
        model_fn = model.model if isinstance(model, PvaeModel) else model  # a pvae model's own
        if not callable(model_fn) or not callable(guide):
            raise ValueError(
                "`model` and `guide` must be callables (a Pyro model and guide), got "
                f"{type(model).__name__} and {type(guide).__name__}."
            )
        return model_fn, guide
    if isinstance(model, PvaeModel) and callable(model.model) and callable(model.guide):
        return model.model, model.guide
    raise ValueError(
        f"`model` must be a pvae model (with `.model` and `.guide` methods), got "
        f"{type(model).__name__}. For your own Pyro model function pass `guide=`."
    )


def pair_and_args(
    model: Any, args: tuple, guide: Callable | None = None
) -> tuple[Callable, Callable, tuple]:
    """``(model, guide, args)`` from either calling convention of the analysis functions.

    * the front door, as :func:`pvae.fit` and :func:`pvae.evaluate`: ``f(model, *data,
      guide=guide)`` or ``f(pvae_model, *data)``, the data also as one tuple ``(x, y)``;
    * Pyro's: ``f(model, guide, *args)``.

    Raises
    ------
    ValueError
        When no guide can be found.

    Examples
    --------
    >>> def model(x): ...
    >>> def guide(x): ...
    >>> pair_and_args(model, (guide, 1.0)) == (model, guide, (1.0,))
    True
    >>> pair_and_args(model, (1.0,), guide) == (model, guide, (1.0,))
    True
    """
    if guide is not None or isinstance(model, PvaeModel):
        if len(args) == 1 and isinstance(args[0], (tuple, list)):
            args = tuple(args[0])  # the data as fit and evaluate take it: (x, y)
        return (*model_and_guide(model, guide), tuple(args))
    if args and callable(args[0]) and not isinstance(args[0], type):
        return model, args[0], tuple(args[1:])
    raise ValueError(
        "`guide` is missing: pass it as `f(model, guide, *args)` (Pyro's convention), "
        "`f(model, *data, guide=guide)`, or a pvae model with `.model` and `.guide`; got "
        f"{type(model).__name__} and no callable `guide`."
    )
