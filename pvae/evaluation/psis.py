r"""PSIS :math:`\hat k`: can the importance weights :math:`p(x, z) / q(z)` be trusted?

:func:`psis_khat` draws from the guide, takes the log importance weights from the one core
(:mod:`pvae._traces`: the model's own masked, unscaled density; discrete latents the guide
leaves to the model summed out exactly) and fits a generalized Pareto tail to the largest
weights; its shape :math:`\hat k` says whether :math:`q` covers the posterior (Yao et al.
2018): below 0.5 good, 0.5 to 0.7 ok, above 0.7 bad. A guide equal to the posterior has
constant weights, which no tail fits: it reads ``"exact"``.

:func:`pareto_khat` is the tail fit itself, vectorized and without arviz, so it is the same
under every arviz version.

References
----------
1. Yao, Vehtari, Simpson, Gelman (2018). Yes, but did it work?: Evaluating variational
   inference. ICML.
2. Vehtari, Simpson, Gelman, Yao, Gabry (2024). Pareto smoothed importance sampling. JMLR 25.
3. Zhang, Stephens (2009). A new and efficient estimation method for the generalized Pareto
   distribution. Technometrics 51(3).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch

from pvae import _checks, _display, _traces
from pvae._seed import seeded
from pvae.models.protocol import pair_and_args

__all__ = ["EXACT_TOL", "KHAT_BAD", "KHAT_GOOD", "KHatResult", "pareto_khat", "psis_khat"]

#: Yao et al. (2018): below GOOD the importance weights are reliable, above BAD they are not.
KHAT_GOOD, KHAT_BAD = 0.5, 0.7
#: Log weights that vary by less than this (nats) are constant up to rounding: q is exact.
EXACT_TOL = 1e-3


def _gpd_shape(w: np.ndarray) -> np.ndarray:
    """Zhang-Stephens (2009) estimate of the generalized Pareto shape, row by row.

    ``w`` holds ascending positive exceedances, one row per fit. The weakly informative prior
    on the shape (Vehtari et al. 2024, as in the ``loo`` R package and ``az.psislw``) is
    applied at the end.
    """
    rows, n = w.shape
    m = 30 + int(math.sqrt(n))
    grid = 1.0 - np.sqrt(m / (np.arange(1, m + 1) - 0.5))
    b = grid / (3.0 * w[:, int(n / 4 + 0.5) - 1 : int(n / 4 + 0.5)]) + 1.0 / w[:, -1:]  # (R, m)
    k = np.log1p(-b[:, :, None] * w[:, None, :]).mean(-1)  # (R, m)
    with np.errstate(divide="ignore", invalid="ignore"):  # b = k = 0: a tail of ties
        profile = n * (np.log(-b / k) - k - 1.0)
    profile = np.where(np.isnan(profile), -np.inf, profile)  # such a grid point weighs 0
    with np.errstate(over="ignore", invalid="ignore"):
        weights = 1.0 / np.exp(profile[:, None, :] - profile[:, :, None]).sum(-1)
    weights = np.nan_to_num(weights, nan=0.0)
    weights = np.where(weights >= 10 * np.finfo(float).eps, weights, 0.0)
    b_post = (b * weights).sum(-1) / weights.sum(-1)
    k_post = np.log1p(-b_post[:, None] * w).mean(-1)
    return (n * k_post + 10 * 0.5) / (n + 10)


def pareto_khat(log_weights: Any) -> np.ndarray:
    r"""Pareto :math:`\hat k` of importance weights given on the log scale (last axis).

    The largest :math:`M = \lceil \min(S/5,\ 3\sqrt{S}) \rceil` of :math:`S` weights are fitted
    with a generalized Pareto distribution (Zhang & Stephens 2009, with the prior of Vehtari
    et al. 2024); :math:`\hat k` is its shape. Same estimate as ``az.psislw`` (with
    ``reff=1``), vectorized over leading axes and without arviz. Weights that are all equal
    (a proposal equal to the target) give ``-inf``; fewer than 5 tail weights above the
    cutoff give ``inf``, as in arviz.

    Parameters
    ----------
    log_weights : array-like, shape (..., S)
        Log importance weights, ``S >= 25`` along the last axis.

    Returns
    -------
    numpy.ndarray
        :math:`\hat k` of shape ``(...)`` (a 0-d array for 1-D input).

    Raises
    ------
    ValueError
        If there are fewer than 25 weights, or a NaN.

    Examples
    --------
    >>> import numpy as np
    >>> log_w = np.random.default_rng(0).normal(size=4000)  # log-normal weights: light tail
    >>> bool(pareto_khat(log_w) < 0.5)
    True
    """
    if np.iscomplexobj(log_weights) or (
        isinstance(log_weights, torch.Tensor) and log_weights.is_complex()
    ):
        raise ValueError(
            "`log_weights` must be real numbers (log importance weights), got complex values."
        )
    try:
        lw = np.asarray(log_weights, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"`log_weights` must be numbers (log importance weights), got "
            f"{type(log_weights).__name__}."
        ) from err
    if lw.ndim == 0 or lw.shape[-1] < 25:
        raise ValueError(
            f"`log_weights` needs at least 25 weights on its last axis, got shape {lw.shape}. "
            "Draw more particles."
        )
    if np.isposinf(lw).any():
        raise ValueError(
            "`log_weights` contains +inf: a weight p(x, z) / q(z) is infinite (q is 0 where p "
            "is not). Check the guide's support."
        )
    if np.isnan(lw).any():
        raise ValueError("`log_weights` contains NaN; check the model and guide log densities.")
    rows = lw.reshape(-1, lw.shape[-1])
    size = rows.shape[-1]
    tail_len = math.ceil(min(0.2 * size, 3.0 * math.sqrt(size)))
    ordered = np.sort(rows, axis=-1)
    top = ordered[:, -1:]
    with np.errstate(invalid="ignore"):
        shifted = ordered[:, -tail_len - 1 :] - np.where(np.isfinite(top), top, 0.0)
    exceed = np.exp(shifted[:, 1:]) - np.exp(shifted[:, :1])
    khat = np.full(rows.shape[0], np.inf)
    positive = (exceed > 0).sum(-1)
    regular = (positive == tail_len) & np.isfinite(top[:, 0])
    if regular.any():
        khat[regular] = _gpd_shape(exceed[regular])
    for i in np.flatnonzero(~regular):  # ties at the cutoff: fit the strict exceedances only
        if np.isneginf(top[i, 0]):
            khat[i] = np.nan
        elif np.isposinf(top[i, 0]):
            khat[i] = np.inf
        elif ordered[i, -1] == ordered[i, 0]:
            khat[i] = -np.inf
        elif positive[i] > 4:
            khat[i] = _gpd_shape(exceed[i, exceed[i] > 0][None])[0]
    return khat.reshape(lw.shape[:-1])


def _diagnosis(khat: float) -> str:
    if khat == -math.inf:
        return "exact"
    if khat < KHAT_GOOD:
        return "good"
    return "ok" if khat < KHAT_BAD else "bad"


class KHatResult(NamedTuple):
    r"""Pareto :math:`\hat k` of the importance weights :math:`p(x, z) / q(z)`.

    ``diagnosis`` reads :math:`\hat k` with the thresholds of Yao et al. (2018):
    ``"exact"`` when the weights are constant (q is the posterior, :math:`\hat k = -\infty`),
    ``"good"`` below 0.5 (q is close to the posterior; importance-sampling estimates are
    reliable), ``"ok"`` from 0.5 to 0.7 (usable, with slower convergence), ``"bad"`` above 0.7
    (q misses mass of the posterior: do not trust q or estimates weighted from it).
    """

    #: :math:`\hat k` of the joint weights, or the largest pointwise one.
    khat: float
    #: ``"exact"`` (constant weights), ``"good"`` (< 0.5), ``"ok"`` (0.5-0.7), ``"bad"``, or
    #: ``"discrete"`` (a guide over discrete latents: no tail to fit, ``khat`` is NaN).
    diagnosis: str
    #: One :math:`\hat k` per item of the data plate (amortized guides), else ``None``.
    pointwise: torch.Tensor | None
    #: How many :math:`\hat k` exceed 0.7 (of ``num_points``).
    num_bad: int
    #: Number of :math:`\hat k` values: the data-plate size, or 1.
    num_points: int
    num_particles: int
    #: The plate the weights were split over, or ``None``.
    plate: str | None
    #: False when the particles ran one at a time; ``reason`` says why.
    vectorized: bool = True
    reason: str = ""

    __repr__ = _display.record_repr

    def _repr_html_(self) -> str:
        fields = {"khat": self.khat, "diagnosis": self.diagnosis}
        fields.update(num_bad=f"{self.num_bad} of {self.num_points} above 0.7")
        fields.update(num_particles=self.num_particles, plate=self.plate or "-")
        extra = ""
        if self.pointwise is not None:
            spark = _display.sparkline(sorted(self.pointwise.tolist()))
            extra = f"pointwise k-hat, sorted: {spark}" if spark else ""
        notes = ["thresholds (Yao et al. 2018): good < 0.5 <= ok < 0.7 <= bad", self.reason]
        return _display.html_record("KHatResult", fields, notes=notes, extra=extra)


def psis_khat(
    model: Any,
    *args: Any,
    guide: Callable | None = None,
    num_particles: int = 10_000,
    vectorize: bool = True,
    seed: int | None = None,
    **kwargs: Any,
) -> KHatResult:
    r"""Check a guide with the Pareto :math:`\hat k` of its importance weights (PSIS).

    With :math:`z^{(s)} \sim q` the log importance weights are

    .. math:: \log w_s = \log p(x, z^{(s)}) - \log q(z^{(s)}), \qquad s = 1, \dots, S,

    and :math:`\hat k` is the shape of a generalized Pareto distribution fitted to the largest
    weights (:func:`pareto_khat`). Yao et al. (2018) read it as

    * :math:`\hat k < 0.5`: good -- q is close to the posterior;
    * :math:`0.5 \le \hat k < 0.7`: ok -- usable, importance sampling converges slowly;
    * :math:`\hat k \ge 0.7`: bad -- q misses posterior mass; do not trust it.

    Weights that vary by less than :data:`EXACT_TOL` nats are constant up to rounding: the
    guide is the posterior, :math:`\hat k = -\infty` and the diagnosis is ``"exact"``.

    When the examples of the data plate are independent given the guide (an amortized guide
    with local latents, the plate ``"data"`` of a VAE), the weights factor over the plate and
    one :math:`\hat k` is computed per data point: ``pointwise`` holds them, ``khat`` is the
    largest, ``num_bad`` counts those above 0.7. Otherwise (global latents) the joint weights
    of the whole data set give one :math:`\hat k`.

    *Discrete latents.* The weights of a guide over discrete latents only take finitely many
    values and are bounded wherever q covers the posterior's support, so their tail index
    is :math:`k \le 0` and a Pareto fit to tied values measures nothing; a q that puts no
    mass on some posterior value is not detected either (its weights are never drawn).
    Such a guide reads ``"exact"`` when its weights are constant and ``"discrete"``
    otherwise, with :math:`\hat k` = NaN and a ``reason``: :func:`pvae.compare` gives its
    exact KL instead.

    Called as ``psis_khat(model, guide, *args)`` (Pyro's convention), or through the front
    door ``psis_khat(model, *data, guide=guide)`` / ``psis_khat(vae, x)``.

    Parameters
    ----------
    model : callable or pvae model
    *args, **kwargs
        The guide (Pyro's convention) and the data, passed to both.
    guide : callable, optional
    num_particles : int
        Draws from the guide (at least 25; thousands for a stable :math:`\hat k`).
    vectorize : bool
        Draw particles in a vectorized plate (checked, and run one at a time by itself when
        the model cannot broadcast). ``False`` always loops.
    seed : int, optional
        Seeds the draws (the caller's generators are restored afterwards).

    Returns
    -------
    KHatResult

    Raises
    ------
    ValueError
        If ``num_particles < 25``, the guide samples no latent site, or the pair does not
        match (:func:`pvae._traces.inspect`).

    Examples
    --------
    >>> import pyro, pyro.distributions as dist
    >>> def model():
    ...     pyro.sample("x", dist.Normal(pyro.sample("z", dist.Normal(0.0, 1.0)), 1.0), obs=1.0)
    >>> def narrow():
    ...     pyro.sample("z", dist.Normal(0.5, 0.05))  # exact posterior: N(0.5, 0.71^2)
    >>> r = psis_khat(model, narrow, num_particles=2000)
    >>> r.diagnosis, r.khat > 0.7
    ('bad', True)
    >>> def exact():
    ...     pyro.sample("z", dist.Normal(0.5, 0.5**0.5))
    >>> psis_khat(model, exact, num_particles=100).diagnosis
    'exact'
    """
    num_particles = _checks.positive_int(
        "num_particles", num_particles, example=10_000, maximum=_checks.MAX_PARTICLES
    )
    if num_particles < 25:
        raise ValueError(
            f"`num_particles` must be an int >= 25 (the Pareto fit needs a tail), "
            f"got {num_particles!r}."
        )
    _checks.boolean("vectorize", vectorize)
    _checks.seed("seed", seed)
    model, guide, args = pair_and_args(model, args, guide)
    with torch.no_grad(), seeded(seed):
        structure = _traces.inspect(model, guide, args, kwargs)
        if not structure.guide_sites:
            raise ValueError(
                "`guide` samples no latent site of `model`, so there are no importance "
                "weights. Pass the guide that was trained for this model."
            )
        w = _traces.log_weights(
            model, guide, args, kwargs, num_particles, structure, vectorize=vectorize
        )
    log_w = w.log_weight.cpu().numpy()  # (S,) or (S, N)
    if np.isnan(log_w).any():
        raise ValueError(
            "the log importance weights contain NaN: the model or guide gives NaN log "
            "densities. Check their parameters."
        )
    spread = np.atleast_1d(log_w.max(0) - log_w.min(0))
    exact = np.isfinite(spread) & (spread <= EXACT_TOL)
    discrete = set(structure.guided) <= set(structure.discrete)
    reason = w.reason
    if discrete:  # bounded, tied weights: no tail to fit (see the docstring)
        khat = np.where(exact, -np.inf, np.nan)
        if not exact.all():
            reason = (
                "the guide's latents are discrete: its weights take finitely many values, so "
                "there is no Pareto tail to fit; pvae.compare gives the exact KL(q || p)"
            )
    else:
        khat = np.where(exact, -np.inf, np.atleast_1d(pareto_khat(log_w.T)))  # (N,) or (1,)
    worst = float(np.max(khat)) if not np.isnan(khat).any() else math.nan
    diagnosis = "discrete" if math.isnan(worst) else _diagnosis(worst)
    return KHatResult(
        khat=worst,
        diagnosis=diagnosis,
        pointwise=torch.from_numpy(khat) if structure.per_example else None,
        num_bad=int((khat >= KHAT_BAD).sum()),
        num_points=int(khat.size),
        num_particles=num_particles,
        plate=structure.data_plate if structure.per_example else None,
        vectorized=w.vectorized,
        reason=reason,
    )
