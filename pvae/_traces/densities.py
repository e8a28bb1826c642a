r"""Log-densities by pvae's convention: masked, unscaled, model-enumerated sites summed out.

A site's term is its ``log_prob`` masked (a masked element contributes 0) and unscaled
(``poutine.scale`` weights an objective, not the density). Discrete latents the guide leaves
to the model are enumerated in parallel and contracted with Pyro's
:func:`~pyro.ops.contract.contract_to_tensor`: an enumerated site's own factor is unmasked
(it sums to one), every other factor masked, as in ``TraceEnum_ELBO``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Collection
from typing import Any

import pyro
import torch
from pyro import poutine
from pyro.distributions.util import scale_and_mask
from pyro.ops import packed
from pyro.ops.contract import contract_to_tensor
from pyro.poutine.messenger import Messenger

from pvae._traces.structure import PARTICLES, Structure, plates_of, sample_sites
from pvae._traces.zeros import exact_log_probs

__all__ = [
    "contract_model",
    "enumerate_model_sites",
    "log_density",
    "reduce_dims",
    "site_terms",
    "tensor_values",
    "unscaled",
    "vectorized",
]


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
    for name, site in sample_sites(trace):
        if latent_only and site["is_observed"]:
            continue
        if name in enumerated:
            sum_dims.add(site["infer"]["_enumerate_symbol"])
            term = site["packed"]["unscaled_log_prob"]
        else:
            term = packed.scale_and_mask(
                site["packed"]["unscaled_log_prob"], mask=site["packed"]["mask"]
            )
        ordinal = frozenset(trace.plate_to_symbol[p] for p in plates_of(site))
        tree.setdefault(ordinal, []).append(term)
    target = frozenset(trace.plate_to_symbol[p] for p in target if p in trace.plate_to_symbol)
    result = contract_to_tensor(tree, sum_dims, target_ordinal=target)
    return packed.unpack(result, trace.symbol_to_dim)


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
        exact_log_probs(trace)

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
