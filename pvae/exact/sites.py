r"""What the exact engines need to know about a model's sample sites.

Shared by :mod:`pvae.exact.parallel` and :mod:`pvae.exact.sequential`: which sites are
latent (and enumerable), how a site's log-density enters the joint (Pyro's
``TraceEnum_ELBO`` convention), the one common ``poutine.scale``, and the refusals --
a latent without a finite support, a randomly subsampled plate, an observed value
outside its support.

The convention, for a latent :math:`z` and the observed sites :math:`x`:

.. math::

    \log p(x) = s \cdot \log \sum_z \prod_{\text{latent}} p(z_i \mid \cdot)
        \prod_{\text{observed}} p(x_j \mid \cdot)^{m_j}
        \; + \sum_{\text{observed, free of } z} s_j m_j \log p(x_j)

An enumerated site's own factor is unscaled and unmasked (it sums to one); a mask
:math:`m_j` on an observation applies inside the sum and the common scale :math:`s` outside
it, as ``TraceEnum_ELBO`` does, so a subsample of :math:`B` of :math:`N` items scaled by
:math:`N / B` gives :math:`(N/B) \sum_{b} \log p(x_b)`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pyro
import torch
from pyro.poutine.messenger import Messenger
from pyro.poutine.util import site_is_subsample

from pvae._traces.zeros import exact_log_probs

__all__ = [
    "RandomSubsample",
    "ScaleError",
    "check_observed",
    "plain_trace",
    "common_scale",
    "default_dtype",
    "exact_log_probs",
    "impossible_evidence",
    "is_deterministic",
    "label",
    "latent_sites",
    "no_finite_support",
    "to_float64",
    "unmask_latents",
    "watch_subsampling",
    "zero_observed",
]


@contextmanager
def default_dtype(dtype: torch.dtype = torch.float64) -> Iterator[None]:
    """Run the block with ``dtype`` as torch's default floating-point type."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def to_float64(value: Any) -> Any:
    """Floating-point tensors as float64; anything else unchanged."""
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.to(torch.float64)
    return value


def label(value: torch.Tensor) -> Any:
    """A readable, hashable label: an int, a float or a tuple of them."""
    if value.dim() == 0:
        v = float(value)
        return int(v) if v.is_integer() else v
    return tuple(label(v) for v in value)


def is_deterministic(site: dict) -> bool:
    """``pyro.deterministic`` sites (and ``obs_mask``'s merged site) hold no density."""
    return bool(site["infer"].get("_deterministic"))


def no_finite_support(name: str, fn: Any) -> ValueError:
    """The error for a latent site that cannot be enumerated."""
    kind = type(fn).__name__
    base = getattr(fn, "base_dist", None)
    if base is not None and getattr(base, "has_enumerate_support", False):
        return ValueError(
            f"Latent site {name!r} is a {type(base).__name__} with event dims (`.to_event`), "
            "whose joint values Pyro does not enumerate. Sample its elements in a "
            "`pyro.plate` instead of `.to_event()`: each is then enumerated on its own."
        )
    support = getattr(fn, "support", None)
    discrete = getattr(support, "is_discrete", False)
    what = "a countably infinite support" if discrete else "a continuous distribution"
    fix = (
        "Put a finite grid on it (e.g. `dist.Categorical` over a truncated range of counts)"
        if discrete
        else "Observe it, or approximate its posterior with a guide and SVI (`pvae.fit`)"
    )
    return ValueError(
        f"Latent site {name!r} ({kind}) has {what}, so it cannot be enumerated. {fix}."
    )


def latent_sites(trace) -> list[str]:
    """The latent sample sites of ``trace``, in trace order, all with a finite support."""
    names = []
    for name, site in trace.nodes.items():
        if site["type"] != "sample" or site["is_observed"] or site_is_subsample(site):
            continue
        if is_deterministic(site):
            continue
        if not getattr(site["fn"], "has_enumerate_support", False):
            raise no_finite_support(name, site["fn"])
        try:
            site["fn"].enumerate_support(expand=False)
        except NotImplementedError as err:  # e.g. a Binomial with per-item total_count
            raise ValueError(
                f"Latent site {name!r} ({type(site['fn']).__name__}) cannot list its support: "
                f"{str(err).rstrip('.')}. Use a Categorical over 0..max(total_count) with zero "
                "probability above each item's count."
            ) from None
        names.append(name)
    return names


def check_observed(trace) -> None:
    """Check observed values against their shapes and supports (the sample validation of
    torch's ``log_prob``), when Pyro's validation is on."""
    if not pyro.poutine.util.is_validation_enabled():
        return
    for name, site in trace.nodes.items():
        if site["type"] == "sample" and site["is_observed"] and not site_is_subsample(site):
            try:
                _validate_sample(site["fn"], site["value"])
            except ValueError as err:
                raise ValueError(f"Observed site {name!r}: {err}") from None


def _validate_sample(fn: Any, value: torch.Tensor) -> None:
    """torch's sample validation (shape and support), whether or not ``fn`` was built with
    validation; a distribution without it has its support checked."""
    validate = getattr(fn, "_validate_sample", None)
    if validate is not None:
        validate(value)
        return
    support = getattr(fn, "support", None)
    if support is not None and not bool(support.check(value).all()):
        raise ValueError(f"the observed value is outside the support ({support})")


#: What a plain run of a model with invalid parameters raises when nothing validated them
#: (torch's sampler on negative probabilities, a NaN where a shape was expected, ...).
_UNVALIDATED_ERRORS = (
    RuntimeError,
    ValueError,
    IndexError,
    TypeError,
    KeyError,
    AssertionError,
    NotImplementedError,
)


def plain_trace(model: Callable, args: tuple, kwargs: dict, dtype: torch.dtype):
    """One plain run of ``model`` (a Pyro trace), its observed values checked.

    It runs without Pyro's argument validation, which costs a constraint check at every
    site: every engine validates the distributions it scores over all the values it
    enumerates, a superset of this run's. If the run fails and validation is on, the
    model is run once more with it, so that an invalid parameter is reported as Pyro
    reports it. A plate that may draw a random subsample (``subsample_size`` below its
    size) is run once more under :class:`RandomSubsample`, which tells a drawn subsample
    from one passed in, and refused if it was drawn.
    """
    try:
        with default_dtype(dtype), torch.no_grad(), pyro.validation_enabled(False):
            plain = pyro.poutine.trace(model).get_trace(*args, **kwargs)
    except _UNVALIDATED_ERRORS:
        if not pyro.poutine.util.is_validation_enabled():
            raise
        with default_dtype(dtype), torch.no_grad():  # Pyro's own error, or a good run
            plain = pyro.poutine.trace(model).get_trace(*args, **kwargs)
    if any(_may_subsample(site) for site in plain.nodes.values()):
        watched, watch = watch_subsampling(model)
        with default_dtype(dtype), torch.no_grad():
            plain = pyro.poutine.trace(watched).get_trace(*args, **kwargs)
        watch.refuse()
    check_observed(plain)
    return plain


def _may_subsample(site: dict) -> bool:
    if site["type"] != "sample" or not site_is_subsample(site):
        return False
    fn = site["fn"]
    return fn.subsample_size is not None and fn.subsample_size < fn.size


class ScaleError(ValueError):
    """The factors of one sum carry different ``poutine.scale`` values (a modelling error)."""


def common_scale(scales: dict[str, Any]) -> float:
    """The one ``poutine.scale`` shared by every factor of the sum (Pyro's rule).

    Raises
    ------
    ValueError
        When the factors carry different scales, or a tensor-valued one.
    """
    values = {}
    for name, scale in scales.items():
        if isinstance(scale, torch.Tensor) and scale.numel() != 1:
            raise ScaleError(
                f"site {name!r} has an elementwise `poutine.scale` of shape "
                f"{tuple(scale.shape)}; exact enumeration supports one number per site. Use "
                "`poutine.mask` for elementwise weights of 0 and 1."
            )
        values[name] = float(scale)
    distinct = sorted(set(values.values()))
    if len(distinct) > 1:
        groups = {s: [n for n, v in values.items() if v == s] for s in distinct}
        listed = "; ".join(f"{s:g}: {', '.join(map(repr, n[:4]))}" for s, n in groups.items())
        raise ScaleError(
            "the sites summed over together must share one `poutine.scale` (as in Pyro's "
            f"TraceEnum_ELBO), got {len(distinct)} scales ({listed}). A scale multiplies "
            "log p(x) from outside the sum over latents; scale the whole model, or none of it."
        )
    return distinct[0] if distinct else 1.0


class RandomSubsample(Messenger):
    """Record plates that draw a random subsample (``subsample_size`` without ``subsample``).

    It must sit inside every other handler (wrap the model directly), so it sees the
    subsample message before anything has set its value.
    """

    def __init__(self) -> None:
        super().__init__()
        self.plates: list[tuple[str, int, int]] = []

    def _pyro_sample(self, msg: dict) -> None:
        if not site_is_subsample(msg) or msg["value"] is not None:
            return
        fn = msg["fn"]
        if fn.subsample_size is not None and fn.subsample_size < fn.size:
            self.plates.append((msg["name"], fn.subsample_size, fn.size))

    def refuse(self) -> None:
        """Raise if a plate subsampled at random."""
        if self.plates:
            name, size, full = self.plates[0]
            raise ValueError(
                f"plate {name!r} draws a random subsample of {size} of its {full} items on "
                "every call, so its exact posterior would be of different data each time. "
                f"Pass the items: `pyro.plate({name!r}, {full}, subsample=indices)` (scaled by "
                f"{full}/len(indices), as TraceEnum_ELBO scales it), or use the full plate."
            )


class _UnmaskLatents(Messenger):
    """Drop the masks of latent sites (it must wrap the whole model, outside every mask)."""

    def __init__(self, names=None) -> None:
        super().__init__()
        self.names = None if names is None else frozenset(names)

    def _process_message(self, msg: dict) -> None:
        if msg["type"] != "sample" or msg["is_observed"] or site_is_subsample(msg):
            return
        if self.names is None or msg["name"] in self.names:
            msg["mask"] = None


def unmask_latents(model: Callable, names=None) -> Callable:
    """``model`` with the masks of its latent sites (or of ``names``) removed.

    The convention gives an enumerated site's own factor no mask; Pyro's
    :func:`~pyro.infer.infer_discrete` masks it, so MAP and posterior draws run on this.
    """
    return _UnmaskLatents(names)(model)


def watch_subsampling(model: Callable) -> tuple[Callable, RandomSubsample]:
    """``model`` wrapped so that random subsampling is recorded (see :class:`RandomSubsample`)."""
    watch = RandomSubsample()
    return watch(model), watch


def zero_observed(trace) -> list[str]:
    """Observed sites of ``trace`` whose log-density is -inf somewhere."""
    return [
        name
        for name, site in trace.nodes.items()
        if site["type"] == "sample"
        and site["is_observed"]
        and not site_is_subsample(site)
        and "unscaled_log_prob" in site
        and bool((site["unscaled_log_prob"] == -math.inf).any())
    ]


def impossible_evidence(observed: list[str]) -> ValueError:
    """The refusal when :math:`p(x) = 0`: the posterior is undefined."""
    named = ", ".join(map(repr, observed[:8])) + (" ..." if len(observed) > 8 else "")
    which = f" (observed sites with a probability-0 value: {named})" if observed else ""
    return ValueError(
        "The evidence p(x) is 0, so log p(x) = -inf and the posterior p(z | x) is undefined: "
        f"the observed data are impossible under every assignment of the latent sites{which}."
        " Check the observed values against the model's likelihood."
    )
