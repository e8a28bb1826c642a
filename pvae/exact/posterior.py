r"""Exact posterior of a Pyro model's discrete latents, by enumeration.

When every unobserved sample site of a model has a finite support, Bayes' rule can be
applied to the whole model: sum the joint :math:`p(x, z)` over every value of :math:`z`
to get the evidence, and divide.

.. math::

    p(z \mid x) = \frac{p(x \mid z)\, p(z)}{p(x)}, \qquad
    \log p(x) = \log \sum_z p(x \mid z)\, p(z).

:func:`enumerate_posterior` does this with one of two engines:

``"parallel"`` (:mod:`pvae.exact.parallel`)
    Pyro's tensor enumeration and variable elimination: plates stay batch dimensions, so
    latents local to ``pyro.plate("data", N)`` cost :math:`O(NK)`, and all marginals come
    from one backward pass.
``"sequential"`` (:mod:`pvae.exact.sequential`)
    Replays the model once for every joint assignment of the latents, so Python control
    flow on sampled values works, and keeps the whole joint table.

``"auto"`` runs the parallel engine and checks it against plain runs of the model; it
falls back to the sequential engine only when the model fails on enumerated tensors or
the check shows that its Python code does not treat them as a batch.
:attr:`ExactPosterior.method` says which engine ran and :attr:`ExactPosterior.reason` why.

Masks and scales follow Pyro's ``TraceEnum_ELBO`` (:mod:`pvae.exact.sites`): a latent's own
factor is unmasked and unscaled, masks on observations apply inside the sum over latents and
one common ``poutine.scale`` outside it, so ``log_evidence`` equals
``-TraceEnum_ELBO().loss(model, guide)`` for a guide that samples nothing. All numbers are
float64: the model runs with float64 as the default dtype.

References
----------
1. Obermeyer, F. et al. (2019). Tensor variable elimination for plated factor graphs. ICML.
2. Koller, D. & Friedman, N. (2009). *Probabilistic Graphical Models*, ch. 9-10.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyro
import pyro.poutine as poutine
import torch
from pyro.infer import config_enumerate, infer_discrete

from pvae import _checks
from pvae.exact import parallel, sequential
from pvae.exact.bayes import BayesTable, bayes_rule
from pvae.exact.sites import (
    ScaleError,
    check_observed,
    default_dtype,
    label,
    latent_sites,
    to_float64,
    watch_subsampling,
)

__all__ = ["ExactPosterior", "enumerate_posterior"]

_METHODS = ("auto", "parallel", "sequential")
#: What a model that cannot run on enumerated tensors raises there (and not in a plain run).
_ENUMERATION_ERRORS = (
    RuntimeError,
    ValueError,
    IndexError,
    TypeError,
    NotImplementedError,
    AssertionError,
)


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
    reason : str
        Why ``method="auto"`` fell back to the sequential engine ("" otherwise).
    unscaled_log_evidence : float
        :math:`\log p(x)` of the model with every ``poutine.scale`` removed: the model's
        own density of the data passed, which guides are compared against (equal to
        ``log_evidence`` for a model without scales).

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
    reason: str = ""
    unscaled_log_evidence: float | None = None
    _supports: dict = field(default_factory=dict)
    _marginals: dict = field(default_factory=dict)
    _table: BayesTable | None = None
    _rows: sequential.Table | None = None
    _elimination: parallel.Elimination | None = None
    _model: Callable | None = None
    _args: tuple = ()
    _kwargs: dict = field(default_factory=dict)
    _dtype: torch.dtype = torch.float64

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
        r"""Posterior probability of a (partial) assignment of latent sites.

        A value for a site inside plates is broadcast to the site's shape:
        ``prob(z=1)`` is :math:`p(z_n = 1 \text{ for every } n \mid x)`; pass a tensor of the
        site's shape for one value per element. A value outside the site's support has
        probability 0. Both engines give the same number.

        Examples
        --------
        >>> from pvae import toy
        >>> post = enumerate_posterior(toy.burglary_alarm)
        >>> round(post.prob(burglary=1), 3), round(post.prob(burglary=1, earthquake=1), 6)
        (0.284, 0.000574)
        """
        if not assignment:
            return 1.0
        values = {}
        for name, value in assignment.items():
            self._check_site(name)
            try:
                values[name] = torch.as_tensor(value, dtype=self._supports[name].dtype)
            except (TypeError, ValueError, RuntimeError):
                raise ValueError(
                    f"the value for site {name!r} must be a number or a tensor of the site's "
                    f"values, got {value!r}."
                ) from None
        if self._rows is not None:
            return sequential.prob_of(self._rows, self._table.posterior, values)
        return math.exp(parallel.log_prob_of(self._elimination, values))

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
            return dict(self._rows.values[row])
        decoder = infer_discrete(
            config_enumerate(self._model, default="parallel"),
            first_available_dim=self._elimination.first_dim,
            temperature=0,
        )
        with default_dtype(self._dtype):
            trace = poutine.trace(decoder).get_trace(*self._args, **self._kwargs)
        return {name: trace.nodes[name]["value"].detach() for name in self.sites}

    def sample(self, num_samples: int) -> dict[str, torch.Tensor]:
        """Draw joint samples from the posterior, ``{site: tensor [num_samples, *shape]}``.

        The parallel engine samples by forward filtering, backward sampling
        (:func:`pyro.infer.infer_discrete`), all draws at once inside a plate; the
        sequential engine draws rows of the joint table (a site that occurs on some
        branches only is left out).

        Examples
        --------
        >>> from pvae import toy
        >>> s = enumerate_posterior(toy.sprinkler).sample(1000)
        >>> s["rain"].shape, 0.6 < float(s["rain"].mean()) < 0.8
        (torch.Size([1000]), True)
        """
        num_samples = _checks.positive_int("num_samples", num_samples, example=1000)
        if self._table is not None:
            rows = torch.multinomial(self._table.posterior, num_samples, replacement=True)
            out = {}
            for name in self.sites:
                vals = [self._rows.values[int(r)].get(name) for r in rows]
                if any(v is None for v in vals):
                    continue  # site absent on some branches: no fixed-shape tensor
                out[name] = torch.stack(vals)
            return out
        return self._sample_vectorized(num_samples)

    def _sample_vectorized(self, num_samples: int) -> dict[str, torch.Tensor]:
        """Forward-filter backward-sample all draws at once inside a plate of draws."""
        first_dim = self._elimination.first_dim

        def draws(*args, **kwargs):
            with pyro.plate("_num_samples", num_samples, dim=first_dim):
                return self._model(*args, **kwargs)

        sampler = infer_discrete(
            config_enumerate(draws, default="parallel"), first_available_dim=first_dim - 1
        )
        with default_dtype(self._dtype):
            trace = poutine.trace(sampler).get_trace(*self._args, **self._kwargs)
        out = {}
        for name in self.sites:
            value = trace.nodes[name]["value"].detach()
            shape = tuple(self._marginals[name].shape[:-1]) + tuple(self._supports[name].shape[1:])
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
        if self.reason:
            lines.append(f"  ({self.reason})")
        for name in self.sites:
            marg = self._marginals[name]
            if marg.dim() == 1:
                vals = [label(v) for v in self._supports[name]]
                cells = ", ".join(f"{v}: {float(p):.4g}" for v, p in zip(vals, marg, strict=True))
                lines.append(f"  p({name} | x) = {{{cells}}}")
            else:
                lines.append(f"  p({name} | x): per data point, shape {tuple(marg.shape)}")
        return "\n".join(lines)

    __repr__ = __str__


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
        The engine (see the module docstring). :attr:`ExactPosterior.method` says which
        ran and :attr:`ExactPosterior.reason` why.
    max_states : int
        Largest number of joint assignments the sequential engine will replay.

    Returns
    -------
    ExactPosterior

    Raises
    ------
    ValueError
        If a latent site has no finite support, a plate subsamples at random, the factors
        of the sum carry different ``poutine.scale`` values, the sequential state space
        exceeds ``max_states``, ``method="parallel"`` meets a model that does not run
        correctly on enumerated tensors, or the evidence is 0.

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
    _checks.one_of("method", method, _METHODS)
    max_states = _checks.positive_int("max_states", max_states, example=20_000)
    _checks.callable_arg("model", model, what="a callable Pyro model")
    try:
        args64 = tuple(to_float64(a) for a in args)
        kwargs64 = {k: to_float64(v) for k, v in kwargs.items()}
        return _enumerate(model, args64, kwargs64, method, max_states, torch.float64)
    except RuntimeError as err:  # e.g. a float32 network fed float64 tensors
        dtype = torch.get_default_dtype()
        text = str(err).lower()
        if dtype == torch.float64 or ("dtype" not in text and "double" not in text):
            raise
    return _enumerate(model, args, kwargs, method, max_states, dtype)


def _plain_trace(model, args, kwargs, dtype):
    watched, watch = watch_subsampling(model)
    with default_dtype(dtype), torch.no_grad():
        plain = poutine.trace(watched).get_trace(*args, **kwargs)
    watch.refuse()
    check_observed(plain)
    return plain


def _enumerate(model, args, kwargs, method, max_states, dtype) -> ExactPosterior:
    plain = _plain_trace(model, args, kwargs, dtype)
    latents = latent_sites(plain)
    why = ""
    if method in ("auto", "parallel"):
        try:
            result = parallel.eliminate(model, args, kwargs, plain, latents, dtype)
        except ScaleError:
            raise
        except _ENUMERATION_ERRORS as err:
            why = f"{type(err).__name__}: {err}"
            if method == "parallel":
                raise ValueError(
                    f"The parallel engine could not run this model on enumerated tensors ({why})."
                    " Models with Python control flow on sampled values need "
                    "method='sequential'."
                ) from err
        else:
            if not math.isfinite(result.log_partition):
                raise _impossible()
            why = parallel.check(
                result,
                lambda values: sequential.log_joint_at(model, args, kwargs, values, dtype),
            )
            if why and method == "parallel":
                raise ValueError(f"The parallel engine gives wrong numbers for this model: {why}.")
            if not why:
                return ExactPosterior(
                    sites=tuple(latents),
                    log_evidence=result.log_evidence,
                    method="parallel",
                    unscaled_log_evidence=result.log_partition + result.free_unscaled,
                    _supports=result.supports,
                    _marginals=result.marginals,
                    _elimination=result,
                    _model=model,
                    _args=args,
                    _kwargs=kwargs,
                    _dtype=dtype,
                )
    rows = sequential.replay_all(model, args, kwargs, max_states, dtype, why=why)
    joint = rows.log_prior + rows.log_likelihood
    log_z = float(torch.logsumexp(joint, 0))
    if not math.isfinite(log_z):
        raise _impossible()
    hypotheses = tuple(
        tuple(label(v[n]) if n in v else None for n in rows.sites) for v in rows.values
    )
    table = bayes_rule(
        rows.log_prior.exp(),
        hypotheses=hypotheses,
        log_likelihood=rows.log_likelihood,
        normalize=True,
    )
    underflow = (table.likelihood == 0) & (table.log_likelihood > -math.inf)
    table = dataclasses.replace(table, log_space=bool(underflow.any()))
    reason = (
        "" if method == "sequential" else f"auto: the parallel engine could not be used ({why})"
    )
    return ExactPosterior(
        sites=rows.sites,
        log_evidence=rows.scale * log_z,
        method="sequential",
        unscaled_log_evidence=log_z,
        reason=reason,
        _supports=rows.supports,
        _marginals=sequential.marginals(rows, table.posterior),
        _table=table,
        _rows=rows,
        _model=model,
        _args=args,
        _kwargs=kwargs,
        _dtype=dtype,
    )
