r"""Evaluation: the ELBO and an importance-weighted estimate of :math:`\log p(x)`.

For each example :math:`x` the guide proposes :math:`K` latents
:math:`z_k \sim q(z \mid x)` with importance weights
:math:`w_k = p(x, z_k) / q(z_k \mid x)`, and

.. math::

    \mathrm{ELBO} \approx \frac{1}{K}\sum_{k=1}^K \log w_k, \qquad
    \log p(x) \approx \log \frac{1}{K} \sum_{k=1}^K w_k
    = \operatorname{logsumexp}_k \log w_k - \log K .

The second estimate (the IWAE bound) is a lower bound in expectation that rises with
:math:`K` and reaches :math:`\log p(x)` as :math:`K \to \infty` (Burda et al., 2016).

Everything runs through Pyro traces, so any model/guide pair works. Particles are a
``pyro.plate("particles", K)`` outside every plate of the model, the data set is split
into chunks, and within a chunk all examples and particles are computed at once.

References
----------
1. Burda, Y., Grosse, R. and Salakhutdinov, R. (2016). Importance Weighted Autoencoders. ICLR.
2. Kingma, D. P. and Welling, M. (2014). Auto-Encoding Variational Bayes. ICLR.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import pyro
import pyro.poutine as poutine
import torch

from pvae.data import as_batches

__all__ = ["Evaluation", "evaluate"]

MAX_ELEMENTS = 2**22
"""Default element budget of one vectorised pass: particles x examples x data size."""


class Evaluation(NamedTuple):
    r"""What :func:`evaluate` returns; nats per example, means over the examples.

    Parameters
    ----------
    elbo, elbo_se : float
        ELBO estimate (mean over particles of :math:`\log w`) and its standard error
        over examples.
    log_likelihood, log_likelihood_se : float
        IWAE estimate of :math:`\log p(x)` with :math:`K` particles and its standard error.
    reconstruction : float
        :math:`\mathbb{E}_q[\log p(x \mid z)]`, the observed sites' log-likelihood.
    kl : float
        :math:`\mathbb{E}_q[\log q(z \mid x) - \log p(z)]`, so ``elbo = reconstruction - kl``.
    num_examples, num_particles : int

    Examples
    --------
    >>> ev = Evaluation(-3.1, 0.05, -2.9, 0.05, -2.6, 0.5, 100, 1000)
    >>> round(ev.reconstruction - ev.kl, 6) == ev.elbo <= ev.log_likelihood
    True
    """

    elbo: float
    elbo_se: float
    log_likelihood: float
    log_likelihood_se: float
    reconstruction: float
    kl: float
    num_examples: int
    num_particles: int


def _data_dim(trace: Any, num: int) -> int:
    """The dim of the plate named ``"data"`` (else a plate of size ``num``)."""
    sized = None
    for site in trace.nodes.values():
        for frame in site.get("cond_indep_stack", ()):
            if frame.name == "data":
                return frame.dim
            if frame.size == num and frame.dim is not None and sized is None:
                sized = frame.dim
    if sized is None:
        raise ValueError(
            f"found no `pyro.plate('data', ...)` over the {num} examples in the model. "
            "Wrap the per-example sites in `with pyro.plate('data', len(x)):`."
        )
    return sized


def _per_example(log_prob: torch.Tensor, width: int, data_dim: int) -> torch.Tensor:
    """Sum a site's log_prob over everything but the particle and data dims -> [K or 1, B or 1]."""
    if log_prob.dim() < width:
        log_prob = log_prob.reshape((1,) * (width - log_prob.dim()) + tuple(log_prob.shape))
    moved = log_prob.movedim((0, width + data_dim), (0, 1))
    return moved.reshape(moved.shape[0], moved.shape[1], -1).sum(-1)


def _vectorize(fn: Callable, num: int, dim: int) -> Callable:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with pyro.plate("particles", num, dim=dim):
            return fn(*args, **kwargs)

    return wrapped


def _log_weights(
    model: Callable, guide: Callable, batch: tuple, num: int, nesting: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log weights and observed log-likelihood, each [num, batch], for one chunk."""
    dim = -(nesting + 1)
    guide_trace = poutine.trace(_vectorize(guide, num, dim)).get_trace(*batch)
    model_trace = poutine.trace(
        poutine.replay(_vectorize(model, num, dim), trace=guide_trace)
    ).get_trace(*batch)
    b = batch[0].shape[0]
    data_dim = _data_dim(model_trace, b)
    width = nesting + 1
    log_w = torch.zeros(num, b, device=batch[0].device)
    log_lik = torch.zeros(num, b, device=batch[0].device)
    for trace, sign in ((model_trace, 1.0), (guide_trace, -1.0)):
        trace.compute_log_prob()
        for site in trace.nodes.values():
            if site["type"] != "sample":
                continue
            # The model's own density: `poutine.scale`/`mask` (a beta-VAE's beta, subsampling)
            # weight the training objective, not log p(x, z).
            term = _per_example(site["unscaled_log_prob"], width, data_dim)
            log_w = log_w + sign * term
            if sign > 0 and site["is_observed"]:
                log_lik = log_lik + term
    return log_w, log_lik


def _max_plate_nesting(model: Callable, guide: Callable, batch: tuple) -> int:
    guide_trace = poutine.trace(guide).get_trace(*batch)
    model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(*batch)
    dims = [
        -frame.dim
        for trace in (guide_trace, model_trace)
        for site in trace.nodes.values()
        for frame in site.get("cond_indep_stack", ())
        if frame.vectorized and frame.dim is not None
    ]
    return max(dims, default=0)


def evaluate(
    model: Any,
    data: Any,
    *,
    guide: Callable | None = None,
    num_particles: int = 1000,
    max_elements: int = MAX_ELEMENTS,
    seed: int | None = None,
    device: str | torch.device | None = None,
) -> Evaluation:
    r"""Estimate the ELBO and :math:`\log p(x)` per example by importance sampling.

    Parameters
    ----------
    model : object or callable
        A pvae model (with ``.model`` and ``.guide``), or a Pyro model function with
        ``guide``. The per-example sites must sit in ``pyro.plate("data", ...)`` and
        broadcast over an extra batch dim on the left (one more plate), as Pyro's
        ``vectorize_particles`` requires.
    data : tensor, ndarray, tuple of them, Dataset or DataLoader
        The examples; batches are passed as ``model(*batch)``.
    guide : callable, optional
        The Pyro guide, for a model function.
    num_particles : int
        :math:`K`, importance samples per example.
    max_elements : int
        Element budget of one vectorised pass: ``particles x examples x data size``
        (default :math:`2^{22}`). Examples are split into chunks, and particles too when
        one example alone exceeds it, so peak memory is a few tensors of about this many
        elements times the ratio of the widest layer to the data size.
    seed : int, optional
        Seed for the particles.
    device : str or torch.device, optional
        Moves the chunks there (the model must already be there).

    Returns
    -------
    Evaluation

    Raises
    ------
    ValueError
        For invalid arguments, a squared-error model (it has no likelihood), or a model
        without a data plate.

    Notes
    -----
    The standard errors are over examples: the standard deviation of the per-example
    estimates divided by :math:`\sqrt{N}`. A site outside the data plate (a global
    latent) is counted in every example's weight, so each example is scored as if it
    were the only one.

    Examples
    --------
    >>> import pyro.distributions as dist
    >>> def model(x):
    ...     with pyro.plate("data", len(x)):
    ...         z = pyro.sample("z", dist.Normal(0.0, 1.0))
    ...         pyro.sample("x", dist.Normal(z, 1.0), obs=x)
    >>> def guide(x):
    ...     with pyro.plate("data", len(x)):
    ...         pyro.sample("z", dist.Normal(x / 2, 0.5**0.5))   # the exact posterior
    >>> ev = evaluate(model, torch.zeros(3), guide=guide, num_particles=10)
    >>> round(ev.log_likelihood, 4), round(ev.elbo, 4)   # log N(0; 0, 2) both
    (-1.2655, -1.2655)
    """
    if not isinstance(num_particles, int) or isinstance(num_particles, bool) or num_particles < 1:
        raise ValueError(f"`num_particles` must be a positive integer, got {num_particles!r}.")
    if not isinstance(max_elements, int) or max_elements < 1:
        raise ValueError(f"`max_elements` must be a positive integer, got {max_elements!r}.")
    if getattr(model, "objective", "elbo") == "squared_error":
        raise ValueError(
            f"`model` ({type(model).__name__}) is trained on squared error and has no "
            "likelihood, so it has no ELBO or log p(x). Compare reconstruction errors instead."
        )
    if guide is None:
        if not (
            callable(getattr(model, "model", None)) and callable(getattr(model, "guide", None))
        ):
            raise ValueError(
                f"`model` must have `.model` and `.guide` methods, got {type(model).__name__}. "
                "For your own Pyro functions pass `guide=`."
            )
        model, guide = model.model, model.guide
    if seed is not None:
        pyro.set_rng_seed(seed)
    probe = next(iter(as_batches(data, batch_size=1)))
    size = max(1, probe[0][0].numel())
    per_pass = max(1, max_elements // size)  # (particle, example) pairs in one pass
    chunk = max(1, per_pass // num_particles)
    particles = min(num_particles, per_pass)
    batches = as_batches(data, batch_size=chunk)
    elbos, lls, recs = [], [], []
    nesting = None
    with torch.no_grad():
        for batch in batches:
            if device is not None:
                batch = tuple(t.to(device) for t in batch)
            if nesting is None:
                nesting = _max_plate_nesting(model, guide, batch)
            log_w, log_lik = [], []
            for start in range(0, num_particles, particles):
                k = min(particles, num_particles - start)
                w, lik = _log_weights(model, guide, batch, k, nesting)
                log_w.append(w)
                log_lik.append(lik)
            log_w = torch.cat(log_w).double()
            elbos.append(log_w.mean(0))
            lls.append(torch.logsumexp(log_w, 0) - math.log(num_particles))
            recs.append(torch.cat(log_lik).double().mean(0))
    elbo, ll, rec = torch.cat(elbos), torch.cat(lls), torch.cat(recs)
    n = elbo.numel()

    def se(values: torch.Tensor) -> float:
        return float(values.std() / math.sqrt(n)) if n > 1 else float("nan")

    return Evaluation(
        elbo=float(elbo.mean()),
        elbo_se=se(elbo),
        log_likelihood=float(ll.mean()),
        log_likelihood_se=se(ll),
        reconstruction=float(rec.mean()),
        kl=float(rec.mean() - elbo.mean()),
        num_examples=n,
        num_particles=num_particles,
    )
