r"""The ArviZ export: guide (or exact-posterior) draws as an :class:`arviz.InferenceData`.

SVI results go through the plots and tables used for MCMC (``az.plot_posterior``,
``az.plot_forest``, ``az.summary(kind="stats")``). Draws come from the guide, run with the
model replayed on them through the one core (:mod:`pvae._traces`), so its conventions hold:
a discrete latent the guide leaves to the model is drawn from its exact conditional
posterior given the guide's draw (:func:`pyro.infer.infer_discrete`), never from its prior;
a masked observation contributes nothing to the ``log_likelihood`` group.

Draws are vectorized in a plate left of every plate of the model (as
:class:`pyro.infer.Predictive` with ``parallel=True``), checked against plain runs; a model
whose code does not broadcast over that dimension runs one draw at a time, and the
``pvae_vectorized`` attribute says which ran.

ArviZ versions
--------------
This is the only pvae module that imports :mod:`arviz`, lazily, in :func:`_arviz`, which
also holds the one version check; ``import pvae`` never imports arviz. pvae supports arviz
0.2x (Python 3.10-3.11), whose container is ``InferenceData`` and whose ``from_dict`` takes
one keyword per group. arviz 1.x (Python >= 3.12) replaced it with :class:`xarray.DataTree`
and dropped ``from_pyro``; supporting it touches :func:`_arviz` (accept major version 1) and
:func:`_build`, which already receives a ``{group: {var: array}}`` dict and would pass it
whole to ``arviz_base.from_dict(groups, dims=dims, attrs=attrs)``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import infer_discrete
from pyro.poutine.util import site_is_subsample

from pvae import _checks, _traces
from pvae._seed import seeded
from pvae.exact import ExactPosterior
from pvae.exact.sites import unmask_latents
from pvae.models.protocol import PvaeModel, pair_and_args

__all__ = ["to_inference_data"]

_MAX_ELEMENTS = 2**21  # sample-site elements per vectorized pass (bounds memory)


def _arviz():
    """Import arviz on first use; the one place that knows which arviz pvae supports."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # 0.2x announces its refactor
            import arviz
    except ImportError as error:  # pragma: no cover - arviz is a dependency
        raise ImportError("the ArviZ export needs arviz: pip install 'arviz>=0.20,<1'") from error
    major = int(arviz.__version__.split(".")[0])
    if major != 0:
        raise ImportError(
            f"the ArviZ export supports arviz 0.2x (InferenceData), got arviz "
            f"{arviz.__version__}. Install 'arviz>=0.20,<1'."
        )
    return arviz


class _NotVectorized(Exception):
    """A site came out of the particles plate in the wrong shape."""


class _Sites:
    """Names, shapes and plate positions of the model's sites in one plain run."""

    def __init__(self, model, guide, args, kwargs, structure: _traces.Structure):
        with torch.no_grad(), poutine.block():
            guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
            trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(
                *args, **kwargs
            )
        self.latent, self.observed, self.shapes, self.event, self.plates = [], [], {}, {}, {}
        self.observed_values = {}
        for name, site in trace.nodes.items():
            if site["type"] != "sample" or site_is_subsample(site):
                continue
            value = torch.as_tensor(site["value"])
            deterministic = site["infer"].get("_deterministic")
            self.shapes[name], self.event[name] = value.shape, len(site["fn"].event_shape)
            batch = value.dim() - self.event[name]
            self.plates[name] = {
                f.name: batch + f.dim
                for f in site["cond_indep_stack"]
                if f.vectorized and f.dim is not None and -f.dim <= batch
            }
            if site["is_observed"] and not deterministic:
                self.observed.append(name)
                self.observed_values[name] = value
            else:
                self.latent.append(name)
        self.nesting = structure.nesting
        self.elements = sum(math.prod(s) for s in self.shapes.values()) or 1

    def dims(self, name: str) -> list[str]:
        by_position = {pos: plate for plate, pos in self.plates[name].items()}
        return [by_position.get(i, f"{name}_dim_{i}") for i in range(len(self.shapes[name]))]

    def batch(self, name: str) -> torch.Size:
        shape = self.shapes[name]
        return shape[: len(shape) - self.event[name]]


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


class _DrawsGuide:
    """A guide that replays draws from an exact posterior (``post.sample(n)``)."""

    def __init__(self, draws: dict[str, torch.Tensor], shapes: dict, events: dict, nesting: int):
        self.draws, self.shapes, self.events, self.nesting = draws, shapes, events, nesting
        self.index, self.num, self.vectorized = 0, 1, False

    def __call__(self, *args, **kwargs):
        for name, value in self.draws.items():
            shape, event = self.shapes[name], self.events[name]
            if self.vectorized:
                v = value[self.index : self.index + self.num]
                pad = self.nesting + event - len(shape)
                v = v.reshape(self.num, *([1] * pad), *shape)
            else:
                v = value[self.index]
            pyro.sample(name, dist.Delta(v, event_dim=event))


def _run(model, guide, args, kwargs, sites: _Sites, structure, start, num, vectorized):
    """One chunk of draws: ``{"group/site": tensor (num, *shape)}``."""
    if isinstance(guide, _DrawsGuide):
        guide.index, guide.num, guide.vectorized = start, num, vectorized
    dim = -(structure.nesting + 1)
    if vectorized:
        model = _traces.vectorized(model, num, dim)
        guide = _traces.vectorized(guide, num, dim)
    guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
    replayed = poutine.replay(model, trace=guide_trace)
    if structure.enumerated:  # their exact conditional posterior given the guide's draw
        marked = frozenset(structure.enumerated)
        config = poutine.infer_config(  # own factors unmasked, as the weights have them
            unmask_latents(replayed, marked),
            lambda s: {"enumerate": "parallel"} if s["name"] in marked else {},
        )
        first = dim - 1 if vectorized else dim
        replayed = infer_discrete(config, first_available_dim=first, temperature=1)
    model_trace = poutine.trace(replayed).get_trace(*args, **kwargs)
    model_trace.compute_log_prob()
    _traces.exact_log_probs(model_trace)
    predictive = poutine.uncondition(poutine.replay(model, trace=model_trace))
    predictive_trace = poutine.trace(predictive).get_trace(*args, **kwargs)
    out = {}
    for name in sites.latent:
        value = model_trace.nodes[name]["value"]
        out[f"posterior/{name}"] = _per_draw(value, num, sites.shapes[name], vectorized)
    for name in sites.observed:
        log_lik = _traces.log_density(model_trace.nodes[name])
        out[f"log_likelihood/{name}"] = _per_draw(
            log_lik.expand(model_trace.nodes[name]["fn"].batch_shape),
            num,
            sites.batch(name),
            vectorized,
        )
        value = predictive_trace.nodes[name]["value"]
        out[f"posterior_predictive/{name}"] = _per_draw(value, num, sites.shapes[name], vectorized)
    return out


def _draws(model, guide, args, kwargs, sites, structure, num, vectorize):
    """All draws, vectorized in chunks if the model allows (and the core's check agrees)."""
    reason = "" if vectorize else "vectorize=False"
    if vectorize and not isinstance(guide, _DrawsGuide):
        check = _traces.log_weights(model, guide, args, kwargs, 2, structure)
        vectorize, reason = check.vectorized, check.reason
    if vectorize:
        size = max(1, min(num, _MAX_ELEMENTS // sites.elements))
        try:
            parts = [
                _run(model, guide, args, kwargs, sites, structure, s, min(size, num - s), True)
                for s in range(0, num, size)
            ]
            return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}, True, ""
        except _NotVectorized:
            reason = "a site came out of the vectorized run in the wrong shape"
    parts = [_run(model, guide, args, kwargs, sites, structure, i, 1, False) for i in range(num)]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}, False, reason


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


def _numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu()
    return (t.double() if t.is_floating_point() else t).numpy()


def _build(groups: dict[str, dict[str, np.ndarray]], dims, attrs):
    """The one call into arviz that builds the container (see the module notes on 1.x)."""
    return _arviz().from_dict(**groups, dims=dims, attrs=attrs)


def _split(model, args, guide):
    """Which calling convention: ``(model, guide_or_posterior, *args)`` or the front door."""
    if guide is None and args and isinstance(args[0], ExactPosterior):
        return model, args[0], tuple(args[1:])
    if isinstance(guide, ExactPosterior):
        return model, guide, tuple(args)
    if guide is None and args and not callable(args[0]) and not isinstance(model, PvaeModel):
        raise ValueError(
            f"`guide` must be a Pyro guide (a callable) or an exact posterior "
            f"(`pvae.enumerate_posterior(...)`), got {type(args[0]).__name__}."
        )
    return pair_and_args(model, args, guide)


def to_inference_data(
    model: Any,
    *args: Any,
    guide: Any = None,
    num_samples: int = 1000,
    max_data: int | None = None,
    vectorize: bool = True,
    seed: int | None = None,
    **kwargs: Any,
):
    r"""Export guide (or exact-posterior) draws as an :class:`arviz.InferenceData`.

    Groups, with ``chain = 1`` and ``draw = num_samples``:

    * ``posterior`` -- every latent (and ``pyro.deterministic``) site of the model, each in
      the shape it has in *one* model trace; a discrete latent the guide leaves to the model
      is drawn from its exact posterior given the guide's draw;
    * ``posterior_predictive`` -- the observed sites re-drawn given each posterior draw;
    * ``log_likelihood`` -- :math:`\log p(x_i \mid z^{(s)})` pointwise over the batch dims of
      each observed site, masked elements 0 (what ``az.loo`` and ``az.waic`` read);
    * ``observed_data`` -- the observed values.

    Dimensions that belong to a ``pyro.plate`` are named after it (``"data"``). Draws from
    a guide are independent, so R-hat and ESS in ``az.summary`` mean nothing: use
    ``az.summary(idata, kind="stats")``. ``az.loo`` on these draws treats them as posterior
    draws; that holds only as far as :math:`q` is the posterior (check :func:`psis_khat`).

    Called as ``to_inference_data(model, guide, *args)``, or ``to_inference_data(model,
    *data, guide=guide)``, or ``to_inference_data(vae, x)`` for a pvae model.

    Parameters
    ----------
    model : callable or pvae model
    *args, **kwargs
        The guide (first, in Pyro's convention) and the data, passed to model and guide.
    guide : callable or exact posterior, optional
        A Pyro guide, or the result of :func:`pvae.exact.enumerate_posterior` (anything with
        ``.sample(n) -> {site: tensor}`` and ``.sites``), to draw exact and variational
        answers side by side.
    num_samples : int
        Number of draws.
    max_data : int, optional
        Keep only the first ``max_data`` items of the data plate: tensor arguments whose first
        dimension is the plate size are cut before drawing. Keeps VAE exports small.
    vectorize : bool
        Draw all samples in one pass inside a particles plate (checked; a loop when the
        model cannot broadcast). ``False`` always loops.
    seed : int, optional
        Seeds the draws (the caller's generators are restored afterwards).

    Returns
    -------
    arviz.InferenceData

    Raises
    ------
    ValueError
        On a bad ``num_samples``/``max_data``, a subsampled plate, a model/guide mismatch
        (:func:`pvae._traces.inspect`), or draws that do not match the model's sites.

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
    num_samples = _checks.positive_int("num_samples", num_samples, example=1000)
    _checks.optional(_checks.positive_int, "max_data", max_data, example=100)
    _checks.boolean("vectorize", vectorize)
    _checks.seed("seed", seed)
    model, guide, args = _split(model, args, guide)
    with seeded(seed):
        return _export(model, guide, args, kwargs, num_samples, max_data, vectorize)


def _export(model, guide, args, kwargs, num_samples, max_data, vectorize):
    exact = isinstance(guide, ExactPosterior)
    if not callable(guide) and not exact:
        raise ValueError(
            f"`guide` must be a Pyro guide (a callable) or an exact posterior with "
            f"`.sample(n)` (`pvae.exact.enumerate_posterior(...)`), got {type(guide).__name__}."
        )
    if exact:
        posterior = guide
        with torch.no_grad(), poutine.block():
            plain = poutine.trace(model).get_trace(*args, **kwargs)
        shapes = {n: torch.as_tensor(plain.nodes[n]["value"]).shape for n in posterior.sites}
        events = {n: len(plain.nodes[n]["fn"].event_shape) for n in posterior.sites}
        nesting = _traces.max_plate_nesting(plain)
        draws = dict(posterior.sample(num_samples))
        for name, value in draws.items():
            if name not in shapes:
                raise ValueError(f"exact draws hold `{name}`, which is not a latent model site.")
            if value.numel() != num_samples * shapes[name].numel():
                raise ValueError(
                    f"exact draws of `{name}` have shape {tuple(value.shape)}, expected "
                    f"{(num_samples, *shapes[name])}. Pass the arguments the posterior was "
                    "enumerated for (and no `max_data`)."
                )
            draws[name] = value.reshape(num_samples, *shapes[name])
        guide = _DrawsGuide(draws, shapes, events, nesting)
        if max_data is not None:
            raise ValueError("`max_data` cannot cut the data of an exact posterior's draws.")
    structure = _traces.inspect(model, guide, args, kwargs)
    if max_data is not None and structure.data_plate is not None:
        size = structure.plate_sizes.get(structure.data_plate, 0)
        if size > max_data:
            args, kwargs, cut = _slice_data(args, kwargs, size, max_data)
            if not cut:
                raise ValueError(
                    f"`max_data={max_data}` found no tensor argument of length {size} (the "
                    f"plate `{structure.data_plate}`) to cut. Pass the data as an argument, or "
                    "cut it yourself."
                )
            structure = _traces.inspect(model, guide, args, kwargs)
    sites = _Sites(model, guide, args, kwargs, structure)
    with torch.no_grad(), poutine.block():
        values, vectorized, reason = _draws(
            model, guide, args, kwargs, sites, structure, num_samples, vectorize
        )
    groups: dict[str, dict[str, np.ndarray]] = {
        "posterior": {},
        "posterior_predictive": {},
        "log_likelihood": {},
    }
    for key, value in values.items():
        group, name = key.split("/", 1)
        groups[group][name] = _numpy(value)[None]
    groups["observed_data"] = {n: _numpy(v) for n, v in sites.observed_values.items()}
    dims = {name: sites.dims(name) for name in sites.shapes}
    attrs = {
        "inference_library": "pyro",
        "pvae_draws": "exact posterior" if exact else "guide",
        "pvae_vectorized": int(vectorized),
        "pvae_reason": reason,
        "pvae_enumerated": ",".join(structure.enumerated),
    }
    return _build(groups, dims, attrs)
