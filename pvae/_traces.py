r"""The one importance-weight core: run the guide, replay the model, sum log-densities.

Every number pvae computes from a model/guide pair -- the ELBO, the importance-weighted
:math:`\log p(x)`, PSIS :math:`\hat k`, the ArviZ export, the ELBO decomposition -- goes
through this module, so one convention holds everywhere:

.. math::

    \log w = \log p(x, z) - \log q(z), \qquad z \sim q(z \mid x).

**Densities are the model's.** A site's term is its ``log_prob`` *masked* (``poutine.mask``,
``obs_mask``: a masked element contributes 0) and *unscaled*: ``poutine.scale`` -- a
:math:`\beta`-VAE's KL weight, a subsample's :math:`N/B` -- weights a training objective,
not the density, so it never enters a reported ELBO, KL or :math:`\log p(x)`.

**Latents the guide leaves to the model** (discrete sites, enumerated in the model as in
:class:`~pyro.infer.TraceEnum_ELBO`) are summed out exactly, with Pyro's convention: the
enumerated site's own factor is unmasked (it sums to one) and masks apply inside the sum.
A continuous latent the guide does not sample is refused.

**Per example or joint.** When every latent and observed site of the model, and every
site of the guide, lies in the plate over the examples (``"data"``), the weights factor
over that plate and are returned per example (``[K, N]``); otherwise (a global latent, a
guide that couples examples such as ``AutoMultivariateNormal``) they are the joint weights
of the whole data set (``[K]``), and :attr:`Structure.joint_reason` says why.

**Particles** run in a ``pyro.plate`` left of every plate of the model (Pyro's
``vectorize_particles``). The vectorized result is checked against unvectorized runs of its
first and last particle; a model that does not broadcast over that dimension (it fails, or
it sums over it with ``z.sum()``) is detected that way and run one particle at a time, and
:attr:`Weights.vectorized` and :attr:`Weights.reason` record it.

A randomly subsampled plate (``subsample_size`` smaller than the plate) is refused: each
call would score different data.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Collection
from typing import Any, NamedTuple

import pyro
import torch
from pyro import poutine
from pyro.distributions.util import scale_and_mask
from pyro.ops import packed
from pyro.ops.contract import contract_to_tensor
from pyro.poutine.messenger import Messenger
from pyro.poutine.util import site_is_subsample

__all__ = [
    "PARTICLES",
    "SHAPE_ERRORS",
    "Structure",
    "Weights",
    "contract_model",
    "enumerate_model_sites",
    "inspect",
    "log_density",
    "log_mean_exp",
    "log_weights",
    "max_plate_nesting",
    "particle_traces",
    "reduce_dims",
    "site_terms",
    "tensor_values",
    "unscaled",
    "vectorized",
]

PARTICLES = "_pvae_particles"
#: Element budget of one vectorized pass (site elements x particles).
MAX_ELEMENTS = 2**22
#: What a model that cannot run vectorized raises there (and not in a plain run).
SHAPE_ERRORS = (RuntimeError, ValueError, IndexError, TypeError, NotImplementedError)


class Structure(NamedTuple):
    """What one plain run of the guide and the replayed model shows."""

    #: Model latents the guide samples.
    guided: tuple[str, ...]
    #: Discrete model latents the guide leaves to the model: summed out exactly.
    enumerated: tuple[str, ...]
    #: Observed model sites (``pyro.deterministic`` sites excluded).
    observed: tuple[str, ...]
    #: Model latents with a finite support (guided or enumerated).
    discrete: tuple[str, ...]
    #: Every sample site of the guide, auxiliary ones included.
    guide_sites: tuple[str, ...]
    #: Batch dims in use; a particle plate sits at ``-(nesting + 1)``.
    nesting: int
    #: The plate over the examples and its dim, or ``None``.
    data_plate: str | None
    data_dim: int | None
    num_examples: int | None
    #: True when the weights factor over the data plate.
    per_example: bool
    #: Why they do not ("" when they do).
    joint_reason: str
    #: Value shape and event dim of every sample site of the model (one run), and of the guide.
    shapes: dict
    event_dims: dict
    #: Plate name -> dim, for every vectorized plate of model and guide.
    plate_dims: dict
    plate_sizes: dict
    #: Plates (by name) around each model and guide sample site.
    site_plates: dict


class Weights(NamedTuple):
    r"""Per-particle log-densities, float64, ``[K, N]`` per example or ``[K]`` joint."""

    #: :math:`\log w = \log p(x, z) - \log q(z)`.
    log_weight: torch.Tensor
    #: :math:`\log p(x \mid z)`: the observed sites (model-enumerated latents summed out).
    log_likelihood: torch.Tensor
    #: :math:`\log p(z)`: the guided latents' factors in the model.
    log_prior: torch.Tensor
    #: :math:`\log q(z)`: every sample site of the guide.
    log_guide: torch.Tensor
    per_example: bool
    #: False when the particles ran one at a time; ``reason`` says why.
    vectorized: bool
    reason: str


# ----------------------------------------------------------------------------- structure
def _sample_sites(trace):
    for name, site in trace.nodes.items():
        if site["type"] != "sample" or site["infer"].get("_deterministic"):
            continue
        if site_is_subsample(site):
            fn = site["fn"]
            if len(site["value"]) < fn.size:
                raise ValueError(
                    f"plate {name!r} subsamples {len(site['value'])} of its {fn.size} items, "
                    "so every call would score different data. Run the model on the full "
                    f"plate (`pyro.plate({name!r}, {fn.size})`, no `subsample_size`); "
                    "subsampling is for training."
                )
            continue
        yield name, site


def max_plate_nesting(*traces) -> int:
    """Batch dims the traces use: their plates' dims and their sites' batch shapes."""
    nesting = 0
    for trace in traces:
        for _, site in _sample_sites(trace):
            for frame in site["cond_indep_stack"]:
                if frame.vectorized and frame.dim is not None:
                    nesting = max(nesting, -frame.dim)
            nesting = max(nesting, len(site["fn"].batch_shape))
    return nesting


def _data_plate(model_trace, observed, wanted: str | None) -> tuple[str | None, int | None]:
    frames = {}
    shared = None
    for name in observed:
        plates = {f.name: f for f in model_trace.nodes[name]["cond_indep_stack"] if f.vectorized}
        frames.update(plates)
        shared = set(plates) if shared is None else shared & set(plates)
    shared = shared or set()
    if wanted is not None:
        if wanted not in shared:
            raise ValueError(
                f"`data_plate`={wanted!r} is not a plate around every observed site; plates "
                f"around all of them: {sorted(shared) or 'none'}."
            )
        return wanted, frames[wanted].dim
    if "data" in shared:
        return "data", frames["data"].dim
    if not shared:
        return None, None
    outer = min(shared, key=lambda p: frames[p].dim)  # the leftmost: over the examples
    return outer, frames[outer].dim


def _plates(site) -> tuple[str, ...]:
    return tuple(f.name for f in site["cond_indep_stack"] if f.vectorized)


def inspect(
    model: Callable, guide: Callable, args: tuple, kwargs: dict, *, data_plate: str | None = None
) -> Structure:
    """Run ``guide`` and the model replayed on it once, and check the pair (see the module).

    Raises
    ------
    ValueError
        For a randomly subsampled plate, a guide site that is not a model latent, a model
        site the guide samples but the model observes, a continuous model latent the guide
        does not sample, or a point-mass guide for a continuous latent.
    """
    with poutine.block(), torch.no_grad():
        guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
        model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(
            *args, **kwargs
        )
    guide_sites = dict(_sample_sites(guide_trace))
    model_sites = dict(_sample_sites(model_trace))
    auxiliary = [n for n, s in guide_sites.items() if s["infer"].get("is_auxiliary")]
    guided, enumerated, observed = [], [], []
    for name, site in model_sites.items():
        if site["is_observed"]:
            if name in guide_sites:
                raise ValueError(
                    f"`guide` samples site {name!r}, which the model observes. Remove it from "
                    "the guide (observed sites are data, not latents)."
                )
            observed.append(name)
        elif name in guide_sites:
            guided.append(name)
            fn = guide_sites[name]["fn"]
            continuous = not getattr(site["fn"], "has_enumerate_support", False)
            if continuous and type(fn).__name__ == "Delta" and not auxiliary:
                raise ValueError(
                    f"`guide` puts a point mass (Delta, e.g. AutoDelta) on the continuous "
                    f"latent {name!r}: q has no density there, so there are no importance "
                    "weights, ELBO or log p(x). A point mass is a MAP estimate; use a guide "
                    "with a density (AutoNormal, AutoMultivariateNormal) to evaluate."
                )
        elif getattr(site["fn"], "has_enumerate_support", False):
            enumerated.append(name)
        else:
            raise ValueError(
                f"the model's continuous latent {name!r} is not sampled by `guide`. Every "
                "continuous latent needs a guide site (discrete ones the guide leaves out are "
                "summed out exactly). Add it to the guide."
            )
    for name, site in guide_sites.items():
        if name not in model_sites and not site["infer"].get("is_auxiliary"):
            raise ValueError(
                f"`guide` samples {name!r}, which is not a site of the model. Rename it to a "
                "model latent, or mark it `infer={'is_auxiliary': True}`."
            )
    plate, dim = _data_plate(model_trace, observed, data_plate)
    reason = ""
    if plate is None:
        reason = "no plate holds every observed site"
    else:
        for name in guided + enumerated + observed:
            if plate not in _plates(model_trace.nodes[name]):
                kind = "observed site" if name in observed else "latent"
                reason = f"{kind} {name!r} is outside plate {plate!r}"
                break
        for name in guide_sites:
            if not reason and plate not in _plates(guide_trace.nodes[name]):
                reason = f"guide site {name!r} is outside plate {plate!r}"
    shapes, event_dims, plate_dims, plate_sizes, site_plates = {}, {}, {}, {}, {}
    for trace in (guide_trace, model_trace):
        for name, site in _sample_sites(trace):
            shapes[name] = torch.as_tensor(site["value"]).shape
            event_dims[name] = len(site["fn"].event_shape)
            site_plates[name] = _plates(site)
            for f in site["cond_indep_stack"]:
                if f.vectorized and f.dim is not None:
                    plate_dims[f.name], plate_sizes[f.name] = f.dim, f.size
    return Structure(
        guided=tuple(guided),
        enumerated=tuple(enumerated),
        observed=tuple(observed),
        discrete=tuple(
            n
            for n in guided + enumerated
            if getattr(model_sites[n]["fn"], "has_enumerate_support", False)
        ),
        guide_sites=tuple(guide_sites),
        nesting=max_plate_nesting(guide_trace, model_trace),
        data_plate=plate,
        data_dim=dim,
        num_examples=plate_sizes.get(plate) if plate is not None else None,
        per_example=not reason,
        joint_reason=reason,
        shapes=shapes,
        event_dims=event_dims,
        plate_dims=plate_dims,
        plate_sizes=plate_sizes,
        site_plates=site_plates,
    )


# ----------------------------------------------------------------------------- densities
def tensor_values(trace) -> None:
    """Make every sample value a tensor (Pyro accepts ``obs=1.0``; ``log_prob`` does not)."""
    for site in trace.nodes.values():
        if site["type"] == "sample" and not isinstance(site["value"], torch.Tensor):
            site["value"] = torch.as_tensor(site["value"], dtype=torch.get_default_dtype())


def log_density(site) -> torch.Tensor:
    """A site's ``log_prob``, masked and unscaled: the model's own density term."""
    return scale_and_mask(site["unscaled_log_prob"], mask=site["mask"])


class _Unscaled(Messenger):
    """Reset every site's ``poutine.scale`` to 1 (it must wrap the whole model)."""

    def _process_message(self, msg) -> None:
        msg["scale"] = 1.0


def unscaled(model: Callable) -> Callable:
    """``model`` with every ``poutine.scale`` (and subsample scaling) removed: its own density.

    Examples
    --------
    >>> import pyro.distributions as dist
    >>> def model():
    ...     with poutine.scale(scale=3.0):
    ...         pyro.sample("x", dist.Normal(0.0, 1.0), obs=torch.tensor(0.0))
    >>> poutine.trace(unscaled(model)).get_trace().nodes["x"]["scale"]
    1.0
    """
    return _Unscaled()(model)


def vectorized(fn: Callable, num: int, dim: int, name: str = PARTICLES) -> Callable:
    """``fn`` run inside ``pyro.plate(name, num, dim=dim)``."""

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with pyro.plate(name, num, dim=dim):
            return fn(*args, **kwargs)

    return wrapped


def _enumerating(model: Callable, sites: Collection[str], first_dim: int | None) -> Callable:
    """``model`` with ``sites`` enumerated in parallel from ``first_dim`` leftwards (``None``:
    after the dims an enclosing enumeration, e.g. a guide's, has taken)."""
    sites = frozenset(sites)

    def config(site):
        return {"enumerate": "parallel"} if site["name"] in sites else {}

    return poutine.enum(poutine.infer_config(model, config), first_available_dim=first_dim)


def contract_model(
    trace, enumerated: Collection[str], target: Collection[str], latent_only: bool = False
) -> torch.Tensor:
    r"""Sum the model's enumerated sites out of ``trace``: :math:`\log \sum_{z_m} p(\cdot)`.

    Factors follow TraceEnum_ELBO: an enumerated site's own factor is unmasked, every other
    factor is masked; none is scaled. Plates in ``target`` (names) are kept as dims, the
    others are summed over. ``latent_only`` keeps latent factors only (the prior term).
    Returns a tensor broadcastable to the trace's batch shape.
    """
    if not hasattr(trace, "plate_to_symbol"):
        trace.pack_tensors()
    tree, sum_dims = OrderedDict(), set()
    for name, site in _sample_sites(trace):
        if latent_only and site["is_observed"]:
            continue
        if name in enumerated:
            sum_dims.add(site["infer"]["_enumerate_symbol"])
            term = site["packed"]["unscaled_log_prob"]
        else:
            term = packed.scale_and_mask(
                site["packed"]["unscaled_log_prob"], mask=site["packed"]["mask"]
            )
        ordinal = frozenset(trace.plate_to_symbol[p] for p in _plates(site))
        tree.setdefault(ordinal, []).append(term)
    target = frozenset(trace.plate_to_symbol[p] for p in target if p in trace.plate_to_symbol)
    result = contract_to_tensor(tree, sum_dims, target_ordinal=target)
    return packed.unpack(result, trace.symbol_to_dim)


# ----------------------------------------------------------------------------- particles
def reduce_dims(t: torch.Tensor, width: int, keep: list[int]) -> torch.Tensor:
    """Sum ``t`` over every batch dim but ``keep`` (negative dims within ``width``)."""
    t = torch.as_tensor(t, dtype=torch.float64)
    if t.dim() < width:
        t = t.reshape((1,) * (width - t.dim()) + tuple(t.shape))
    t = t.movedim([t.dim() + d for d in keep], list(range(len(keep))))
    return t.reshape(tuple(t.shape[: len(keep)]) + (-1,)).sum(-1)


def site_terms(structure: Structure, guide_trace, model_trace, width: int, keep: list[int]):
    """(log_lik, log_prior, log_guide) of one run, each summed over all dims but ``keep``."""
    for trace in (guide_trace, model_trace):
        tensor_values(trace)
        trace.compute_log_prob()

    def total(trace, names):
        zero = torch.zeros((), dtype=torch.float64)
        return sum((reduce_dims(log_density(trace.nodes[n]), width, keep) for n in names), zero)

    log_q = total(guide_trace, structure.guide_sites)
    if not structure.enumerated:
        return total(model_trace, structure.observed), total(model_trace, structure.guided), log_q
    model_trace.pack_tensors()
    target = [PARTICLES] if PARTICLES in model_trace.plate_to_symbol else []
    if structure.per_example:
        target.append(structure.data_plate)
    joint = reduce_dims(contract_model(model_trace, structure.enumerated, target), width, keep)
    prior = contract_model(model_trace, structure.enumerated, target, latent_only=True)
    prior = reduce_dims(prior, width, keep)
    return joint - prior, prior, log_q


def enumerate_model_sites(model, structure: Structure, first_dim: int | None) -> Callable:
    """``model`` with the sites the guide leaves to it enumerated from ``first_dim`` leftwards."""
    if not structure.enumerated:
        return model
    return _enumerating(model, structure.enumerated, first_dim)


def particle_traces(model, guide, args, kwargs, num: int, structure: Structure):
    """Guide and replayed model traces of ``num`` particles in one vectorized run."""
    dim = -(structure.nesting + 1)
    guide_trace = poutine.trace(vectorized(guide, num, dim)).get_trace(*args, **kwargs)
    vec_model = enumerate_model_sites(vectorized(model, num, dim), structure, dim - 1)
    model_trace = poutine.trace(poutine.replay(vec_model, trace=guide_trace)).get_trace(
        *args, **kwargs
    )
    return guide_trace, model_trace


def _one_particle(model, guide, args, kwargs, structure: Structure, values=None):
    """(log_lik, log_prior, log_guide) of one unvectorized run, optionally at given values."""
    guide_fn = guide
    if values is not None:
        fixed = poutine.Trace()
        for name, value in values.items():
            fixed.add_node(name, type="sample", is_observed=False, value=value, infer={})
        guide_fn = poutine.replay(guide, trace=fixed)
    guide_trace = poutine.trace(guide_fn).get_trace(*args, **kwargs)
    model_fn = enumerate_model_sites(model, structure, -(structure.nesting + 1))
    model_trace = poutine.trace(poutine.replay(model_fn, trace=guide_trace)).get_trace(
        *args, **kwargs
    )
    keep = [structure.data_dim] if structure.per_example else []
    return site_terms(structure, guide_trace, model_trace, structure.nesting, keep)


def _particle_values(guide_trace, structure: Structure, index: int) -> dict | None:
    """The guide's values of particle ``index``, in the shapes of one unvectorized run."""
    width = structure.nesting + 1
    out = {}
    for name in structure.guide_sites:
        value = guide_trace.nodes[name]["value"]
        pos = value.dim() - structure.event_dims[name] - width
        if pos < 0 or value.shape[pos] <= index:
            return None
        one = value.select(pos, index)
        if one.numel() != structure.shapes[name].numel():
            return None
        out[name] = one.reshape(structure.shapes[name])
    return out


def _mismatch(vec: torch.Tensor, one: torch.Tensor) -> float:
    """Largest difference between vectorized and one-particle weights (0.0 if within rounding)."""
    if not torch.equal(torch.isfinite(vec), torch.isfinite(one)):
        return math.inf
    finite = torch.isfinite(one)
    diff = (vec - one).abs()[finite]
    if bool((diff > 1e-3 + 1e-4 * one.abs()[finite]).any()):
        return float(diff.max())
    return 0.0


def _vectorized_weights(model, guide, args, kwargs, num, structure, check: bool):
    guide_trace, model_trace = particle_traces(model, guide, args, kwargs, num, structure)
    width = structure.nesting + 1
    keep = [-width] + ([structure.data_dim] if structure.per_example else [])
    terms = site_terms(structure, guide_trace, model_trace, width, keep)
    shape = (num, structure.num_examples) if structure.per_example else (num,)
    terms = tuple(t.expand(shape) for t in terms)
    if check:
        for index in sorted({0, num - 1}):
            values = _particle_values(guide_trace, structure, index)
            if values is None:
                return None, "the guide's sites do not carry the particle dim"
            one = _one_particle(model, guide, args, kwargs, structure, values)
            vec = sum(t[index] for t in terms[:2]) - terms[2][index]
            gap = _mismatch(vec, one[0] + one[1] - one[2])
            if gap:
                return None, (
                    f"the vectorized weights differ from a one-particle run by {gap:.3g} nats: "
                    "the model or guide does not broadcast over a batch dim on the left "
                    "(e.g. it calls `z.sum()` instead of `z.sum(-1)`)"
                )
    return terms, ""


def log_weights(
    model: Callable,
    guide: Callable,
    args: tuple,
    kwargs: dict,
    num_particles: int,
    structure: Structure | None = None,
    *,
    vectorize: bool = True,
    check: bool = True,
    max_elements: int = MAX_ELEMENTS,
) -> Weights:
    """Importance weights of ``num_particles`` guide draws (see the module docstring).

    Particles are vectorized in chunks of at most ``max_elements`` site elements; the first
    chunk is checked against unvectorized runs (``check``), and a model that fails it, or
    fails to run vectorized at all while it runs one particle at a time, runs sequentially.
    """
    if structure is None:
        structure = inspect(model, guide, args, kwargs)
    elements = sum(s.numel() for s in structure.shapes.values()) or 1
    chunk = max(1, min(num_particles, max_elements // elements))
    parts, reason = [], "" if vectorize else "vectorize=False"
    with poutine.block():
        done = 0
        while vectorize and done < num_particles:
            n = min(chunk, num_particles - done)
            try:
                terms, reason = _vectorized_weights(
                    model, guide, args, kwargs, n, structure, check and done == 0
                )
            except SHAPE_ERRORS as err:
                _one_particle(model, guide, args, kwargs, structure)  # a real error re-raises
                terms, reason = None, f"the vectorized run failed ({type(err).__name__}: {err})"
            if terms is None:
                parts = []
                break
            parts.append(terms)
            done += n
        if not parts:
            rows = [
                _one_particle(model, guide, args, kwargs, structure) for _ in range(num_particles)
            ]
            parts = [tuple(torch.stack([r[i] for r in rows]) for i in range(3))]
    log_lik, log_prior, log_q = (torch.cat([p[i] for p in parts]) for i in range(3))
    return Weights(
        log_weight=log_lik + log_prior - log_q,
        log_likelihood=log_lik,
        log_prior=log_prior,
        log_guide=log_q,
        per_example=structure.per_example,
        vectorized=not reason,
        reason=reason,
    )


def log_mean_exp(log_w: torch.Tensor, dim: int = 0) -> torch.Tensor:
    r""":math:`\log \frac1K \sum_k e^{\log w_k}` along ``dim`` (the IWAE estimate)."""
    return torch.logsumexp(log_w, dim) - math.log(log_w.shape[dim])
