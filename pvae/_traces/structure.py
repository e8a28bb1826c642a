r"""What one plain run of a guide and the model replayed on it shows, checked.

:func:`inspect` runs the pair once and returns a :class:`Structure`: which model latents the
guide samples, which discrete ones it leaves to the model (summed out exactly), the observed
sites, the plate over the examples and whether the weights factor over it, and the shapes
every later run is checked against. It refuses what has no right number: a randomly
subsampled plate, a guide site the model lacks, a continuous latent the guide leaves out, a
point mass on a continuous latent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from pyro import poutine
from pyro.poutine.util import site_is_subsample

__all__ = [
    "PARTICLES",
    "SHAPE_ERRORS",
    "Structure",
    "inspect",
    "max_plate_nesting",
    "plates_of",
    "refuse_subsampling",
    "sample_sites",
]

PARTICLES = "_pvae_particles"
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


def sample_sites(trace):
    """The sample sites with a density (subsample and deterministic sites left out)."""
    for name, site in trace.nodes.items():
        if site["type"] != "sample" or site["infer"].get("_deterministic"):
            continue
        if site_is_subsample(site):
            continue
        yield name, site


def refuse_subsampling(trace) -> None:
    """Raise if a plate of ``trace`` ran on a subsample of its items."""
    for name, site in trace.nodes.items():
        if site["type"] == "sample" and site_is_subsample(site):
            size = site["fn"].size
            if len(site["value"]) < size:
                raise ValueError(
                    f"plate {name!r} subsamples {len(site['value'])} of its {size} items, "
                    "so every call would score different data. Run the model on the full "
                    f"plate (`pyro.plate({name!r}, {size})`, no `subsample_size`); "
                    "subsampling is for training."
                )


def max_plate_nesting(*traces) -> int:
    """Batch dims the traces use: their plates' dims and their sites' batch shapes."""
    nesting = 0
    for trace in traces:
        for _, site in sample_sites(trace):
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


def plates_of(site) -> tuple[str, ...]:
    """Names of the vectorized plates around a site."""
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
    refuse_subsampling(guide_trace)
    refuse_subsampling(model_trace)
    guide_sites = dict(sample_sites(guide_trace))
    model_sites = dict(sample_sites(model_trace))
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
            if plate not in plates_of(model_trace.nodes[name]):
                kind = "observed site" if name in observed else "latent"
                reason = f"{kind} {name!r} is outside plate {plate!r}"
                break
        for name in guide_sites:
            if not reason and plate not in plates_of(guide_trace.nodes[name]):
                reason = f"guide site {name!r} is outside plate {plate!r}"
    shapes, event_dims, plate_dims, plate_sizes, site_plates = {}, {}, {}, {}, {}
    for trace in (guide_trace, model_trace):
        for name, site in sample_sites(trace):
            shapes[name] = torch.as_tensor(site["value"]).shape
            event_dims[name] = len(site["fn"].event_shape)
            site_plates[name] = plates_of(site)
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
