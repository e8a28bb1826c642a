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

The weights come from the one importance-weight core, :mod:`pvae._traces`, so any
model/guide pair works and every convention there holds: the model's own (masked,
unscaled) density, discrete latents the guide leaves to the model summed out exactly,
particles vectorized in a plate left of the model's plates (checked, and run one at a time
for a model that does not broadcast), per-example numbers only where the examples are
independent given the guide. The data set is split into chunks, and within a chunk all
examples and particles are computed at once.

References
----------
1. Burda, Y., Grosse, R. and Salakhutdinov, R. (2016). Importance Weighted Autoencoders. ICLR.
2. Kingma, D. P. and Welling, M. (2014). Auto-Encoding Variational Bayes. ICLR.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from pvae import _checks, _display, _traces
from pvae._compat import renamed
from pvae._progress import ProgressBar
from pvae._seed import seeded
from pvae.data import as_batches
from pvae.models.protocol import model_and_guide, objective

__all__ = ["Evaluation", "evaluate"]

#: Default element budget of one vectorised pass (the core's: site elements x particles).
MAX_ELEMENTS = _traces.MAX_ELEMENTS
#: The most importance samples per example (:func:`evaluate`'s ``num_particles``).
MAX_PARTICLES = _checks.MAX_PARTICLES


class Evaluation(NamedTuple):
    r"""What :func:`evaluate` returns, in nats.

    Per example (means over the ``num_examples`` examples, standard errors over them) when
    ``per_example`` -- the examples are independent given the guide's draw -- otherwise the
    joint numbers of the whole data set (a model with global latents, or a guide that couples
    examples such as ``AutoMultivariateNormal``), with Monte Carlo standard errors over the
    particles.

    Parameters
    ----------
    elbo, elbo_se : float
        ELBO estimate (mean over particles of :math:`\log w`) and its standard error.
    log_evidence, log_evidence_se : float
        IWAE estimate of :math:`\log p(x)` with :math:`K` particles and its standard error
        (``log_likelihood`` in pvae 0.1, still readable for one release).
    reconstruction : float
        :math:`\mathbb{E}_q[\log p(x \mid z)]`, the observed sites' log-likelihood.
    kl_prior : float
        :math:`\mathbb{E}_q[\log q(z \mid x) - \log p(z)]`, so ``elbo = reconstruction -
        kl_prior`` (``kl`` in pvae 0.1).
    num_examples, num_particles : int
    per_example : bool
        Whether the numbers are per example (see above).
    vectorized : bool
        False when the particles ran one at a time; ``reason`` says why.
    reason : str

    Examples
    --------
    >>> ev = Evaluation(-3.1, 0.05, -2.9, 0.05, -2.6, 0.5, 100, 1000)
    >>> round(ev.reconstruction - ev.kl_prior, 6) == ev.elbo <= ev.log_evidence
    True
    """

    elbo: float
    elbo_se: float
    log_evidence: float
    log_evidence_se: float
    reconstruction: float
    kl_prior: float
    num_examples: int
    num_particles: int
    per_example: bool = True
    vectorized: bool = True
    reason: str = ""

    log_likelihood = renamed("Evaluation", "log_likelihood", "log_evidence")
    log_likelihood_se = renamed("Evaluation", "log_likelihood_se", "log_evidence_se")
    kl = renamed("Evaluation", "kl", "kl_prior")  # KL to the prior, not to the posterior

    def __str__(self) -> str:
        unit = f"per example, mean over {self.num_examples}" if self.per_example else "joint"
        return (
            f"Evaluation(nats {unit}, K={self.num_particles})\n"
            f"  ELBO            {self.elbo: .4f} ± {self.elbo_se:.2g}\n"
            f"  log p(x) (IWAE) {self.log_evidence: .4f} ± {self.log_evidence_se:.2g}\n"
            f"  reconstruction  {self.reconstruction: .4f}\n"
            f"  KL(q || p(z))   {self.kl_prior: .4f}"
        )

    def _repr_html_(self) -> str:
        unit = f"per example, mean over {self.num_examples}" if self.per_example else "joint"
        rows = [
            ("ELBO", self.elbo, self.elbo_se),
            (f"log p(x) (IWAE, K={self.num_particles})", self.log_evidence, self.log_evidence_se),
            ("reconstruction E_q[log p(x|z)]", self.reconstruction, None),
            ("KL(q || p(z))", self.kl_prior, None),
        ]
        table = _display.html_table(["", "nats", "± se"], [(a, b, c or "") for a, b, c in rows])
        notes = [f"nats {unit}", self.reason]
        return _display.html_record("Evaluation", tables=[table], notes=notes)


def _iwae_se(log_w: torch.Tensor) -> float:
    r"""Delta-method standard error of :math:`\log \frac1K \sum_k w_k`."""
    w = (log_w - log_w.max()).exp()
    return float(w.std() / (math.sqrt(len(w)) * w.mean())) if len(w) > 1 else math.nan


def _joint(model, guide, batch, num_particles, max_elements, structure) -> Evaluation:
    w = _traces.log_weights(
        model, guide, batch, {}, num_particles, structure, max_elements=max_elements
    )
    k = num_particles

    def mean_se(t):
        return float(t.mean()), float(t.std() / math.sqrt(k)) if k > 1 else math.nan

    elbo, elbo_se = mean_se(w.log_weight)
    return Evaluation(
        elbo=elbo,
        elbo_se=elbo_se,
        log_evidence=float(_traces.log_mean_exp(w.log_weight)),
        log_evidence_se=_iwae_se(w.log_weight),
        reconstruction=float(w.log_likelihood.mean()),
        kl_prior=float((w.log_guide - w.log_prior).mean()),
        num_examples=structure.num_examples or batch[0].shape[0],
        num_particles=k,
        per_example=False,
        vectorized=w.vectorized,
        reason=w.reason or structure.joint_reason,
    )


def evaluate(
    model: Any,
    data: Any,
    *,
    guide: Callable | None = None,
    num_particles: int = 1000,
    max_elements: int = MAX_ELEMENTS,
    seed: int | None = None,
    device: str | torch.device | None = None,
    progress: bool | None = None,
) -> Evaluation:
    r"""Estimate the ELBO and :math:`\log p(x)` by importance sampling.

    Parameters
    ----------
    model : object or callable
        A pvae model (with ``.model`` and ``.guide``), or a Pyro model function with
        ``guide``. Discrete latents the guide leaves to the model are summed out exactly.
    data : tensor, ndarray, tuple of them, Dataset or DataLoader
        The examples; batches are passed as ``model(*batch)``.
    guide : callable, optional
        The Pyro guide, for a model function.
    num_particles : int
        :math:`K`, importance samples per example.
    max_elements : int
        Element budget of one vectorised pass: ``particles x examples x data size``
        (default :math:`2^{22}`). Examples are split into chunks, and particles too when
        one example alone exceeds it.
    seed : int, optional
        Seeds the particles (the caller's generators are restored afterwards).
    device : str or torch.device, optional
        Moves the chunks there (the model must already be there); ``"auto"`` picks a GPU
        where there is one (:func:`pvae._checks.torch_device`).
    progress : bool, optional
        Progress over the examples (with the running ELBO) on stderr, as :func:`pvae.fit`
        shows it (:mod:`pvae._progress`); ``False`` silences it.

    Returns
    -------
    Evaluation

    Raises
    ------
    ValueError
        For invalid arguments (``num_particles`` above :data:`MAX_PARTICLES` included), a
        squared-error model (it has no likelihood), a model and guide that do not match
        (:func:`pvae._traces.inspect`) or fail on the data, and estimates that are not
        finite (an infinite or NaN log-density: never returned). A standard error is NaN
        only where there is none: over one example (per example) or one particle (joint).

    Notes
    -----
    Densities are the model's own: masked observations count for nothing, and
    ``poutine.scale`` (a :math:`\beta`-VAE's :math:`\beta`, a subsample's weight) does not
    enter. The examples are scored in chunks when they are independent given the guide
    (``per_example``); a model with global latents, or a guide that couples the examples, is
    scored on the whole data set at once, and the record holds the joint numbers.

    Examples
    --------
    >>> import pyro, pyro.distributions as dist
    >>> def model(x):
    ...     with pyro.plate("data", len(x)):
    ...         z = pyro.sample("z", dist.Normal(0.0, 1.0))
    ...         pyro.sample("x", dist.Normal(z, 1.0), obs=x)
    >>> def guide(x):
    ...     with pyro.plate("data", len(x)):
    ...         pyro.sample("z", dist.Normal(x / 2, 0.5**0.5))   # the exact posterior
    >>> ev = evaluate(model, torch.zeros(3), guide=guide, num_particles=10)
    >>> round(ev.log_evidence, 4), round(ev.elbo, 4)   # log N(0; 0, 2) both
    (-1.2655, -1.2655)
    """
    num_particles = _checks.positive_int("num_particles", num_particles, example=1000)
    if num_particles > MAX_PARTICLES:
        raise ValueError(
            f"`num_particles` must be at most {MAX_PARTICLES:,}, got {num_particles:,}: the IWAE "
            "estimate's error falls like 1/K, and thousands of particles are plenty. Pass "
            "e.g. `num_particles=1000`."
        )
    max_elements = _checks.positive_int("max_elements", max_elements, example=MAX_ELEMENTS)
    if objective(model) == "squared_error":
        raise ValueError(
            f"`model` ({type(model).__name__}) is trained on squared error and has no "
            "likelihood, so it has no ELBO or log p(x). Compare reconstruction errors instead."
        )
    if callable(data) and not isinstance(data, torch.Tensor):
        raise ValueError(
            f"`data` must be the examples, got a callable ({type(data).__name__}): `evaluate` "
            "takes `evaluate(model, data, guide=guide)`, not Pyro's `(model, guide, *args)`."
        )
    device = _checks.optional(_checks.torch_device, "device", device)
    progress = _checks.optional(_checks.boolean, "progress", progress)
    model, guide = model_and_guide(model, guide)
    with seeded(seed), torch.no_grad():
        return _evaluate(model, guide, data, num_particles, max_elements, device, progress)


def _per_example_guide(size: int, err: Exception) -> ValueError:
    return ValueError(
        f"the guide fails on a chunk of {size} examples ({type(err).__name__}: {err}); it may "
        "hold parameters per example (as AutoNormal over a local plate does). Raise "
        "`max_elements` so that all examples are scored in one pass."
    )


def _to(batch, device):
    return batch if device is None else tuple(t.to(device) for t in batch)


def _evaluate(model, guide, data, num_particles, max_elements, device, progress) -> Evaluation:
    probe = next(iter(as_batches(data, batch_size=1)), None)
    if probe is None:
        raise ValueError("`data` must hold at least one example, got none.")
    size = max(1, probe[0][0].numel())
    per_pass = max(1, max_elements // size)  # (particle, example) pairs in one pass
    chunk = max(1, per_pass // num_particles)
    batches = list(as_batches(data, batch_size=chunk))
    for batch in batches:
        for t in batch:
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise ValueError(
                    "`data` holds non-finite values (inf or NaN): the density of such data "
                    "is undefined. Remove or impute them first."
                )
    first = _to(batches[0], device)
    try:
        structure = _traces.inspect(model, guide, first, {})
    except _traces.SHAPE_ERRORS as err:
        if len(batches) == 1:
            if "`" in str(err):  # pvae's own message, naming the argument already
                raise
            raise ValueError(
                f"`model` and `guide` fail on `data` (a first chunk of shape "
                f"{[list(t.shape) for t in first]}): {type(err).__name__}: {err}"
            ) from err
        raise _per_example_guide(len(first[0]), err) from err
    if not structure.per_example:
        batch = first
        if len(batches) > 1:
            batch = _to(tuple(torch.cat(parts) for parts in zip(*batches, strict=True)), device)
            structure = _traces.inspect(model, guide, batch, {})
        return _finite(_joint(model, guide, batch, num_particles, max_elements, structure))
    elbos, lls, recs, kls = [], [], [], []
    vectorized, reason = True, ""
    total = sum(len(b[0]) for b in batches)
    bar = ProgressBar(progress, total, desc="evaluate", unit="example")
    for i, batch in enumerate(batches):
        batch = _to(batch, device)
        if i:
            try:
                structure = _traces.inspect(model, guide, batch, {})
            except _traces.SHAPE_ERRORS as err:
                raise _per_example_guide(len(batch[0]), err) from err
        if len(batches) > 1 and structure.num_examples != len(batch[0]):
            raise ValueError(
                f"the plate over the examples, {structure.data_plate!r}, has "
                f"{structure.num_examples} items in a chunk of {len(batch[0])} examples: the "
                "data plate must run over the first dimension of the data, and the guide must "
                "follow it (a guide with parameters per example, such as AutoNormal over a "
                "local plate, does not). Raise `max_elements` to score every example in one "
                "pass, or put the plate over the examples first."
            )
        w = _traces.log_weights(
            model, guide, batch, {}, num_particles, structure,
            check=i == 0, max_elements=max_elements,
        )  # fmt: skip
        if i == 0:
            vectorized, reason = w.vectorized, w.reason
        elbos.append(w.log_weight.mean(0))
        lls.append(_traces.log_mean_exp(w.log_weight))
        recs.append(w.log_likelihood.mean(0))
        kls.append((w.log_guide - w.log_prior).mean(0))
        bar.update(len(batch[0]), elbo=float(torch.cat(elbos).mean()))
    bar.close()
    elbo, ll, rec, kl = (torch.cat(t) for t in (elbos, lls, recs, kls))
    n = elbo.numel()

    def se(values: torch.Tensor) -> float:
        return float(values.std() / math.sqrt(n)) if n > 1 else float("nan")

    return _finite(
        Evaluation(
            elbo=float(elbo.mean()),
            elbo_se=se(elbo),
            log_evidence=float(ll.mean()),
            log_evidence_se=se(ll),
            reconstruction=float(rec.mean()),
            kl_prior=float(kl.mean()),
            num_examples=n,
            num_particles=num_particles,
            per_example=True,
            vectorized=vectorized,
            reason=reason,
        )
    )


def _finite(ev: Evaluation) -> Evaluation:
    """``ev``, or a ``ValueError`` when an estimate is not finite (never returned silently).

    The standard errors may be NaN: over one example (or one particle) there is none.
    """
    bad = [n for n in ("elbo", "log_evidence", "reconstruction", "kl_prior")
           if not math.isfinite(getattr(ev, n))]  # fmt: skip
    if bad:
        values = ", ".join(f"{n}={getattr(ev, n)}" for n in bad)
        raise ValueError(
            f"the estimates on `data` are not finite ({values}): some log p(x, z) or "
            "log q(z | x) is infinite or NaN, e.g. for values outside the model's support or "
            "beyond the float32 range (|x| > 3.4e38, or a square that overflows). Check the "
            "data and the model's parameters."
        )
    return ev
