"""Generative models as Pyro model/guide pairs: VAE, ConditionalVAE, Autoencoder.

Every model is a ``torch.nn.Module`` whose ``model``/``guide`` methods SVI trains
directly (sites ``"z"``, ``"x"``, plate ``"data"``) and that satisfies
:class:`~pvae.models.protocol.PvaeModel`; it has a JSON-serialisable ``config``
(:data:`MODELS` ``[type(m).__name__](**m.config)`` rebuilds the architecture unless
``config["custom"]``), ``x_dim``, ``z_dim``, a settable ``beta``, ``objective``
(``"elbo"`` or ``"squared_error"``), ``elbo_terms(x, *args) -> ELBOTerms``
(:class:`~pvae.models.protocol.HasELBOTerms`), and takes ``seed=`` for its initial weights.

Modules: :mod:`~pvae.models.vae`, :mod:`~pvae.models.cvae`,
:mod:`~pvae.models.autoencoder` (the models); :mod:`~pvae.models.networks` and
:mod:`~pvae.models.likelihoods` (their parts); :mod:`~pvae.models.terms` (ELBO terms and
the KL weight beta); :mod:`~pvae.models.latent` (interpolation, traversal);
:mod:`~pvae.models.base` (shared plumbing); :mod:`~pvae.models.registry` (:data:`MODELS`);
:mod:`~pvae.models.protocol` (what a pvae model offers).

Names are imported on first use, so reading :data:`MODELS`'s names (as the ``pvae``
command does for ``--help``) does not import torch.

Examples
--------
>>> from pvae.models import VAE
>>> VAE(x_dim=64, z_dim=8, seed=0).config["seed"]
0
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pvae.models.registry import MODELS

# public name -> the module that defines it
_EXPORTS = {
    "VAE": "pvae.models.vae",
    "ConditionalVAE": "pvae.models.cvae",
    "Autoencoder": "pvae.models.autoencoder",
    "SemiSupervisedVAE": "pvae.models.semisupervised",
    "MixtureVAE": "pvae.models.mixture",
    "ELBOTerms": "pvae.models.terms",
    "KLWeightMessenger": "pvae.models.terms",
    "LIKELIHOODS": "pvae.models.likelihoods",
    "BernoulliLikelihood": "pvae.models.likelihoods",
    "CallableLikelihood": "pvae.models.likelihoods",
    "ContinuousBernoulliLikelihood": "pvae.models.likelihoods",
    "GaussianLikelihood": "pvae.models.likelihoods",
    "Likelihood": "pvae.models.likelihoods",
    "make_likelihood": "pvae.models.likelihoods",
    "ModelRegistry": "pvae.models.registry",
    "HasELBOTerms": "pvae.models.protocol",
    "PvaeModel": "pvae.models.protocol",
    "model_and_guide": "pvae.models.protocol",
}

__all__ = ["MODELS", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'pvae.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # explicit imports for type checkers and IDEs
    from pvae.models.autoencoder import Autoencoder  # noqa: F401
    from pvae.models.cvae import ConditionalVAE  # noqa: F401
    from pvae.models.likelihoods import (  # noqa: F401
        LIKELIHOODS,
        BernoulliLikelihood,
        CallableLikelihood,
        ContinuousBernoulliLikelihood,
        GaussianLikelihood,
        Likelihood,
        make_likelihood,
    )
    from pvae.models.mixture import MixtureVAE  # noqa: F401
    from pvae.models.protocol import HasELBOTerms, PvaeModel, model_and_guide  # noqa: F401
    from pvae.models.registry import ModelRegistry  # noqa: F401
    from pvae.models.semisupervised import SemiSupervisedVAE  # noqa: F401
    from pvae.models.terms import ELBOTerms, KLWeightMessenger  # noqa: F401
    from pvae.models.vae import VAE  # noqa: F401
