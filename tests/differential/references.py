"""Independent references for the differential suite.

Nothing here imports pvae. Each number comes either from Pyro's own estimators
(:class:`~pyro.infer.TraceEnum_ELBO`, ``compute_marginals``, ``infer_discrete``,
``vectorized_importance_weights``) or from code written for this suite only: a brute-force
sum over every joint assignment of a model's discrete latents, and closed forms for
linear-Gaussian models (PPCA, conjugate Normal-Normal).

Conventions, as TraceEnum_ELBO has them: a latent that is summed out keeps its own factor
unscaled and unmasked (it sums to one); every other factor is masked; no factor is scaled
(pvae reports the model's density, so ``poutine.scale`` is removed with :func:`unscaled`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from pyro import poutine
from pyro.infer import TraceEnum_ELBO, config_enumerate
from pyro.poutine.messenger import Messenger
from pyro.poutine.util import site_is_subsample


# ----------------------------------------------------------------------------- handlers
class _Unscale(Messenger):
    """Reset every site's scale to 1; wrapped outermost, it runs after every inner scale."""

    def _pyro_sample(self, msg):
        msg["scale"] = 1.0


def unscaled(fn: Callable) -> Callable:
    """``fn`` with every ``poutine.scale`` and subsample scale removed."""
    return _Unscale()(fn)


def empty_guide(*args: Any, **kwargs: Any) -> None:
    """The guide of a fully model-enumerated model (TraceEnum_ELBO style)."""


def _masked(lp: torch.Tensor, mask: Any) -> torch.Tensor:
    if mask is None:
        return lp
    if isinstance(mask, bool):
        return lp if mask else torch.zeros_like(lp)
    return torch.where(mask, lp, torch.zeros((), dtype=lp.dtype))


def _data_sites(trace):
    for name, site in trace.nodes.items():
        if site["type"] != "sample" or site_is_subsample(site):
            continue
        if site["infer"].get("_deterministic"):
            continue
        yield name, site


# ----------------------------------------------------------------------------- TraceEnum
def traceenum_log_evidence(model, args=(), kwargs=None, *, nesting: int, scale: float = 1.0):
    """``-TraceEnum_ELBO.loss / scale`` with an empty guide: log p(x) of an enumerated model.

    TraceEnum_ELBO puts one common scale outside the log-sum-exp, so a model wrapped in
    ``poutine.scale(scale=s)`` has loss ``-s log p(x)``.
    """
    elbo = TraceEnum_ELBO(max_plate_nesting=nesting)
    with torch.no_grad():
        loss = elbo.loss(config_enumerate(model, "parallel"), empty_guide, *args, **(kwargs or {}))
    return -float(loss) / scale


def traceenum_elbo(model, guide, args=(), kwargs=None, *, nesting: int) -> float:
    """Exact ELBO of a discrete guide: TraceEnum_ELBO with the guide enumerated in parallel."""
    elbo = TraceEnum_ELBO(max_plate_nesting=nesting)
    with torch.no_grad():
        loss = elbo.loss(
            config_enumerate(model, "parallel"),
            config_enumerate(guide, "parallel"),
            *args,
            **(kwargs or {}),
        )
    return -float(loss)


def distribution_table(d, support: torch.Tensor, shape: tuple) -> torch.Tensor:
    """Probabilities of ``support`` values (``[K, *event]``) under ``d``, as ``[*shape, K]``."""
    k = support.shape[0]
    event = tuple(support.shape[1:])
    values = support.reshape((k,) + (1,) * len(d.batch_shape) + event)
    probs = d.log_prob(values).exp()
    probs = probs.movedim(0, -1)
    return probs.reshape(tuple(shape) + (k,)).to(torch.float64)


def traceenum_marginals(model, args=(), kwargs=None, *, nesting: int) -> dict:
    """``TraceEnum_ELBO.compute_marginals`` as ``{site: tensor [*batch_shape, K]}``."""
    kwargs = kwargs or {}
    elbo = TraceEnum_ELBO(max_plate_nesting=nesting)
    with torch.no_grad():
        dists = elbo.compute_marginals(
            config_enumerate(model, "parallel"), empty_guide, *args, **kwargs
        )
    plain = poutine.trace(model).get_trace(*args, **kwargs)
    out = {}
    for name, d in dists.items():
        fn = plain.nodes[name]["fn"]
        support = fn.enumerate_support(expand=False)
        support = support.reshape((support.shape[0],) + tuple(fn.event_shape))
        out[name] = distribution_table(d, support, tuple(fn.batch_shape))
    return out


# ----------------------------------------------------------------------------- brute force
class _Odometer(Messenger):
    """Give each element of each latent site the next digit of a joint assignment."""

    def __init__(self, digits: list[int]):
        super().__init__()
        self.digits = digits
        self.sizes: list[int] = []
        self.latents: dict[str, torch.Tensor] = {}
        self.supports: dict[str, torch.Tensor] = {}

    def _pyro_sample(self, msg):
        if msg["is_observed"] or site_is_subsample(msg):
            return
        fn = msg["fn"]
        if not fn.has_enumerate_support:
            raise ValueError(f"brute force: site {msg['name']!r} is not enumerable")
        event = tuple(fn.event_shape)
        support = fn.enumerate_support(expand=False)
        k = support.shape[0]
        support = support.reshape((k,) + event)
        chosen = []
        for _ in range(fn.batch_shape.numel()):
            pos = len(self.sizes)
            chosen.append(self.digits[pos] if pos < len(self.digits) else 0)
            self.sizes.append(k)
        index = torch.tensor(chosen, dtype=torch.long).reshape(fn.batch_shape)
        msg["value"] = support[index]
        msg["done"] = True
        self.latents[msg["name"]] = msg["value"]
        self.supports[msg["name"]] = support


class Row(NamedTuple):
    values: dict  # latent site -> value (its full tensor)
    log_joint: float  # log p(x, z): latents unmasked, observations masked, nothing scaled
    log_lik: float  # the observations' part
    latent_terms: dict  # latent site -> (log-prob unmasked, log-prob masked), summed
    trace: Any


class BruteForce:
    """Every joint assignment of a model's discrete latents, by replaying the model.

    Handles Python control flow (sites that exist on some branches only): assignments are
    visited depth first, one digit per element of each latent site.
    """

    def __init__(self, model, args=(), kwargs=None, *, max_rows: int = 200_000):
        kwargs = kwargs or {}
        self.rows: list[Row] = []
        self.supports: dict[str, torch.Tensor] = {}
        digits: list[int] = []
        while True:
            odo = _Odometer(digits)
            trace = poutine.trace(odo(model)).get_trace(*args, **kwargs)
            log_lik, terms = 0.0, {}
            for name, site in _data_sites(trace):
                lp = site["fn"].log_prob(site["value"]).detach()
                if name in odo.latents:
                    terms[name] = (float(lp.sum()), float(_masked(lp, site["mask"]).sum()))
                else:
                    log_lik += float(_masked(lp, site["mask"]).sum())
            log_prior = sum(t[0] for t in terms.values())
            self.supports.update(odo.supports)
            self.rows.append(Row(dict(odo.latents), log_prior + log_lik, log_lik, terms, trace))
            if len(self.rows) > max_rows:
                raise RuntimeError("brute force: too many assignments")
            full = digits + [0] * (len(odo.sizes) - len(digits))
            j = len(odo.sizes) - 1
            while j >= 0 and full[j] + 1 >= odo.sizes[j]:
                j -= 1
            if j < 0:
                break
            digits = full[:j] + [full[j] + 1]
        log_joint = torch.tensor([r.log_joint for r in self.rows], dtype=torch.float64)
        self.log_evidence = float(torch.logsumexp(log_joint, 0))
        self.posterior = (log_joint - self.log_evidence).exp()

    @property
    def sites(self) -> list[str]:
        names: dict[str, None] = {}
        for row in self.rows:
            names.update(dict.fromkeys(row.values))
        return list(names)

    def prob(self, **assignment) -> float:
        """Posterior probability that the sites take the given (full-tensor) values."""
        total = 0.0
        for row, p in zip(self.rows, self.posterior.tolist(), strict=True):
            if all(
                name in row.values and _equal(row.values[name], value)
                for name, value in assignment.items()
            ):
                total += p
        return total

    def marginal(self, site: str) -> torch.Tensor:
        """``[*batch_shape, K]`` posterior marginal of every element of ``site``."""
        support = self.supports[site]
        k, event = support.shape[0], tuple(support.shape[1:])
        out = None
        for row, p in zip(self.rows, self.posterior.tolist(), strict=True):
            if site not in row.values:
                continue
            value = row.values[site]
            batch = tuple(value.shape[: value.dim() - len(event)])
            match = (value.unsqueeze(-len(event) - 1) == support).to(torch.float64)
            match = match.reshape(batch + (k, -1)).all(-1).to(torch.float64) if event else match
            out = p * match if out is None else out + p * match
        return out

    def map(self) -> dict:
        return self.rows[int(self.posterior.argmax())].values


def _equal(a, b) -> bool:
    a = torch.as_tensor(a, dtype=torch.float64)
    b = torch.as_tensor(b, dtype=torch.float64)
    return a.shape == b.shape and bool((a == b).all())


def key(values: dict, names) -> tuple:
    """A hashable key of some sites' values."""
    return tuple(tuple(torch.as_tensor(values[n]).reshape(-1).tolist()) for n in names)


def guide_log_density(guide, values: dict, args=(), kwargs=None) -> tuple[float, float]:
    """(log q(z) as a sampling density, log q(z) masked) of the guide run at ``values``."""
    trace = poutine.trace(poutine.condition(guide, data=values)).get_trace(*args, **(kwargs or {}))
    full = masked = 0.0
    for _, site in _data_sites(trace):
        if site["infer"].get("is_auxiliary"):
            raise ValueError("brute force: auxiliary guide sites are not supported")
        lp = site["fn"].log_prob(site["value"]).detach()
        full += float(lp.sum())
        masked += float(_masked(lp, site["mask"]).sum())
    return full, masked


class ExactELBO(NamedTuple):
    elbo: float
    log_evidence: float
    kl: float
    reconstruction: float
    kl_prior: float
    #: (guided values, q) for every assignment of the guided sites.
    q_rows: list

    def q_marginal(self, site: str, support: torch.Tensor) -> torch.Tensor:
        """The guide's marginal of ``site`` on ``support`` (scalar sites), ``[*batch, K]``."""
        out = None
        for values, q in self.q_rows:
            match = (values[site].unsqueeze(-1) == support.reshape(-1)).to(torch.float64)
            out = q * match if out is None else out + q * match
        return out


def brute_force_elbo(model, guide, guided, args=(), kwargs=None, bf=None) -> ExactELBO:
    r"""ELBO of a discrete guide over ``guided`` sites, every other latent summed out.

    :math:`\mathrm{ELBO} = \sum_{z_g} q(z_g) [\log \sum_{z_m} p(x, z_g, z_m) - \log q(z_g)]`,
    where guided latents' model factors are masked (Pyro's Trace_ELBO convention) and the
    model-enumerated ones are not.
    """
    bf = BruteForce(model, args, kwargs) if bf is None else bf
    groups: dict[tuple, list] = {}
    for row in bf.rows:
        groups.setdefault(key(row.values, guided), []).append(row)
    elbo = rec = klp = total_q = 0.0
    q_rows = []
    for rows in groups.values():
        values = {n: rows[0].values[n] for n in guided}
        log_q_full, log_q = guide_log_density(guide, values, args, kwargs)
        q = math.exp(log_q_full)
        total_q += q
        q_rows.append((values, q))
        log_prior = torch.tensor(
            [sum(t[1] if n in guided else t[0] for n, t in r.latent_terms.items()) for r in rows],
            dtype=torch.float64,
        )
        log_lik = torch.tensor([r.log_lik for r in rows], dtype=torch.float64)
        log_p_xg = float(torch.logsumexp(log_prior + log_lik, 0))
        log_p_g = float(torch.logsumexp(log_prior, 0))
        if q > 0:
            elbo += q * (log_p_xg - log_q)
            rec += q * (log_p_xg - log_p_g)
            klp += q * (log_q - log_p_g)
    if abs(total_q - 1.0) > 1e-9:
        raise ValueError(f"brute force: the guide's probabilities sum to {total_q}")
    return ExactELBO(elbo, bf.log_evidence, bf.log_evidence - elbo, rec, klp, q_rows)
