"""Generative models as Pyro model/guide pairs: VAE, ConditionalVAE, Autoencoder.

Every model is a ``torch.nn.Module`` whose ``model``/``guide`` methods SVI trains
directly (sites ``"z"``, ``"x"``, plate ``"data"``), with a JSON-serialisable ``config``
(``MODELS[type(m).__name__](**m.config)`` rebuilds the architecture unless
``config["custom"]``), ``x_dim``, ``z_dim``, a settable ``beta``, ``objective``
(``"elbo"`` or ``"squared_error"``) and ``elbo_terms(x, *args) -> ELBOTerms``.
"""

from pvae.models.autoencoder import Autoencoder
from pvae.models.cvae import ConditionalVAE
from pvae.models.likelihoods import (
    LIKELIHOODS,
    BernoulliLikelihood,
    CallableLikelihood,
    ContinuousBernoulliLikelihood,
    GaussianLikelihood,
    Likelihood,
    make_likelihood,
)
from pvae.models.vae import VAE, ELBOTerms

#: Model classes by name, used to rebuild a model from its saved ``config``.
MODELS: dict[str, type] = {
    "VAE": VAE,
    "ConditionalVAE": ConditionalVAE,
    "Autoencoder": Autoencoder,
}

__all__ = [
    "LIKELIHOODS",
    "MODELS",
    "Autoencoder",
    "BernoulliLikelihood",
    "CallableLikelihood",
    "ConditionalVAE",
    "ContinuousBernoulliLikelihood",
    "ELBOTerms",
    "GaussianLikelihood",
    "Likelihood",
    "VAE",
    "make_likelihood",
]
