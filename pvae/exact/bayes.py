r"""Bayes' rule on an explicit table: prior times likelihood, joint, evidence, posterior.

For a finite set of hypotheses :math:`h` and observed data :math:`x`,

.. math::

    p(h \mid x) = \frac{p(x \mid h)\, p(h)}{p(x)}, \qquad
    p(x) = \sum_h p(x \mid h)\, p(h).

:func:`bayes_rule` computes every column of that formula and keeps them side by side in a
:class:`BayesTable`, so each step of the lecture's derivation can be printed and checked.
The evidence :math:`p(x)` is a plain sum here; it is the integral that becomes intractable
for continuous, high-dimensional latents and motivates variational inference.

References
----------
1. Bayes, T. (1763). An essay towards solving a problem in the doctrine of chances.
2. Eddy, D. M. (1982). Probabilistic reasoning in clinical medicine: problems and
   opportunities. In *Judgment under Uncertainty: Heuristics and Biases*.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from pvae import _checks, _display
from pvae.exact.columns import evaluate_likelihood, exp_or_inf, to_column

__all__ = ["BayesTable", "bayes_rule"]

_SUM_TOL = 1e-6


@dataclass(frozen=True, repr=False)
class BayesTable:
    r"""The columns of Bayes' rule for a finite set of hypotheses.

    All columns are 1-D ``float64`` tensors aligned with :attr:`hypotheses`.

    Attributes
    ----------
    hypotheses : tuple
        The hypotheses, in table order.
    prior : torch.Tensor
        :math:`p(h)`.
    likelihood : torch.Tensor
        :math:`p(x \mid h)`; may underflow to 0 when built from ``log_likelihood``.
    joint : torch.Tensor
        :math:`p(x, h) = p(x \mid h)\, p(h)`; may underflow like :attr:`likelihood`.
    posterior : torch.Tensor
        :math:`p(h \mid x)`, computed in log space, so it never underflows to all zeros.
    evidence : float
        :math:`p(x) = \sum_h p(x, h)`, the evidence of *this* table's data: after
        :meth:`update`, the one-step predictive :math:`p(x_n \mid x_1, \ldots, x_{n-1})`.
        Like :attr:`likelihood` it may underflow to 0, or overflow to ``inf`` for densities
        with :math:`\log p(x) > 709`; :attr:`log_evidence` is exact either way.
    log_evidence : float
        :math:`\log p(x)` in nats, exact even when :attr:`evidence` underflows or overflows.
    log_likelihood : torch.Tensor
        :math:`\log p(x \mid h)`.
    log_joint : torch.Tensor
        :math:`\log p(x, h)`.
    log_space : bool
        Whether the table was built from log-likelihoods (and prints their columns).
    cumulative_log_evidence : float
        :math:`\log p(x_1, \ldots, x_n)`, the log evidence of *all* the data so far (the
        :attr:`log_evidence` of a new table; after each :meth:`update`, the chain rule
        :math:`\sum_k \log p(x_k \mid x_{<k})` with
        :math:`p(x_k \mid x_{<k}) = \sum_h p(x_k \mid h)\, p(h \mid x_{<k})`, the
        marginal likelihood when the :math:`x_k` are independent given :math:`h`).
    """

    hypotheses: tuple
    prior: torch.Tensor
    likelihood: torch.Tensor
    joint: torch.Tensor
    posterior: torch.Tensor
    evidence: float
    log_evidence: float
    log_likelihood: torch.Tensor
    log_joint: torch.Tensor
    log_space: bool = False
    cumulative_log_evidence: float = math.nan

    @property
    def cumulative_evidence(self) -> float:
        r""":math:`p(x_1, \ldots, x_n)`, ``exp`` of :attr:`cumulative_log_evidence` (may
        underflow to 0 or overflow to ``inf``; the log is exact).

        Examples
        --------
        >>> t = bayes_rule({"fair": 0.5, "biased": 0.5}, {"fair": 0.5, "biased": 0.9})
        >>> t2 = t.update({"fair": 0.5, "biased": 0.9})      # two heads
        >>> round(t2.evidence, 6), round(t2.cumulative_evidence, 6)  # p(x2 | x1), p(x1, x2)
        (0.757143, 0.53)
        """
        return exp_or_inf(self.cumulative_log_evidence)

    def prob(self, hypothesis: Hashable) -> float:
        """Posterior probability :math:`p(h \\mid x)` of one hypothesis.

        Examples
        --------
        >>> t = bayes_rule({"fair": 0.5, "biased": 0.5}, {"fair": 0.5, "biased": 0.9})
        >>> round(t.prob("biased"), 6)
        0.642857
        """
        return float(self.posterior[self._index(hypothesis)])

    def update(
        self,
        likelihood: Any = None,
        *,
        log_likelihood: Any = None,
    ) -> BayesTable:
        r"""Condition on new data: this table's posterior is the next table's prior.

        Parameters
        ----------
        likelihood, log_likelihood
            The likelihood of the *new* data under each hypothesis, in any form
            :func:`bayes_rule` accepts (give exactly one).

        Returns
        -------
        BayesTable
            Its :attr:`~BayesTable.evidence` is the one-step predictive
            :math:`p(x_{new} \mid x_{old})`; its :attr:`~BayesTable.cumulative_log_evidence`
            is :math:`\log p(x_{old}, x_{new})`. The prior is this table's posterior, carried
            in log space (:math:`\log p(x, h) - \log p(x)`), so nothing overflows.

        Examples
        --------
        >>> t = bayes_rule({"fair": 0.5, "biased": 0.5}, {"fair": 0.5, "biased": 0.9})
        >>> t2 = t.update({"fair": 0.5, "biased": 0.9})
        >>> round(t2.prob("biased"), 6), round(t2.cumulative_log_evidence, 6)
        (0.764151, -0.634878)
        """
        # log_softmax: near 1e308, log p(x, h) - log p(x) rounds the normalizer away
        log_prior = torch.log_softmax(self.log_joint, 0)
        table = _table(self.hypotheses, self.posterior, log_prior, likelihood, log_likelihood)
        return dataclasses.replace(
            table,
            cumulative_log_evidence=self.cumulative_log_evidence + table.log_evidence,
        )

    def to_dataframe(self):
        """The table as a :class:`pandas.DataFrame` indexed by hypothesis.

        Examples
        --------
        >>> bayes_rule([0.5, 0.5], [0.2, 0.6]).to_dataframe()["posterior"].tolist()
        [0.25, 0.75]
        """
        import pandas as pd

        columns = {"prior": self.prior, "likelihood": self.likelihood, "joint": self.joint}
        if self.log_space:
            columns = {
                "prior": self.prior,
                "log_likelihood": self.log_likelihood,
                "log_joint": self.log_joint,
            }
        columns["posterior"] = self.posterior
        frame = pd.DataFrame({k: v.numpy() for k, v in columns.items()})
        frame.index = pd.Index(list(self.hypotheses), name="hypothesis", tupleize_cols=False)
        return frame

    def _index(self, hypothesis: Hashable) -> int:
        for i, h in enumerate(self.hypotheses):
            if h == hypothesis:
                return i
        raise ValueError(
            f"`hypothesis` must be one of {list(self.hypotheses)}, got {hypothesis!r}."
        )

    def _columns(self) -> tuple[list[str], list[list[Any]]]:
        names = ["prior", "likelihood", "joint", "posterior"]
        cols = [self.prior, self.likelihood, self.joint, self.posterior]
        if self.log_space:
            names[1:3] = ["log_likelihood", "log_joint"]
            cols[1:3] = [self.log_likelihood, self.log_joint]
        values = [c.tolist() for c in cols]
        rows = [[str(h)] + [c[i] for c in values] for i, h in enumerate(self.hypotheses)]
        return ["hypothesis", *names], rows

    def format(self, max_rows: int | None = _display.MAX_ROWS) -> str:
        """The table as text, cut after ``max_rows`` rows (``None``: every row) with a count.

        Examples
        --------
        >>> print(bayes_rule([0.25] * 4, [0.1, 0.2, 0.3, 0.4]).format(max_rows=2))
        hypothesis  prior  likelihood   joint  posterior
        0            0.25         0.1   0.025        0.1
        1            0.25         0.2    0.05        0.2
        ... 2 more rows
        evidence p(x) = 0.25  (log p(x) = -1.38629)
        """
        header, rows = self._columns()
        evidence = f"evidence p(x) = {self.evidence:.6g}  (log p(x) = {self.log_evidence:.6g})"
        return _display.text_table(header, rows, max_rows=max_rows) + "\n" + evidence

    def __str__(self) -> str:
        return self.format()

    def _repr_html_(self) -> str:
        header, rows = self._columns()
        table = _display.html_table(header, rows, bars=(1, len(header) - 1))
        note = f"evidence p(x) = {self.evidence:.6g}, log p(x) = {self.log_evidence:.6g} nats"
        return _display.html_record("BayesTable", tables=[table], notes=[note])

    __repr__ = __str__


def bayes_rule(
    prior: Any,
    likelihood: Any = None,
    *,
    hypotheses: Sequence[Hashable] | None = None,
    log_likelihood: Any = None,
    normalize: bool = False,
) -> BayesTable:
    r"""Apply Bayes' rule to a finite set of hypotheses and return the whole table.

    .. math::

        \underbrace{p(h \mid x)}_{\text{posterior}}
        = \frac{\overbrace{p(x \mid h)}^{\text{likelihood}}\,
                \overbrace{p(h)}^{\text{prior}}}{\underbrace{p(x)}_{\text{evidence}}},
        \qquad p(x) = \sum_h p(x \mid h)\, p(h).

    Parameters
    ----------
    prior : Mapping or sequence or tensor
        :math:`p(h)`: a mapping ``{hypothesis: probability}``, or a sequence/array/tensor of
        probabilities (then ``hypotheses`` names them; default ``0, 1, ...``).
    likelihood : Mapping or sequence or tensor or callable, optional
        :math:`p(x \mid h)`, in the same forms as ``prior``, or a callable ``h -> value``.
        Densities are fine (values above 1), but every value must be finite and >= 0.
    hypotheses : sequence, optional
        Names of the hypotheses when ``prior`` is not a mapping.
    log_likelihood : Mapping or sequence or tensor or callable, optional
        :math:`\log p(x \mid h)` instead of ``likelihood``; the table is then computed in log
        space, so a thousand coin flips do not underflow. Values may be ``-inf``.
    normalize : bool
        Rescale ``prior`` to sum to 1 instead of rejecting it.

    Returns
    -------
    BayesTable

    Raises
    ------
    ValueError
        If the prior does not sum to 1 (and ``normalize`` is False), has negative or NaN
        entries, the likelihood is negative, NaN or infinite, the hypotheses of prior and
        likelihood differ, or the evidence is 0 (the data are impossible under every
        hypothesis with prior mass).

    Examples
    --------
    The medical screening test of Eddy (1982): 1% prevalence, 80% sensitivity, 9.6% false
    positives. A positive test still leaves the disease unlikely:

    >>> t = bayes_rule({"disease": 0.01, "healthy": 0.99}, {"disease": 0.8, "healthy": 0.096})
    >>> round(t.evidence, 6), round(t.prob("disease"), 4)
    (0.10304, 0.0776)

    A coin's bias after 1,000 flips with 560 heads, in log space (the likelihoods are
    below 1e-298, so the evidence would underflow in float32):

    >>> t = bayes_rule([1 / 3] * 3, hypotheses=[0.5, 0.55, 0.6],
    ...                log_likelihood=lambda p: 560 * math.log(p) + 440 * math.log(1 - p))
    >>> round(t.prob(0.55), 4), round(t.log_evidence, 3)
    (0.956, -687.186)
    """
    if (likelihood is None) == (log_likelihood is None):
        raise ValueError(
            "Give exactly one of `likelihood` and `log_likelihood`, got "
            f"{'both' if likelihood is not None else 'neither'}."
        )
    normalize = _checks.boolean("normalize", normalize)
    if hypotheses is not None:
        if hasattr(hypotheses, "tolist"):
            hypotheses = hypotheses.tolist()
        if isinstance(hypotheses, (str, bytes, Mapping)) or not isinstance(hypotheses, Iterable):
            raise TypeError(
                f"`hypotheses` must be a sequence of hashable names, got "
                f"{type(hypotheses).__name__}. Pass e.g. `hypotheses=['a', 'b']`."
            )
        hypotheses = tuple(hypotheses)
        try:
            distinct = len(set(hypotheses)) == len(hypotheses)
        except TypeError as err:
            raise TypeError(f"`hypotheses` must be hashable names, got {err}.") from None
        if not distinct:
            raise ValueError(f"`hypotheses` must be distinct, got {list(hypotheses)}.")
    if isinstance(prior, Mapping) and hypotheses is not None:
        raise ValueError(
            "`hypotheses` is only used when `prior` is a sequence; the keys of a mapping "
            "`prior` already name the hypotheses."
        )
    keys, prior_col = to_column(prior, None, "prior")
    if prior_col.numel() == 0:
        raise ValueError("`prior` must have at least one hypothesis, got an empty table.")
    if keys is not None:
        hypotheses = keys
    elif hypotheses is None:
        hypotheses = tuple(range(prior_col.numel()))
    elif len(hypotheses) != prior_col.numel():
        raise ValueError(
            f"`hypotheses` must name every prior entry: {prior_col.numel()} probabilities, "
            f"{len(hypotheses)} hypotheses."
        )
    if (prior_col < 0).any() or not torch.isfinite(prior_col).all():
        raise ValueError(
            f"`prior` must be finite and non-negative, got {prior_col.tolist()}. "
            "Probabilities cannot be negative."
        )
    with torch.no_grad():
        log_prior = prior_col.log()  # log 0 = -inf: no mass
        if normalize:
            total = float(prior_col.sum())
            if total == 0:
                raise ValueError(f"`prior` must have positive total mass, got {total:.6g}.")
            if 1e-300 < total < math.inf:
                prior_col = prior_col / total
                log_prior = prior_col.log()
            else:  # the sum overflows (priors near 1e308) or is subnormal: in log space
                log_prior = log_prior - torch.logsumexp(log_prior, 0)
                prior_col = log_prior.exp()
        else:
            total = float(prior_col.sum())
            if abs(total - 1.0) > _SUM_TOL:
                raise ValueError(
                    f"`prior` must sum to 1, got {total:.6g}. Normalize it, or pass "
                    "`normalize=True`."
                )
    table = _table(hypotheses, prior_col, log_prior, likelihood, log_likelihood)
    return dataclasses.replace(table, cumulative_log_evidence=table.log_evidence)


def _table(
    hypotheses: tuple,
    prior_col: torch.Tensor,
    log_prior: torch.Tensor,
    likelihood: Any,
    log_likelihood: Any,
) -> BayesTable:
    """The table from a checked prior (and its log) and an unchecked likelihood."""
    if (likelihood is None) == (log_likelihood is None):
        raise ValueError(
            "Give exactly one of `likelihood` and `log_likelihood`, got "
            f"{'both' if likelihood is not None else 'neither'}."
        )
    log_space = log_likelihood is not None
    name = "log_likelihood" if log_space else "likelihood"
    values = evaluate_likelihood(log_likelihood if log_space else likelihood, hypotheses, name)
    _, column = to_column(values, hypotheses, name)
    if log_space:
        if (column == math.inf).any():
            raise ValueError(f"`log_likelihood` must be below +inf, got {column.tolist()}.")
        log_lik = column
    else:
        if (column < 0).any() or not torch.isfinite(column).all():
            raise ValueError(
                f"`likelihood` must be finite and non-negative, got {column.tolist()}. "
                "Pass `log_likelihood=` for values too small or large for float64."
            )
        log_lik = column.log()

    # log p(x, h) = log p(x | h) + log p(h), and -inf (not NaN) where p(h) = 0
    log_joint = torch.where(log_prior > -math.inf, log_lik + log_prior, -math.inf)
    log_evidence = float(torch.logsumexp(log_joint, 0))
    if log_evidence == -math.inf:
        raise ValueError(
            "The evidence p(x) is 0: the data are impossible under every hypothesis with prior "
            "mass. Check the likelihood, or give prior mass to a hypothesis that explains "
            "the data."
        )
    # softmax, not exp(log p(x, h) - log p(x)): near 1e308, 1e308 + log 2 == 1e308
    posterior = torch.softmax(log_joint, 0)
    return BayesTable(
        hypotheses=hypotheses,
        prior=prior_col,
        likelihood=log_lik.exp(),
        joint=log_joint.exp(),
        posterior=posterior,
        evidence=exp_or_inf(log_evidence),
        log_evidence=log_evidence,
        log_likelihood=log_lik,
        log_joint=log_joint,
        log_space=log_space,
    )
