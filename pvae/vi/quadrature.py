r""":math:`\log p(x) = \log \int p(x, z)\, dz` by numerical quadrature, for one or two dims.

A model with at most two scalar continuous latent dimensions has an evidence that a grid can
integrate: the latents are mapped to the real line (``biject_to(support)``, Jacobian
included), a coarse grid around the guide's draws is widened until the log joint is 40 nats
below its peak at the edges, and a fine grid around the resulting posterior is integrated with
Simpson's rule. Discrete latents are summed out exactly at every grid point. The answer is
kept only if Simpson's rule on every other grid point agrees with it to
:data:`RICHARDSON_TOL`: a kink or a jump in the integrand (Python control flow on a latent,
``torch.where``) would make it wrong, and gives ``None`` instead. The model's
density is its own (masked, unscaled), as everywhere in :mod:`pvae._traces`.

The grid runs vectorized in a plate left of the model's plates, checked against plain runs
of the model at two grid points; a model whose code does not broadcast is integrated one
point at a time on a smaller grid (one dimension only; two give ``None``).
"""

from __future__ import annotations

import math

import pyro
import torch
from pyro import poutine
from torch.distributions import biject_to

from pvae import _traces

__all__ = ["RICHARDSON_TOL", "log_evidence_by_quadrature"]

_GRID = "_pvae_grid"
#: Simpson's rule on the grid and on every other point of it must agree to this (nats); a
#: smooth integrand agrees to far less, a kink or a jump does not.
RICHARDSON_TOL = 1e-4


def _specs(structure: _traces.Structure, model, guide, args, kwargs):
    with torch.no_grad(), poutine.block():
        trace = poutine.trace(poutine.replay(model, trace=poutine.trace(guide).get_trace(
            *args, **kwargs
        ))).get_trace(*args, **kwargs)  # fmt: skip
    specs = []
    for name in structure.guided:
        if name in structure.discrete:
            continue
        fn = trace.nodes[name]["fn"]
        if fn.batch_shape.numel() != 1 or getattr(fn.support, "is_discrete", False):
            return None  # not a scalar, or not continuous (a count): no grid integral
        specs.append((name, biject_to(fn.support), fn.event_shape, fn.batch_shape))
    return specs


def _log_joint(model, args, kwargs, structure, specs, points, vectorize: bool):
    """Log joint (discrete latents summed out) plus log-Jacobian at each row of ``points``."""
    g = len(points)
    dim = -(structure.nesting + 1)
    data, logdet, i = {}, torch.zeros(g, dtype=torch.float64), 0
    for name, t, event, batch in specs:
        k = max(1, event.numel())
        u = points[:, i : i + k]
        shape = (g,) + (1,) * structure.nesting + tuple(event) if vectorize else None
        pts = u.reshape(shape) if vectorize else u.reshape(tuple(batch) + tuple(event))
        z = t(pts)
        logdet = logdet + t.log_abs_det_jacobian(pts, z).reshape(g, -1).sum(-1)
        data[name], i = z, i + k
    fixed = structure._replace(
        guided=(), guide_sites=(), enumerated=structure.discrete, per_example=False
    )
    fn = poutine.condition(model, data=data)
    with torch.no_grad(), poutine.block(), pyro.validation_enabled(False):
        if vectorize:
            fn = _traces.enumerate_model_sites(
                _traces.vectorized(fn, g, dim, _GRID), fixed, dim - 1
            )
        else:
            fn = _traces.enumerate_model_sites(fn, fixed, dim)
        trace = poutine.trace(fn).get_trace(*args, **kwargs)
        trace.compute_log_prob()
        _traces.exact_log_probs(trace)
        width = structure.nesting + (1 if vectorize else 0)
        keep = [dim] if vectorize else []
        names = [n for n in trace.nodes if trace.nodes[n]["type"] == "sample"]
        names = [n for n in names if n in set(structure.shapes)]
        if structure.discrete:
            trace.pack_tensors()
            target = [_GRID] if vectorize else []
            lp = _traces.contract_model(trace, structure.discrete, target)
            lp = _traces.reduce_dims(lp, width, keep)
        else:
            lp = sum(
                _traces.reduce_dims(_traces.log_density(trace.nodes[n]), width, keep)
                for n in names
            )
    return torch.nan_to_num(lp.reshape(-1) + logdet, nan=-math.inf)


def log_evidence_by_quadrature(model, guide, args, kwargs, structure) -> float | None:
    r""":math:`\log p(x)` of the data passed (a joint total), or ``None`` when it cannot be had."""
    specs = _specs(structure, model, guide, args, kwargs)
    if not specs:
        return None
    dims = sum(max(1, s[2].numel()) for s in specs)
    if dims > 2:
        return None
    with torch.no_grad(), poutine.block():
        draws = []
        for _ in range(64):
            tr = poutine.trace(guide).get_trace(*args, **kwargs)
            u = [t.inv(tr.nodes[n]["value"]).reshape(-1).to(torch.float64) for n, t, _, _ in specs]
            draws.append(torch.cat(u))
        u = torch.stack(draws)
    vectorize = True
    probe = u[:2]
    try:
        vec = _log_joint(model, args, kwargs, structure, specs, probe, True)
    except _traces.SHAPE_ERRORS:
        vectorize = False
    else:
        one = torch.cat(
            [_log_joint(model, args, kwargs, structure, specs, p[None], False) for p in probe]
        )
        vectorize = bool(torch.allclose(vec, one, rtol=1e-6, atol=1e-6))
    if not vectorize and dims > 1:
        return None

    def log_joint(points):
        if vectorize:
            return _log_joint(model, args, kwargs, structure, specs, points, True)
        rows = [_log_joint(model, args, kwargs, structure, specs, p[None], False) for p in points]
        return torch.cat(rows)

    def grid(center, half, size):
        axes = [
            torch.linspace(c - h, c + h, size, dtype=torch.float64)
            for c, h in zip(center, half, strict=True)
        ]
        mesh = torch.meshgrid(*axes, indexing="ij")
        pts = torch.stack([a.reshape(-1) for a in mesh], -1)
        return axes, pts, log_joint(pts).reshape(mesh[0].shape)

    from scipy.integrate import simpson

    sizes = (201, 4001) if dims == 1 else (61, 401)
    if not vectorize:
        sizes = (101, 801)
    center, half = u.mean(0), 10 * u.std(0).clamp(min=1e-2)
    for size in sizes:
        for _ in range(12):
            axes, pts, lp = grid(center, half, size)
            top = lp.max()
            if not torch.isfinite(top):
                half = half * 2
                continue
            edge = max(float(lp.select(d, j).max()) for d in range(dims) for j in (0, -1))
            if edge < float(top) - 40:
                break
            half = half * 2
        w = torch.softmax(lp.reshape(-1), 0).unsqueeze(-1)  # the posterior on the grid
        center = (w * pts).sum(0)
        sd = (w * (pts - center) ** 2).sum(0).sqrt()
        half = 12 * torch.maximum(sd, torch.stack([a[1] - a[0] for a in axes]))
    integrand = (lp - top).exp().numpy()
    fine, coarse = integrand, integrand[(slice(None, None, 2),) * dims]
    for d in reversed(range(dims)):
        fine = simpson(fine, x=axes[d].numpy(), axis=d)
        coarse = simpson(coarse, x=axes[d].numpy()[::2], axis=d)
    if not fine > 0 or abs(math.log(float(fine)) - math.log(float(coarse))) > RICHARDSON_TOL:
        return None  # a kink or a jump (control flow): Simpson's rule would not converge
    return float(top) + math.log(float(fine))
