r"""The exact posterior :math:`p(z \mid x)` of a model's discrete latents, as a record.

:class:`ExactPosterior` is what :func:`pvae.exact.enumerate_posterior` returns: the latent
sites, :math:`\log p(x)`, and each site's posterior marginal, with queries on the joint
(:meth:`ExactPosterior.prob`, :meth:`~ExactPosterior.map`, :meth:`~ExactPosterior.sample`,
:meth:`~ExactPosterior.joint`) answered by the engine that ran
(:mod:`pvae.exact.parallel` or :mod:`pvae.exact.sequential`). How the engines are chosen,
and the mask and scale convention, are in :mod:`pvae.exact.enumeration`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyro
import pyro.poutine as poutine
import torch
from pyro.infer import config_enumerate, infer_discrete

from pvae import _checks, _display
from pvae.exact import factored, parallel, queries, sequential
from pvae.exact.bayes import BayesTable
from pvae.exact.sites import (
    default_dtype,
    label,
    unmask_latents,
)

__all__ = ["ExactPosterior"]


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
        The engine that ran: ``"parallel"``, ``"factor"`` or ``"sequential"``.
    reason : str
        Why ``method="auto"`` chose the factor engine (a model without plates) or fell
        back to the sequential engine ("" when it ran the parallel engine, or for an
        explicit ``method``).
    unscaled_log_evidence : float
        :math:`\log p(x)` of the model with every ``poutine.scale`` removed: the model's
        own density of the data passed, which guides are compared against (equal to
        ``log_evidence`` for a model without scales).

    Examples
    --------
    >>> from pvae import enumerate_posterior, toy
    >>> post = enumerate_posterior(toy.sprinkler)
    >>> post.sites, post.method
    (('cloudy', 'sprinkler', 'rain'), 'factor')
    >>> print(post)
    ExactPosterior(method='factor', log_evidence=-0.435254)
      (auto: 3 latent sites and no plates, so the factor engine ran)
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
    _factored: factored.FactorResult | None = None
    _model: Callable | None = None
    _args: tuple = ()
    _kwargs: dict = field(default_factory=dict)
    _dtype: torch.dtype = torch.float64
    _cache: dict = field(default_factory=dict)

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
        >>> from pvae import enumerate_posterior, toy
        >>> enumerate_posterior(toy.medical_test).support("disease")
        tensor([0., 1.], dtype=torch.float64)
        """
        return self._supports[self._check_site(site)]

    def marginal(self, site: str, given: dict | None = None) -> torch.Tensor:
        r"""Posterior marginal :math:`p(z_{\text{site}} \mid x)` over :meth:`support`.

        A float64 tensor of shape ``[K]``, or ``[*batch_shape, K]`` for a site inside
        plates (one distribution per data point, e.g. ``[N, K]`` mixture assignments).
        With ``given={other: value, ...}`` it is the conditional
        :math:`p(z_{\text{site}} \mid z_B = b, x)` (see :mod:`pvae.exact.queries`).

        Examples
        --------
        >>> from pvae import enumerate_posterior, toy
        >>> enumerate_posterior(toy.medical_test).marginal("disease")
        tensor([0.9224, 0.0776], dtype=torch.float64)
        >>> enumerate_posterior(toy.sprinkler).marginal("sprinkler", given={"rain": 1})
        tensor([0.8055, 0.1945], dtype=torch.float64)
        """
        self._check_site(site)
        if given:
            return queries.conditional_marginal(self, site, given)
        return self._marginals[site]

    def prob(self, given: dict | None = None, **assignment: Any) -> float:
        r"""Posterior probability of a (partial) assignment of latent sites.

        A value for a site inside plates is broadcast to the site's shape:
        ``prob(z=1)`` is :math:`p(z_n = 1 \text{ for every } n \mid x)`; pass a tensor of the
        site's shape for one value per element. A value outside the site's support has
        probability 0. Every engine gives the same number. With ``given={site: value}``
        it is the conditional probability
        :math:`p(z_A = a \mid z_B = b, x) = p(z_A = a, z_B = b \mid x) / p(z_B = b \mid x)`,
        and a ``ValueError`` if the condition has probability 0.

        Examples
        --------
        >>> from pvae import enumerate_posterior, toy
        >>> post = enumerate_posterior(toy.burglary_alarm)
        >>> round(post.prob(burglary=1), 3), round(post.prob(burglary=1, earthquake=1), 6)
        (0.284, 0.000574)
        >>> round(post.prob(burglary=1, given={"earthquake": 1}), 4)  # explained away
        0.0033
        """
        if given:
            return queries.conditional_prob(self, assignment, given)
        if not assignment:
            return 1.0
        values = queries.values_of(self, assignment)
        if self._rows is not None:
            return sequential.prob_of(self._rows, self._table.posterior, values)
        return math.exp(queries.log_prob(self, values))

    def map(self) -> dict[str, torch.Tensor]:
        """The most probable joint assignment (maximum a posteriori), ``{site: value}``.

        Examples
        --------
        >>> from pvae import enumerate_posterior, toy
        >>> enumerate_posterior(toy.monty_hall).map()
        {'car': tensor(2)}
        """
        if self._table is not None:
            row = int(self._table.posterior.argmax())
            return dict(self._rows.values[row])
        if self._factored is not None:
            return {s: v[0] for s, v in factored.decode(self._factored, 1, True).items()}
        try:
            return self._map_parallel()
        except _DECODING_ERRORS:  # infer_discrete cannot decode it: use the joint table
            rows, posterior = self._joint_rows()
            return dict(rows.values[int(posterior.argmax())])

    def _map_parallel(self) -> dict[str, torch.Tensor]:
        decoder = infer_discrete(
            config_enumerate(unmask_latents(self._model), default="parallel"),
            first_available_dim=self._elimination.first_dim,
            temperature=0,
        )
        with default_dtype(self._dtype):
            trace = poutine.trace(decoder).get_trace(*self._args, **self._kwargs)
        return {name: self._shaped(name, trace.nodes[name]["value"]) for name in self.sites}

    def _shaped(self, name: str, value: torch.Tensor) -> torch.Tensor:
        """A site's value in the shape it has in one plain run of the model."""
        shape = tuple(self._marginals[name].shape[:-1]) + tuple(self._supports[name].shape[1:])
        value = value.detach()
        return value.reshape(value.shape[value.dim() - len(shape) :]).expand(shape).clone()

    def sample(self, num_samples: int) -> dict[str, torch.Tensor]:
        """Draw joint samples from the posterior, ``{site: tensor [num_samples, *shape]}``.

        The parallel engine samples by forward filtering, backward sampling
        (:func:`pyro.infer.infer_discrete`), all draws at once inside a plate; the
        sequential engine draws rows of the joint table (a site that occurs on some
        branches only is left out).

        Examples
        --------
        >>> from pvae import enumerate_posterior, toy
        >>> s = enumerate_posterior(toy.sprinkler).sample(1000)
        >>> s["rain"].shape, 0.6 < float(s["rain"].mean()) < 0.8
        (torch.Size([1000]), True)
        """
        num_samples = _checks.positive_int("num_samples", num_samples, example=1000)
        if self._table is not None:
            return _draw_rows(self._rows, self._table.posterior, self.sites, num_samples)
        if self._factored is not None:
            return factored.decode(self._factored, num_samples, False)
        try:
            return self._sample_vectorized(num_samples)
        except _DECODING_ERRORS:  # infer_discrete cannot sample it: use the joint table
            rows, posterior = self._joint_rows()
            return _draw_rows(rows, posterior, self.sites, num_samples)

    def _joint_rows(self):
        """The sequential engine's joint table, built once when infer_discrete fails."""
        if "rows" not in self._cache:
            rows = sequential.replay_all(
                self._model, self._args, self._kwargs, 20_000, self._dtype
            )
            joint = rows.log_prior + rows.log_likelihood
            self._cache["rows"] = (rows, torch.softmax(joint, 0))
        return self._cache["rows"]

    def _sample_vectorized(self, num_samples: int) -> dict[str, torch.Tensor]:
        """Forward-filter backward-sample all draws at once inside a plate of draws."""
        first_dim = self._elimination.first_dim

        model = unmask_latents(self._model)

        def draws(*args, **kwargs):
            with pyro.plate("_num_samples", num_samples, dim=first_dim):
                return model(*args, **kwargs)

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
        >>> from pvae import enumerate_posterior, toy
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
        >>> from pvae import enumerate_posterior, toy
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
        for name in self.sites[: _display.MAX_ROWS]:
            marg = self._marginals[name]
            if marg.dim() == 1:
                vals = [label(v) for v in self._supports[name]]
                pairs = list(zip(vals, marg.tolist(), strict=True))
                cells = [f"{v}: {p:.4g}" for v, p in pairs[: _display.MAX_ROWS]]
                more = len(pairs) - len(cells)
                cells += [f"... {more} more values"] if more else []
                lines.append(f"  p({name} | x) = {{{', '.join(cells)}}}")
            else:
                lines.append(f"  p({name} | x): per data point, shape {tuple(marg.shape)}")
        if len(self.sites) > _display.MAX_ROWS:
            lines.append(f"  ... {len(self.sites) - _display.MAX_ROWS} more sites")
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        rows = []
        for name in self.sites:
            marg = self._marginals[name]
            if marg.dim() == 1:
                values = [label(v) for v in self._supports[name]]
                rows += [(name, v, p) for v, p in zip(values, marg.tolist(), strict=True)]
            else:
                rows.append((name, f"per data point, shape {tuple(marg.shape)}", None))
        table = _display.html_table(["site", "value", "p(z | x)"], rows, bars=(2,))
        fields = {"method": self.method, "log_evidence": self.log_evidence}
        notes = [self.reason, "log p(x) in nats"]
        return _display.html_record("ExactPosterior", fields, tables=[table], notes=notes)


#: What :func:`pyro.infer.infer_discrete` raises on a model it cannot decode (event-shaped
#: enumerated values such as OneHotCategorical), while the marginals were fine.
_DECODING_ERRORS = (ValueError, RuntimeError, NotImplementedError, IndexError)


def _draw_rows(rows, posterior, sites, num_samples: int) -> dict[str, torch.Tensor]:
    picks = torch.multinomial(posterior, num_samples, replacement=True)
    out = {}
    for name in sites:
        vals = [rows.values[int(r)].get(name) for r in picks]
        if any(v is None for v in vals):
            continue  # site absent on some branches: no fixed-shape tensor
        out[name] = torch.stack(vals)
    return out
