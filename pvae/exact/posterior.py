r"""Exact posterior of a Pyro model's discrete latents, by enumeration.

When every unobserved sample site of a model has a finite support, Bayes' rule can be
applied to the whole model: sum the joint :math:`p(x, z)` over every value of :math:`z`
to get the evidence, and divide.

.. math::

    p(z \mid x) = \frac{p(x \mid z)\, p(z)}{p(x)}, \qquad
    \log p(x) = \log \sum_z p(x \mid z)\, p(z).

:func:`enumerate_posterior` does this with one of two engines:

``"parallel"``
    Pyro's tensor enumeration: every latent gets its own tensor dimension, the model runs
    once, and the factors are summed out by variable elimination (plated, so latents local
    to ``pyro.plate("data", N)`` cost :math:`O(NK)`, not :math:`O(K^N)`). Marginals of all
    latents come at once from one backward pass, since
    :math:`\partial \log p(x) / \partial \log f(z_S) = p(z_S \mid x)` for every factor
    :math:`f`.
``"sequential"``
    Replays the model once for every joint assignment of the latents, so ordinary Python
    control flow on sampled values (``if int(z) == 0:``) works, and keeps the whole joint
    table.

``"auto"`` tries the parallel engine and falls back to the sequential one when the model
cannot run on enumerated tensors. All numbers are float64: the model runs with float64
as the default dtype.

References
----------
1. Obermeyer, F. et al. (2019). Tensor variable elimination for plated factor graphs. ICML.
2. Koller, D. & Friedman, N. (2009). *Probabilistic Graphical Models*, ch. 9-10.
"""

from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pyro
import pyro.poutine as poutine
import torch
from pyro.infer import config_enumerate, infer_discrete
from pyro.ops import packed
from pyro.ops.contract import contract_to_tensor
from pyro.ops.rings import LogRing
from pyro.poutine.util import site_is_subsample

from pvae.exact.bayes import BayesTable, bayes_rule

__all__ = ["ExactPosterior", "enumerate_posterior"]

_METHODS = ("auto", "parallel", "sequential")


@dataclass(frozen=True, repr=False)
class ExactPosterior:
    r"""The exact posterior :math:`p(z \mid x)` of a model's discrete latents.

    Attributes
    ----------
    sites : tuple of str
        The latent (unobserved) discrete sample sites, in trace order.
    log_evidence : float
        :math:`\log p(x)` in nats (float64).
    method : str
        The engine that ran: ``"parallel"`` or ``"sequential"``.

    Examples
    --------
    >>> from pvae import toy
    >>> post = enumerate_posterior(toy.sprinkler)
    >>> post.sites, post.method
    (('cloudy', 'sprinkler', 'rain'), 'parallel')
    >>> print(post)
    ExactPosterior(method='parallel', log_evidence=-0.435254)
      p(cloudy | x) = {0: 0.4242, 1: 0.5758}
      p(sprinkler | x) = {0: 0.5702, 1: 0.4298}
      p(rain | x) = {0: 0.2921, 1: 0.7079}
    """

    sites: tuple[str, ...]
    log_evidence: float
    method: str
    _supports: dict = field(default_factory=dict)
    _marginals: dict = field(default_factory=dict)
    _table: BayesTable | None = None
    _values: tuple = ()
    _model: Callable | None = None
    _args: tuple = ()
    _kwargs: dict = field(default_factory=dict)
    _first_dim: int = -1
    _dtype: torch.dtype = torch.float64
    _shapes: dict = field(default_factory=dict)

    @property
    def model(self) -> Callable | None:
        """The model that was enumerated (guides are scored against it)."""
        return self._model

    @property
    def evidence(self) -> float:
        """:math:`p(x)`, which may underflow to 0 where :attr:`log_evidence` does not."""
        return math.exp(self.log_evidence)

    def support(self, site: str) -> torch.Tensor:
        """The values a latent site can take, shape ``[K, *event_shape]``.

        Examples
        --------
        >>> from pvae import toy
        >>> enumerate_posterior(toy.medical_test).support("disease")
        tensor([0., 1.], dtype=torch.float64)
        """
        return self._supports[self._check_site(site)]

    def marginal(self, site: str) -> torch.Tensor:
        r"""Posterior marginal :math:`p(z_{\text{site}} \mid x)` over :meth:`support`.

        A float64 tensor of shape ``[K]``, or ``[*batch_shape, K]`` for a site inside
        plates (one distribution per data point, e.g. ``[N, K]`` mixture assignments).

        Examples
        --------
        >>> from pvae import toy
        >>> enumerate_posterior(toy.medical_test).marginal("disease")
        tensor([0.9224, 0.0776], dtype=torch.float64)
        """
        return self._marginals[self._check_site(site)]

    def prob(self, **assignment: Any) -> float:
        """Posterior probability of a (partial) assignment of latent sites.

        Examples
        --------
        >>> from pvae import toy
        >>> post = enumerate_posterior(toy.burglary_alarm)
        >>> round(post.prob(burglary=1), 3), round(post.prob(burglary=1, earthquake=1), 6)
        (0.284, 0.000574)
        """
        if not assignment:
            return 1.0
        for name in assignment:
            self._check_site(name)
        if self._table is not None:
            total = 0.0
            for row, values in enumerate(self._values):
                if all(
                    values.get(k) is not None and _same(values[k], v)
                    for k, v in assignment.items()
                ):
                    total += float(self._table.posterior[row])
            return total
        data = {
            k: torch.as_tensor(v, dtype=self._supports[k].dtype) for k, v in assignment.items()
        }
        conditioned = poutine.condition(self._model, data=data)
        log_joint = _parallel(
            conditioned, self._args, self._kwargs, marginals=False, dtype=self._dtype
        )[0]
        return math.exp(log_joint - self.log_evidence)

    def map(self) -> dict[str, torch.Tensor]:
        """The most probable joint assignment (maximum a posteriori), ``{site: value}``.

        Examples
        --------
        >>> from pvae import toy
        >>> enumerate_posterior(toy.monty_hall).map()
        {'car': tensor(2)}
        """
        if self._table is not None:
            row = int(self._table.posterior.argmax())
            return {k: v for k, v in self._values[row].items() if v is not None}
        decoder = infer_discrete(
            config_enumerate(self._model, default="parallel"),
            first_available_dim=self._first_dim,
            temperature=0,
        )
        with _float64(self._dtype):
            trace = poutine.trace(decoder).get_trace(*self._args, **self._kwargs)
        return {name: trace.nodes[name]["value"].detach() for name in self.sites}

    def sample(self, num_samples: int) -> dict[str, torch.Tensor]:
        """Draw joint samples from the posterior, ``{site: tensor [num_samples, *shape]}``.

        The parallel engine samples by forward filtering, backward sampling
        (:func:`pyro.infer.infer_discrete`); the sequential engine draws rows of the joint
        table (a site that occurs on some branches only is left out).

        Examples
        --------
        >>> from pvae import toy
        >>> s = enumerate_posterior(toy.sprinkler).sample(1000)
        >>> s["rain"].shape, 0.6 < float(s["rain"].mean()) < 0.8
        (torch.Size([1000]), True)
        """
        if not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"`num_samples` must be a positive int, got {num_samples!r}.")
        if self._table is not None:
            rows = torch.multinomial(self._table.posterior, num_samples, replacement=True)
            out = {}
            for name in self.sites:
                vals = [self._values[int(r)].get(name) for r in rows]
                if any(v is None for v in vals):
                    continue  # site absent on some branches: no fixed-shape tensor
                out[name] = torch.stack(vals)
            return out
        try:
            return self._sample_vectorized(num_samples)
        except Exception:  # the model does not broadcast over an extra batch dim
            pass
        sampler = infer_discrete(
            config_enumerate(self._model, default="parallel"),
            first_available_dim=self._first_dim,
        )
        draws = []
        with _float64(self._dtype):
            for _ in range(num_samples):
                trace = poutine.trace(sampler).get_trace(*self._args, **self._kwargs)
                draws.append({n: trace.nodes[n]["value"].detach() for n in self.sites})
        return {n: torch.stack([d[n] for d in draws]) for n in self.sites}

    def _sample_vectorized(self, num_samples: int) -> dict[str, torch.Tensor]:
        """Forward-filter backward-sample all draws at once inside a particle plate."""

        def particles(*args, **kwargs):
            with pyro.plate("_num_samples", num_samples, dim=self._first_dim):
                return self._model(*args, **kwargs)

        sampler = infer_discrete(
            config_enumerate(particles, default="parallel"),
            first_available_dim=self._first_dim - 1,
        )
        with _float64(self._dtype):
            trace = poutine.trace(sampler).get_trace(*self._args, **self._kwargs)
        out = {}
        for name in self.sites:
            value = trace.nodes[name]["value"].detach()
            shape = self._shapes[name]
            value = value.reshape((num_samples,) + tuple(value.shape[value.dim() - len(shape) :]))
            out[name] = value.expand((num_samples,) + shape).clone()
        return out

    def joint(self) -> BayesTable:
        r"""The whole joint table as a Bayes table (sequential engine only).

        Hypotheses are joint assignments (tuples of site values in :attr:`sites` order,
        ``None`` where a site does not occur), with prior :math:`p(z)`, likelihood
        :math:`p(x \mid z)`, joint and posterior columns.

        Examples
        --------
        >>> from pvae import toy
        >>> t = enumerate_posterior(toy.medical_test, method="sequential").joint()
        >>> t.hypotheses, round(t.evidence, 5)
        (((0,), (1,)), 0.10304)
        """
        if self._table is None:
            raise ValueError(
                "`joint()` needs the whole joint table, which only the sequential engine "
                "keeps. Call `enumerate_posterior(model, method='sequential')`."
            )
        return self._table

    def to_dataframe(self):
        """The joint table as a :class:`pandas.DataFrame`, one column per site.

        Examples
        --------
        >>> from pvae import toy
        >>> df = enumerate_posterior(toy.medical_test, method="sequential").to_dataframe()
        >>> list(df.columns)
        ['disease', 'prior', 'likelihood', 'joint', 'posterior']
        """
        table = self.joint()
        frame = table.to_dataframe().reset_index(drop=True)
        for i, name in enumerate(self.sites):
            frame.insert(i, name, [h[i] for h in table.hypotheses])
        return frame

    def _check_site(self, site: str) -> str:
        if site not in self.sites:
            raise ValueError(f"`site` must be one of the latent sites {self.sites}, got {site!r}.")
        return site

    def __str__(self) -> str:
        lines = [f"ExactPosterior(method={self.method!r}, log_evidence={self.log_evidence:.6g})"]
        for name in self.sites:
            marg = self._marginals[name]
            if marg.dim() == 1:
                vals = [_label(v) for v in self._supports[name]]
                cells = ", ".join(f"{v}: {float(p):.4g}" for v, p in zip(vals, marg, strict=True))
                lines.append(f"  p({name} | x) = {{{cells}}}")
            else:
                lines.append(f"  p({name} | x): per data point, shape {tuple(marg.shape)}")
        return "\n".join(lines)

    __repr__ = __str__


@contextmanager
def _float64(dtype: torch.dtype = torch.float64):
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def _to_float64(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.to(torch.float64)
    return value


def _same(a: Any, b: Any) -> bool:
    a = torch.as_tensor(a, dtype=torch.float64)
    b = torch.as_tensor(b, dtype=torch.float64)
    return a.shape == b.shape and bool((a == b).all())


def _label(value: torch.Tensor) -> Any:
    """A readable, hashable label: an int, a float or a tuple of them."""
    if value.dim() == 0:
        v = float(value)
        return int(v) if v.is_integer() else v
    return tuple(_label(v) for v in value)


def _latent_sites(trace) -> list[str]:
    names = []
    for name, site in trace.nodes.items():
        if site["type"] != "sample" or site["is_observed"] or site_is_subsample(site):
            continue
        if not getattr(site["fn"], "has_enumerate_support", False):
            raise _continuous(name, site["fn"])
        names.append(name)
    return names


def _continuous(name: str, fn: Any) -> ValueError:
    return ValueError(
        f"Latent site {name!r} has a continuous distribution ({type(fn).__name__}), which "
        "cannot be enumerated. Observe it, or approximate its posterior with a guide and "
        "SVI (`pvae.fit`)."
    )


def _check_observed(trace) -> None:
    """Check observed values against their supports (Pyro's log_prob validation)."""
    if not pyro.poutine.util.is_validation_enabled():
        return
    for name, site in trace.nodes.items():
        if site["type"] == "sample" and site["is_observed"] and not site_is_subsample(site):
            try:
                site["fn"].log_prob(site["value"])
            except ValueError as err:
                raise ValueError(f"Observed site {name!r}: {err}") from None


def _check_batch_in_plates(site) -> None:
    """Parallel enumeration treats each batch dim as a plate; refuse unplated batches."""
    plates = {f.dim for f in site["cond_indep_stack"] if f.vectorized}
    batch = site["fn"].batch_shape
    for i, size in enumerate(batch):
        if size > 1 and i - len(batch) not in plates:
            raise NotImplementedError(
                f"site {site['name']!r} has batch shape {tuple(batch)} outside pyro.plate"
            )


def _max_plate_nesting(trace) -> int:
    dims = [
        -f.dim
        for site in trace.nodes.values()
        if site["type"] == "sample"
        for f in site["cond_indep_stack"]
        if f.vectorized and f.dim is not None
    ]
    return max(dims, default=0)


def _parallel(model, args, kwargs, plain=None, marginals=True, dtype=torch.float64):
    """Variable elimination on Pyro's enumerated trace: (log_evidence, supports, marginals)."""
    with _float64(dtype):
        if plain is None:
            plain = poutine.trace(model).get_trace(*args, **kwargs)
            _check_observed(plain)
        latents = _latent_sites(plain)
        for name in latents:
            _check_batch_in_plates(plain.nodes[name])
        first_dim = -1 - _max_plate_nesting(plain)
        enum_model = poutine.enum(
            config_enumerate(model, default="parallel"), first_available_dim=first_dim
        )
        # the plain trace validated every distribution and observed value already
        with pyro.validation_enabled(False):
            trace = poutine.trace(enum_model).get_trace(*args, **kwargs)
            trace.compute_log_prob()
    trace.pack_tensors()
    tree, leaves, sum_dims = OrderedDict(), {}, set()
    for name, site in trace.nodes.items():
        if site["type"] != "sample" or site_is_subsample(site):
            continue
        if name in latents:
            if site["infer"].get("_enumerate_dim") is None:
                raise NotImplementedError(f"site {name!r} was not enumerated in parallel")
            sum_dims.add(site["infer"]["_enumerate_symbol"])
        term = site["packed"]["log_prob"]
        leaf = term.detach().to(torch.float64).requires_grad_(marginals)
        leaf._pyro_dims = term._pyro_dims
        ordinal = frozenset(
            trace.plate_to_symbol[f.name] for f in site["cond_indep_stack"] if f.vectorized
        )
        tree.setdefault(ordinal, []).append(leaf)
        leaves[name] = leaf
    if not leaves:
        return 0.0, {}, {}, latents, first_dim
    log_z = None
    if list(tree) == [frozenset()]:  # no plates: one einsum in probability space
        log_z = _contract_flat(tree[frozenset()])
    if log_z is None or not bool(torch.isfinite(log_z)):
        log_z = contract_to_tensor(tree, sum_dims, ring=LogRing())
    log_evidence = float(log_z.detach())
    supports, margs = {}, {}
    if not marginals or not latents or not math.isfinite(log_evidence):
        return log_evidence, supports, margs, latents, first_dim
    grads = torch.autograd.grad(log_z, [leaves[n] for n in latents], allow_unused=True)
    for name, grad in zip(latents, grads, strict=True):
        site, base = trace.nodes[name], plain.nodes[name]
        event = base["fn"].event_shape
        support = site["value"].detach()
        supports[name] = support.reshape((-1,) + event)
        k = supports[name].shape[0]
        batch = base["fn"].batch_shape
        if grad is None or k == 1:
            margs[name] = torch.ones(batch + (k,), dtype=torch.float64)
            continue
        grad._pyro_dims = leaves[name]._pyro_dims
        g = packed.unpack(grad, trace.symbol_to_dim)
        enum_dim = site["infer"]["_enumerate_dim"]
        for d in range(-g.dim(), first_dim + 1):
            if d != enum_dim and g.shape[d] > 1:
                g = g.sum(d, keepdim=True)
        nest = -first_dim - 1
        g = g.movedim(g.dim() + enum_dim, -1)
        g = g.reshape(g.shape[-(nest + 1) :])
        padded = (1,) * (nest - len(batch)) + tuple(batch)
        margs[name] = g.expand(padded + (k,)).reshape(batch + (k,)).clone()
    return log_evidence, supports, margs, latents, first_dim


_PATHS: OrderedDict = OrderedDict()  # contraction expressions by equation and shapes


def _contract_flat(terms: list[torch.Tensor]) -> torch.Tensor:
    r"""Sum out every dim of a product of factors, :math:`\log \sum_z \prod_i f_i(z)`.

    Each factor is rescaled by its largest entry and exponentiated, then contracted by
    one opt_einsum expression whose path is cached per (equation, shapes). Returns
    ``-inf``/``nan`` when the product underflows; the caller then uses log space.
    """
    import opt_einsum

    symbols: dict[str, str] = {}
    inputs = []
    for t in terms:
        inputs.append(
            "".join(
                symbols.setdefault(d, opt_einsum.get_symbol(len(symbols))) for d in t._pyro_dims
            )
        )
    equation = ",".join(inputs) + "->"
    shapes = tuple(tuple(t.shape) for t in terms)
    key = (equation, shapes)
    expr = _PATHS.get(key)
    if expr is None:
        expr = opt_einsum.contract_expression(equation, *shapes, optimize="auto")
        _PATHS[key] = expr
        if len(_PATHS) > 64:
            _PATHS.popitem(last=False)
    shifts = [float(t.detach().max()) if t.numel() else 0.0 for t in terms]
    shifts = [m if math.isfinite(m) else 0.0 for m in shifts]
    factors = [(t - m).exp() for t, m in zip(terms, shifts, strict=True)]
    return expr(*factors, backend="torch").log() + math.fsum(shifts)


class _Replay(pyro.poutine.messenger.Messenger):
    """Set latent sites to the next joint assignment of a depth-first enumeration."""

    def __init__(self, prefix: list[int], max_states: int):
        super().__init__()
        self.prefix, self.max_states = prefix, max_states
        self.choices: list[tuple[str, int]] = []
        self.indices: dict[str, tuple[int, ...]] = {}
        self.supports: dict[str, torch.Tensor] = {}

    def _pyro_sample(self, msg):
        if msg["is_observed"] or site_is_subsample(msg) or msg["value"] is not None:
            return
        name, fn = msg["name"], msg["fn"]
        if not getattr(fn, "has_enumerate_support", False):
            raise _continuous(name, fn)
        full = fn.enumerate_support(expand=True)
        k, batch, event = full.shape[0], fn.batch_shape, fn.event_shape
        nb = batch.numel()
        count = k**nb
        if count > self.max_states:
            raise _TooMany(count)
        pos = len(self.choices)
        choice = self.prefix[pos] if pos < len(self.prefix) else 0
        self.choices.append((name, count))
        digits = tuple((choice // k**i) % k for i in reversed(range(nb)))
        flat = full.reshape((k, nb) + event)
        value = flat[torch.tensor(digits), torch.arange(nb)].reshape(batch + event)
        self.indices[name] = digits
        self.supports[name] = fn.enumerate_support(expand=False).reshape((k,) + event)
        msg["value"], msg["done"] = value, True


class _TooMany(Exception):
    pass


def _sequential(model, args, kwargs, max_states, dtype=torch.float64):
    """Replay the model for every joint assignment (depth-first odometer)."""
    rows, prefix = [], []
    sites: dict[str, None] = {}
    supports: dict[str, torch.Tensor] = {}
    while True:
        replay = _Replay(prefix, max_states)
        try:
            with _float64(dtype):
                trace = poutine.trace(replay(model)).get_trace(*args, **kwargs)
        except _TooMany as err:
            raise ValueError(_too_many_message(err.args[0], max_states)) from None
        trace.compute_log_prob()
        log_prior = log_lik = 0.0
        for name, site in trace.nodes.items():
            if site["type"] != "sample" or site_is_subsample(site):
                continue
            lp = float(site["log_prob"].sum())
            if name in replay.indices:
                log_prior += lp
            else:
                log_lik += lp
        for name in replay.indices:
            sites.setdefault(name)
            supports.setdefault(name, replay.supports[name])
        values = {n: trace.nodes[n]["value"].detach() for n in replay.indices}
        rows.append((replay.indices, values, log_prior, log_lik))
        if len(rows) == 1:
            total = math.prod(c for _, c in replay.choices)
            if total > max_states:
                raise ValueError(_too_many_message(total, max_states))
        if len(rows) > max_states:
            raise ValueError(_too_many_message(len(rows), max_states, at_least=True))
        assignment = prefix + [0] * (len(replay.choices) - len(prefix))
        j = len(replay.choices) - 1
        while j >= 0 and assignment[j] + 1 >= replay.choices[j][1]:
            j -= 1
        if j < 0:
            break
        prefix = assignment[:j] + [assignment[j] + 1]
    return tuple(sites), supports, rows


def _too_many_message(count: int, max_states: int, at_least: bool = False) -> str:
    return (
        f"The sequential engine would replay the model for {'at least ' if at_least else ''}"
        f"{count} joint assignments of its latent sites, more than `max_states`={max_states}. "
        "Use method='parallel' (models without Python control flow on sampled values), "
        "or raise `max_states`."
    )


def _impossible() -> ValueError:
    return ValueError(
        "The evidence p(x) is 0: the observed data are impossible under every assignment "
        "of the latent sites. Check the observed values against the model's likelihood."
    )


def enumerate_posterior(
    model: Callable,
    *args: Any,
    method: str = "auto",
    max_states: int = 20_000,
    **kwargs: Any,
) -> ExactPosterior:
    r"""Compute the exact posterior of a Pyro model's discrete latent sites.

    .. math::

        p(z \mid x) = \frac{p(x, z)}{\sum_{z'} p(x, z')}

    Parameters
    ----------
    model : callable
        A Pyro model. Observed sites (``obs=``) are the data; every other sample site must
        have a finite support (Bernoulli, Categorical, OneHotCategorical, Binomial, ...).
    *args, **kwargs
        Passed to ``model``; floating-point tensors are cast to float64 first, and the
        model runs with float64 as the default dtype. A model that fails with a dtype
        error under float64 (a float32 network fed float64 tensors) is run again in the
        caller's default dtype, at that dtype's precision.
    method : {"auto", "parallel", "sequential"}
        The engine (see the module docstring). ``"auto"`` tries ``"parallel"`` and falls
        back to ``"sequential"``; :attr:`ExactPosterior.method` says which ran.
    max_states : int
        Largest number of joint assignments the sequential engine will replay.

    Returns
    -------
    ExactPosterior

    Raises
    ------
    ValueError
        If a latent site is continuous, the sequential state space exceeds ``max_states``,
        or the evidence is 0 (the observed data are impossible).

    Examples
    --------
    >>> import pyro, pyro.distributions as dist
    >>> def coin(flips):
    ...     fair = pyro.sample("fair", dist.Bernoulli(0.5))
    ...     p = 0.5 if int(fair) == 1 else 0.9
    ...     with pyro.plate("data", len(flips)):
    ...         pyro.sample("x", dist.Bernoulli(p), obs=flips)
    >>> post = enumerate_posterior(coin, torch.tensor([1.0, 1.0, 0.0]))
    >>> post.method, round(post.prob(fair=1), 6), round(post.log_evidence, 6)
    ('sequential', 0.606796, -2.273026)
    """
    if method not in _METHODS:
        raise ValueError(f"`method` must be one of {_METHODS}, got {method!r}.")
    if not isinstance(max_states, int) or max_states < 1:
        raise ValueError(f"`max_states` must be a positive int, got {max_states!r}.")
    if not callable(model):
        raise ValueError(f"`model` must be a callable Pyro model, got {type(model).__name__}.")
    try:
        args64 = tuple(_to_float64(a) for a in args)
        kwargs64 = {k: _to_float64(v) for k, v in kwargs.items()}
        return _enumerate(model, args64, kwargs64, method, max_states, torch.float64)
    except RuntimeError as err:  # e.g. a float32 network fed float64 tensors
        dtype = torch.get_default_dtype()
        if (
            dtype == torch.float64
            or "dtype" not in str(err).lower()
            and "double" not in str(err).lower()
        ):
            raise
    return _enumerate(model, args, kwargs, method, max_states, dtype)


def _enumerate(model, args, kwargs, method, max_states, dtype) -> ExactPosterior:
    if method in ("auto", "parallel"):
        with _float64(dtype):
            plain = poutine.trace(model).get_trace(*args, **kwargs)
        _latent_sites(plain)
        _check_observed(plain)
        try:
            log_z, supports, margs, latents, first_dim = _parallel(
                model, args, kwargs, plain, dtype=dtype
            )
        except Exception as err:
            if method == "parallel":
                raise ValueError(
                    "The parallel engine could not run this model on enumerated tensors "
                    f"({type(err).__name__}: {err}). Models with Python control flow on "
                    "sampled values need method='sequential'."
                ) from err
        else:
            if not math.isfinite(log_z):
                raise _impossible()
            shapes = {
                n: tuple(margs[n].shape[:-1]) + tuple(supports[n].shape[1:]) for n in latents
            }
            return ExactPosterior(
                sites=tuple(latents),
                log_evidence=log_z,
                method="parallel",
                _supports=supports,
                _marginals=margs,
                _model=model,
                _args=args,
                _kwargs=kwargs,
                _first_dim=first_dim,
                _dtype=dtype,
                _shapes=shapes,
            )
    sites, supports, rows = _sequential(model, args, kwargs, max_states, dtype)
    log_prior = torch.tensor([r[2] for r in rows], dtype=torch.float64)
    log_lik = torch.tensor([r[3] for r in rows], dtype=torch.float64)
    hypotheses = tuple(tuple(_label(r[1][n]) if n in r[1] else None for n in sites) for r in rows)
    try:
        table = bayes_rule(
            log_prior.exp(), hypotheses=hypotheses, log_likelihood=log_lik, normalize=True
        )
    except ValueError as err:
        raise _impossible() from err
    underflow = (table.likelihood == 0) & (table.log_likelihood > -math.inf)
    table = dataclasses.replace(table, log_space=bool(underflow.any()))
    margs = {}
    for name in sites:
        k = supports[name].shape[0]
        first = next(r[1][name] for r in rows if name in r[1])
        batch = first.shape[: first.dim() - (supports[name].dim() - 1)]
        m = torch.zeros(batch.numel(), k, dtype=torch.float64)
        for row, p in zip(rows, table.posterior, strict=True):
            if name in row[0]:
                m[torch.arange(batch.numel()), torch.tensor(row[0][name])] += p
        margs[name] = m.reshape(batch + (k,))
    return ExactPosterior(
        sites=sites,
        log_evidence=table.log_evidence + math.log(float(log_prior.exp().sum())),
        method="sequential",
        _supports=supports,
        _marginals=margs,
        _table=table,
        _values=tuple(r[1] for r in rows),
        _model=model,
        _args=args,
        _kwargs=kwargs,
        _dtype=dtype,
    )
