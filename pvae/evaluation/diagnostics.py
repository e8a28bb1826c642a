r"""Diagnostics: ArviZ export and the PSIS :math:`\hat k` of a guide.

Two questions about a trained guide :math:`q`:

* *What does it say?* :func:`to_inference_data` turns guide draws (or draws from an exact
  posterior, :func:`pvae.exact.enumerate_posterior`) into an :class:`arviz.InferenceData`, so
  SVI results go through the plots and tables used for MCMC (``az.plot_posterior``,
  ``az.plot_forest``, ``az.summary``).
* *Can it be trusted?* :func:`psis_khat` fits a generalized Pareto tail to the importance
  weights :math:`p(x, z) / q(z)`; its shape :math:`\hat k` says whether :math:`q` covers the
  posterior (Yao et al. 2018).

A third, *did the latent code collapse?*, is answered by :mod:`pvae.evaluation.collapse`.

Draws are vectorized: model and guide run once inside a ``particles`` plate placed left of
every plate the model uses (as in :class:`pyro.infer.Predictive` with ``parallel=True``). A
model whose Python code does not broadcast over that extra dimension is detected (it fails,
or a site comes out in the wrong shape) and is run again one draw at a time.

ArviZ versions
--------------
This is the only pvae module that imports :mod:`arviz`, and it does so lazily, in
:func:`_arviz`, which also holds the one version check; ``import pvae`` never imports arviz.
pvae supports arviz 0.2x (Python 3.10-3.11), whose container is ``InferenceData`` and whose
``from_dict`` takes one keyword per group. arviz 1.x (Python >= 3.12) replaced it with
:class:`xarray.DataTree` and dropped ``from_pyro``. Supporting it touches two private
functions and nothing else: :func:`_arviz` accepts major version 1, and
:func:`_build_inference_data`, which already receives a ``{group: {var: array}}`` dict, passes
it whole to ``arviz_base.from_dict(groups, dims=dims, attrs=attrs)``. :func:`psis_khat` does not
use arviz at all: it fits the Pareto tail itself (:func:`pareto_khat`), so it is the same under
both versions.

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
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.poutine.util import site_is_subsample

__all__ = ["KHatResult", "pareto_khat", "psis_khat", "to_inference_data"]

#: Yao et al. (2018): below GOOD the importance weights are reliable, above BAD they are not.
KHAT_GOOD, KHAT_BAD = 0.5, 0.7
_PARTICLES = "_pvae_particles"
_MAX_ELEMENTS = 2**21  # sample-site elements per vectorized pass (bounds memory)


def _arviz():
    """Import arviz on first use; the one place that knows which arviz pvae supports."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # 0.2x announces its refactor
            import arviz
    except ImportError as error:  # pragma: no cover - arviz is a dependency
        raise ImportError(
            "pvae.evaluation.diagnostics needs arviz: pip install 'arviz>=0.20,<1'"
        ) from error
    major = int(arviz.__version__.split(".")[0])
    if major != 0:
        raise ImportError(
            f"pvae.evaluation.diagnostics supports arviz 0.2x (InferenceData), got arviz "
            f"{arviz.__version__}. Install 'arviz>=0.20,<1'."
        )
    return arviz


# --------------------------------------------------------------------------- traces
class _Site(NamedTuple):
    shape: torch.Size  # value shape in one trace
    event_dim: int
    plates: dict[str, int]  # plate name -> position in the value's batch dims
    observed: bool

    @property
    def batch(self) -> torch.Size:
        return self.shape[: len(self.shape) - self.event_dim]


class _Structure(NamedTuple):
    sites: dict[str, _Site]  # model sample sites, in trace order
    guide_sites: dict[str, _Site]  # latent model sites the guide samples
    nesting: int  # dims a particles plate must stay left of
    plate_sizes: dict[str, int]
    subsampled: tuple[str, ...]
    observed_values: dict[str, torch.Tensor]


class _NotVectorized(Exception):
    """A site came out of the particles plate in the wrong shape."""


def _records(trace, sizes: dict, subsampled: list) -> tuple[dict[str, _Site], int]:
    sites, nesting = {}, 0
    for name, site in trace.nodes.items():
        if site["type"] != "sample":
            continue
        if site_is_subsample(site):
            if len(site["value"]) < site["fn"].size:
                subsampled.append(name)
            continue
        fn, value = site["fn"], torch.as_tensor(site["value"])
        event_dim = len(fn.event_shape)
        batch = value.dim() - event_dim
        plates = {}
        for frame in site["cond_indep_stack"]:
            if frame.vectorized and frame.dim is not None:
                sizes[frame.name] = frame.size
                nesting = max(nesting, -frame.dim)
                if -frame.dim <= batch:
                    plates[frame.name] = batch + frame.dim
        nesting = max(nesting, len(fn.batch_shape), batch)
        observed = site["is_observed"] and not site["infer"].get("_deterministic")
        sites[name] = _Site(value.shape, event_dim, plates, bool(observed))
    return sites, nesting


def _inspect(model, guide, args, kwargs) -> _Structure:
    """Sites, plates and nesting of one (guide-replayed) model trace."""
    sizes, subsampled, guide_sites, guide_nesting = {}, [], {}, 0
    guide_trace = None
    if guide is not None:
        guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
        guide_sites, guide_nesting = _records(guide_trace, {}, [])
    model_fn = poutine.replay(model, trace=guide_trace) if guide else model
    trace = poutine.trace(model_fn).get_trace(*args, **kwargs)
    sites, nesting = _records(trace, sizes, subsampled)
    guide_sites = {n: s for n, s in guide_sites.items() if not s.observed and n in sites}
    observed = {
        n: torch.as_tensor(trace.nodes[n]["value"]) for n, s in sites.items() if s.observed
    }
    return _Structure(
        sites, guide_sites, max(nesting, guide_nesting), sizes, tuple(subsampled), observed
    )


def _per_draw(t: torch.Tensor, num: int, shape: torch.Size, vectorized: bool) -> torch.Tensor:
    """Reshape a (vectorized) value to ``(num, *shape)``, the shape of one model trace."""
    if not vectorized:
        if t.shape != shape:
            raise ValueError(
                f"a site changed shape between draws ({tuple(shape)} then {tuple(t.shape)}); "
                "export models whose sites keep one shape."
            )
        return t.unsqueeze(0)
    rest = t.shape[1:]
    if t.dim() == 0 or t.shape[0] != num or len(rest) < len(shape):
        raise _NotVectorized
    if tuple(rest) != (1,) * (len(rest) - len(shape)) + tuple(shape):
        raise _NotVectorized
    return t.reshape(num, *shape)


def _in_particles(fn, num: int, nesting: int):
    def vectorized(*args, **kwargs):
        with pyro.plate(_PARTICLES, num, dim=-(nesting + 1)):
            return fn(*args, **kwargs)

    return vectorized


def _traces(model, guide, args, kwargs, num: int, vectorized: bool, nesting: int):
    """Guide trace, model trace replayed on it, and the replayed model (for more runs)."""
    if vectorized:
        model, guide = _in_particles(model, num, nesting), _in_particles(guide, num, nesting)
    guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
    replayed = poutine.replay(model, trace=guide_trace)
    return guide_trace, poutine.trace(replayed).get_trace(*args, **kwargs), replayed


def _chunks(total: int, structure: _Structure) -> list[int]:
    elements = sum(math.prod(s.shape) for s in structure.sites.values()) or 1
    size = max(1, min(total, _MAX_ELEMENTS // elements))
    return [min(size, total - start) for start in range(0, total, size)]


def _draws(run: Callable[..., dict], num: int, structure: _Structure, vectorize: bool):
    """Call ``run(start, n, vectorized)`` over chunks of draws, one at a time if it must."""
    if vectorize:
        sizes = _chunks(num, structure)
        starts = np.cumsum([0, *sizes[:-1]]).tolist()
        try:
            parts = [run(start, n, True) for start, n in zip(starts, sizes, strict=True)]
            return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}, True
        except Exception:  # _NotVectorized, or model code that cannot broadcast over particles
            pass
    parts = [run(i, 1, False) for i in range(num)]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}, False


# --------------------------------------------------------------------------- export
class _DrawsGuide:
    """A guide that replays draws from an exact posterior (``post.sample(n)``)."""

    def __init__(self, draws: dict[str, torch.Tensor], structure: _Structure):
        self.draws, self.structure = draws, structure
        self.index, self.num, self.vectorized = 0, 1, False

    def __call__(self, *args, **kwargs):
        for name, value in self.draws.items():
            site = self.structure.sites[name]
            if self.vectorized:
                v = value[self.index : self.index + self.num]
                pad = self.structure.nesting + site.event_dim - len(site.shape)
                v = v.reshape(self.num, *([1] * pad), *site.shape)
            else:
                v = value[self.index]
            pyro.sample(name, dist.Delta(v, event_dim=site.event_dim))
        self.index += self.num


def _slice_data(args, kwargs, size: int, max_data: int):
    """Cut tensor arguments whose first dimension is the data-plate size."""
    cut = []

    def first(a):
        if isinstance(a, torch.Tensor) and a.dim() > 0 and a.shape[0] == size:
            cut.append(a)
            return a[:max_data]
        return a

    args, kwargs = tuple(first(a) for a in args), {k: first(v) for k, v in kwargs.items()}
    return args, kwargs, len(cut)


def _data_plate(names: list[set[str]], structure: _Structure) -> str | None:
    common = set.intersection(*names) if names else set()
    if not common:
        return None
    return (
        "data" if "data" in common else max(common, key=lambda p: structure.plate_sizes.get(p, 0))
    )


def _dims(name: str, site: _Site) -> list[str]:
    by_position = {pos: plate for plate, pos in site.plates.items()}
    return [by_position.get(i, f"{name}_dim_{i}") for i in range(len(site.shape))]


def _build_inference_data(groups: dict[str, dict[str, np.ndarray]], dims, attrs):
    """The one call into arviz that builds the container (see the module notes on 1.x)."""
    az = _arviz()
    return az.from_dict(**groups, dims=dims, attrs=attrs)


def to_inference_data(
    model: Callable,
    guide: Any,
    *args: Any,
    num_samples: int = 1000,
    max_data: int | None = None,
    vectorize: bool = True,
    **kwargs: Any,
):
    r"""Export guide (or exact-posterior) draws as an :class:`arviz.InferenceData`.

    Groups, with ``chain = 1`` and ``draw = num_samples``:

    * ``posterior`` -- every latent (and ``pyro.deterministic``) site of the model, each in
      the shape it has in *one* model trace (no padded dims for sites outside plates);
    * ``posterior_predictive`` -- the observed sites re-drawn given each posterior draw;
    * ``log_likelihood`` -- :math:`\log p(x_i \mid z^{(s)})` pointwise over the batch dims of
      each observed site (what ``az.loo`` and ``az.waic`` read);
    * ``observed_data`` -- the observed values.

    Dimensions that belong to a ``pyro.plate`` are named after it (``"data"``), so local
    latents of an amortized VAE keep the data dimension next to the observations.

    Draws from a guide are independent, so R-hat and ESS in ``az.summary`` mean nothing: use
    ``az.summary(idata, kind="stats")``. ``az.loo`` on these draws treats them as posterior
    draws; that holds only as far as :math:`q` is the posterior (check :func:`psis_khat`).

    Parameters
    ----------
    model : callable
        Pyro model.
    guide : callable or exact posterior
        Pyro guide taking the same arguments, or the result of
        :func:`pvae.exact.enumerate_posterior` (anything with ``.sample(n) -> {site: tensor}``
        and ``.sites``), to draw exact and variational answers side by side.
    *args, **kwargs
        Passed to model and guide.
    num_samples : int
        Number of draws.
    max_data : int, optional
        Keep only the first ``max_data`` items of the data plate: tensor arguments whose first
        dimension is the plate size are cut before drawing. Keeps VAE exports small.
    vectorize : bool
        Draw all samples in one pass inside a particles plate (falls back to a loop by itself
        when the model cannot broadcast). ``False`` always loops.

    Returns
    -------
    arviz.InferenceData

    Raises
    ------
    ValueError
        On a bad ``num_samples``/``max_data``, a subsampled plate, or draws that do not match
        the model's sites.

    Examples
    --------
    >>> import pyro, pyro.distributions as dist, torch
    >>> def model(x):
    ...     mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
    ...     with pyro.plate("data", len(x)):
    ...         pyro.sample("x", dist.Normal(mu, 1.0), obs=x)
    >>> def guide(x):
    ...     pyro.sample("mu", dist.Normal(x.sum() / (len(x) + 1), (len(x) + 1) ** -0.5))
    >>> idata = to_inference_data(model, guide, torch.tensor([1.0, 2.0, 3.0]), num_samples=200)
    >>> idata.posterior["mu"].shape, idata.log_likelihood["x"].dims
    ((1, 200), ('chain', 'draw', 'data'))
    """
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"`num_samples` must be a positive int, got {num_samples!r}.")
    if max_data is not None and (not isinstance(max_data, int) or max_data < 1):
        raise ValueError(f"`max_data` must be a positive int or None, got {max_data!r}.")
    exact = not callable(guide) and hasattr(guide, "sample")
    if not callable(guide) and not exact:
        raise ValueError(
            f"`guide` must be a Pyro guide (a callable) or an exact posterior with "
            f"`.sample(n)` (`pvae.exact.enumerate_posterior(...)`), got {type(guide).__name__}."
        )
    structure = _inspect(model, None if exact else guide, args, kwargs)
    if max_data is not None:
        observed_plates = [set(s.plates) for s in structure.sites.values() if s.observed]
        plate = _data_plate(observed_plates, structure)
        size = structure.plate_sizes.get(plate, 0)
        if size > max_data:
            args, kwargs, cut = _slice_data(args, kwargs, size, max_data)
            if not cut:
                raise ValueError(
                    f"`max_data={max_data}` found no tensor argument of length {size} (the "
                    f"plate `{plate}`) to cut. Pass the data as an argument, or cut it yourself."
                )
            structure = _inspect(model, None if exact else guide, args, kwargs)
    if structure.subsampled:
        raise ValueError(
            f"plate(s) {list(structure.subsampled)} subsample the data, so each draw sees other "
            "items. Export with full plates (use `max_data` to keep the export small)."
        )
    if exact:
        draws = dict(guide.sample(num_samples))
        for name, value in draws.items():
            site = structure.sites.get(name)
            if site is None or site.observed:
                raise ValueError(f"exact draws hold `{name}`, which is not a latent model site.")
            if value.numel() != num_samples * site.shape.numel():
                raise ValueError(
                    f"exact draws of `{name}` have shape {tuple(value.shape)}, expected "
                    f"{(num_samples, *site.shape)}. Pass the arguments the posterior was "
                    "enumerated for (and no `max_data`)."
                )
            draws[name] = value.reshape(num_samples, *site.shape)
        guide = _DrawsGuide(draws, structure)
    latent = [n for n, s in structure.sites.items() if not s.observed]
    observed = [n for n, s in structure.sites.items() if s.observed]

    def run(start: int, num: int, vectorized: bool) -> dict[str, torch.Tensor]:
        if exact:
            guide.index, guide.num, guide.vectorized = start, num, vectorized
        _, model_trace, replayed = _traces(
            model, guide, args, kwargs, num, vectorized, structure.nesting
        )
        predictive = poutine.trace(poutine.uncondition(replayed))
        predictive_trace = predictive.get_trace(*args, **kwargs)
        out = {}
        for name in latent:
            value = model_trace.nodes[name]["value"]
            out[f"posterior/{name}"] = _per_draw(
                value, num, structure.sites[name].shape, vectorized
            )
        for name in observed:
            site = structure.sites[name]
            node = model_trace.nodes[name]
            log_lik = node["fn"].log_prob(torch.as_tensor(node["value"]))
            out[f"log_likelihood/{name}"] = _per_draw(log_lik, num, site.batch, vectorized)
            value = predictive_trace.nodes[name]["value"]
            out[f"posterior_predictive/{name}"] = _per_draw(value, num, site.shape, vectorized)
        return out

    with torch.no_grad():
        values, vectorized = _draws(run, num_samples, structure, vectorize)
    groups: dict[str, dict[str, np.ndarray]] = {
        "posterior": {},
        "posterior_predictive": {},
        "log_likelihood": {},
    }
    for key, value in values.items():
        group, name = key.split("/", 1)
        groups[group][name] = _numpy(value)[None]
    groups["observed_data"] = {n: _numpy(v) for n, v in structure.observed_values.items()}
    dims = {name: _dims(name, site) for name, site in structure.sites.items()}
    attrs = {
        "inference_library": "pyro",
        "pvae_draws": "exact posterior" if exact else "guide",
        "pvae_vectorized": int(vectorized),
    }
    return _build_inference_data(groups, dims, attrs)


def _numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu()
    return (t.double() if t.is_floating_point() else t).numpy()


# --------------------------------------------------------------------------- PSIS k-hat
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
    profile = n * (np.log(-b / k) - k - 1.0)
    weights = 1.0 / np.exp(profile[:, None, :] - profile[:, :, None]).sum(-1)
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
    lw = np.asarray(log_weights, dtype=float)
    if lw.ndim == 0 or lw.shape[-1] < 25:
        raise ValueError(
            f"`log_weights` needs at least 25 weights on its last axis, got shape {lw.shape}. "
            "Draw more particles."
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
    if khat < KHAT_GOOD:
        return "good"
    return "ok" if khat < KHAT_BAD else "bad"


class KHatResult(NamedTuple):
    r"""Pareto :math:`\hat k` of the importance weights :math:`p(x, z) / q(z)`.

    ``diagnosis`` reads :math:`\hat k` with the thresholds of Yao et al. (2018):
    ``"good"`` below 0.5 (q is close to the posterior; importance-sampling estimates are
    reliable), ``"ok"`` from 0.5 to 0.7 (usable, with slower convergence), ``"bad"`` above 0.7
    (q misses mass of the posterior: do not trust q or estimates weighted from it).
    """

    #: :math:`\hat k` of the joint weights, or the largest pointwise one.
    khat: float
    #: ``"good"`` (< 0.5), ``"ok"`` (0.5-0.7) or ``"bad"`` (> 0.7), for ``khat``.
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


def psis_khat(
    model: Callable,
    guide: Callable,
    *args: Any,
    num_particles: int = 10_000,
    vectorize: bool = True,
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

    When every latent site of the guide sits in one plate (an amortized guide with local
    latents, the plate ``"data"`` of a VAE) and so does every observed site, the weights
    factor over that plate and one :math:`\hat k` is computed per data point: ``pointwise``
    holds them, ``khat`` is the largest, ``num_bad`` counts those above 0.7. Model sites the
    guide does not sample are drawn from the model and cancel from the weights. Densities
    are taken unscaled (``poutine.scale``, a :math:`\beta`-VAE's KL weight or subsampling,
    does not enter): :math:`\hat k` compares q with the posterior of the model as written,
    given the data passed.

    Parameters
    ----------
    model, guide : callable
        A Pyro model/guide pair.
    *args, **kwargs
        Passed to both.
    num_particles : int
        Draws from the guide (at least 25; thousands for a stable :math:`\hat k`).
    vectorize : bool
        Draw particles in a vectorized plate (falls back to a loop by itself when the model
        cannot broadcast). ``False`` always loops.

    Returns
    -------
    KHatResult

    Raises
    ------
    ValueError
        If ``num_particles < 25`` or the guide samples no latent site of the model.

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
    """
    if not isinstance(num_particles, int) or num_particles < 25:
        raise ValueError(
            f"`num_particles` must be an int >= 25 (the Pareto fit needs a tail), "
            f"got {num_particles!r}."
        )
    if not callable(guide):
        raise ValueError(f"`guide` must be a Pyro guide (a callable), got {type(guide).__name__}.")
    structure = _inspect(model, guide, args, kwargs)
    if not structure.guide_sites:
        raise ValueError(
            "`guide` samples no latent site of `model`, so there are no importance weights. "
            "Pass the guide that was trained for this model."
        )
    guided = list(structure.guide_sites)
    names = guided + [n for n, s in structure.sites.items() if s.observed]
    plate = _data_plate([set(structure.guide_sites[n].plates) for n in guided], structure)
    if plate is not None and not all(plate in structure.sites[n].plates for n in names):
        plate = None

    def log_density(trace, sites, num, vectorized):  # (num,) or (num, plate size)
        total = torch.zeros((), dtype=torch.float64)
        for name, site in sites.items():
            node = trace.nodes[name]
            log_prob = node["fn"].log_prob(torch.as_tensor(node["value"]))
            if node["mask"] is not None:
                log_prob = log_prob.masked_fill(~node["mask"], 0.0)
            log_prob = _per_draw(log_prob, num, site.batch, vectorized).double()
            if plate is None:
                total = total + log_prob.reshape(num, -1).sum(-1)
            else:
                other = [d for d in range(1, log_prob.dim()) if d != 1 + site.plates[plate]]
                total = total + (log_prob.sum(other) if other else log_prob)
        return total

    def run(start: int, num: int, vectorized: bool) -> dict[str, torch.Tensor]:
        guide_trace, model_trace, _ = _traces(
            model, guide, args, kwargs, num, vectorized, structure.nesting
        )
        log_p = log_density(model_trace, {n: structure.sites[n] for n in names}, num, vectorized)
        log_q = log_density(guide_trace, structure.guide_sites, num, vectorized)
        return {"log_w": log_p - log_q}

    with torch.no_grad():
        values, _ = _draws(run, num_particles, structure, vectorize)
    log_w = values["log_w"].cpu().numpy()
    khat = pareto_khat(log_w.T)  # (P,) or ()
    worst = float(np.max(khat))
    pointwise = torch.from_numpy(khat) if plate is not None else None
    return KHatResult(
        khat=worst,
        diagnosis=_diagnosis(worst),
        pointwise=pointwise,
        num_bad=int((khat >= KHAT_BAD).sum()),
        num_points=int(khat.size),
        num_particles=num_particles,
        plate=plate,
    )
