r"""Test metrics of a trained model, as the demo, ``pvae train`` and ``pvae evaluate`` report them.

Nats per example. A model with a likelihood (``objective(model) == "elbo"``) gets the ELBO

.. math:: \mathrm{ELBO}(x) = \mathbb{E}_{q(z|x)}[\log p(x|z)] - \mathrm{KL}(q(z|x) \,\|\, p(z))
    \le \log p(x)

(the :math:`\beta = 1` model's, whatever ``beta`` it was trained with), the
importance-weighted estimate of :math:`\log p(x)` with :math:`K` samples (Burda et al.
2016), and the two terms, from :func:`pvae.evaluation.evaluate`; every model gets the squared
reconstruction error :math:`\|x - \hat x\|^2` that an autoencoder minimises.

References
----------
1. Burda, Y., Grosse, R. and Salakhutdinov, R. (2016). Importance Weighted Autoencoders. ICLR.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from pvae._checks import positive_int
from pvae._compat import RenamedKeys
from pvae.models.protocol import objective

__all__ = ["DEPRECATED_KEYS", "Metrics", "evaluate_model", "format_metrics"]

#: Metric names of pvae 0.1 -> their names since 0.2 (the old ones read until 0.3).
DEPRECATED_KEYS = {
    "log_likelihood": "log_evidence",
    "log_likelihood_se": "log_evidence_se",
    "kl": "kl_prior",
}


class Metrics(RenamedKeys):
    """A ``dict`` of metrics that also answers the pvae 0.1 names, with a warning.

    Iteration, ``keys()``, ``in`` and JSON see only the current names (``log_evidence``,
    ``kl_prior``); ``metrics["log_likelihood"]`` and ``metrics.get("log_likelihood")``
    return ``metrics["log_evidence"]`` with a :class:`DeprecationWarning`, until pvae 0.3.

    Examples
    --------
    >>> m = Metrics(log_evidence=-3.0)
    >>> list(m)
    ['log_evidence']
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     old = m["log_likelihood"]
    >>> old, caught[0].category.__name__
    (-3.0, 'DeprecationWarning')
    """

    what = "the metric"
    new_name = staticmethod(DEPRECATED_KEYS.get)


def evaluate_model(
    model: Any, x: Any, y: Any = None, *, num_particles: int = 100, progress: bool | None = None
) -> Metrics:
    r"""Test metrics of a trained model as a JSON-ready dict (nats per example).

    An ELBO model gets ``elbo``, ``log_evidence`` (importance-weighted, ``num_particles``
    samples), their standard errors ``elbo_se`` and ``log_evidence_se``, the two ELBO
    terms ``reconstruction`` and ``kl_prior``, and ``num_particles``; every model gets
    ``squared_error`` :math:`\|x - \hat x\|^2` with its standard error over examples, and
    ``num_examples``. The particles are seeded (``seed=0``): the same model and data give
    the same numbers.

    Parameters
    ----------
    model : VAE, ConditionalVAE or Autoencoder
        A trained pvae model.
    x : torch.Tensor
        Examples, shape ``(N, D)``.
    y : torch.Tensor, optional
        Labels, for a conditional model.
    num_particles : int
        Importance samples :math:`K` per example.
    progress : bool, optional
        Progress of :func:`pvae.evaluate` on stderr; ``False`` silences it.

    Returns
    -------
    Metrics
        A ``dict``; the names of pvae 0.1 (``log_likelihood``, ``kl``) still read.

    Examples
    --------
    >>> from pvae.models import Autoencoder
    >>> sorted(evaluate_model(Autoencoder(4, 2, seed=0), torch.rand(10, 4)))
    ['num_examples', 'squared_error', 'squared_error_se']
    """
    num_particles = positive_int("num_particles", num_particles, example=100)
    out = Metrics(num_examples=int(len(x)))
    args = (x,) if y is None else (x, y)
    if objective(model) == "elbo":
        from pvae.evaluation import evaluate

        data = x if y is None else args
        ev = evaluate(model, data, num_particles=num_particles, seed=0, progress=progress)
        out.update(
            elbo=ev.elbo,
            elbo_se=ev.elbo_se,
            log_evidence=ev.log_evidence,
            log_evidence_se=ev.log_evidence_se,
            reconstruction=ev.reconstruction,
            kl_prior=ev.kl_prior,
            num_particles=ev.num_particles,
        )
    with torch.no_grad():
        error = ((model.reconstruct(*args) - x) ** 2).reshape(len(x), -1).sum(-1)
    out["squared_error"] = float(error.mean())
    out["squared_error_se"] = float(error.std() / math.sqrt(len(x))) if len(x) > 1 else 0.0
    return out


def format_metrics(name: str, metrics: dict) -> str:
    """The metrics of :func:`evaluate_model` as the ``pvae`` command prints them.

    Examples
    --------
    >>> print(format_metrics("AE", {"squared_error": 1.5, "squared_error_se": 0.1,
    ...                             "num_examples": 10}))
    AE: squared reconstruction error 1.5000 ± 0.1000 per example (10 examples)
    """
    lines = []
    if "elbo" in metrics:
        lines.append(
            f"{name}: ELBO {metrics['elbo']:.3f} ± {metrics['elbo_se']:.3f}, "
            f"log p(x) ≈ {metrics['log_evidence']:.3f} ± {metrics['log_evidence_se']:.3f} "
            f"nats per example (K = {metrics['num_particles']}); "
            f"reconstruction {metrics['reconstruction']:.3f}, "
            f"KL(q || p(z)) {metrics['kl_prior']:.3f}"
        )
    lines.append(
        f"{name}: squared reconstruction error {metrics['squared_error']:.4f} "
        f"± {metrics['squared_error_se']:.4f} per example ({metrics['num_examples']} examples)"
    )
    return "\n".join(lines)
