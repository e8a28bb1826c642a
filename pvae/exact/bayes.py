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

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

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
        :math:`p(x) = \sum_h p(x, h)`.
    log_evidence : float
        :math:`\log p(x)` in nats, exact even when :attr:`evidence` underflows.
    log_likelihood : torch.Tensor
        :math:`\log p(x \mid h)`.
    log_joint : torch.Tensor
        :math:`\log p(x, h)`.
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
        """Condition on new data: this table's posterior is the next table's prior.

        Parameters
        ----------
        likelihood, log_likelihood
            The likelihood of the *new* data under each hypothesis, in any form
            :func:`bayes_rule` accepts (give exactly one).

        Returns
        -------
        BayesTable

        Examples
        --------
        >>> t = bayes_rule({"fair": 0.5, "biased": 0.5}, {"fair": 0.5, "biased": 0.9})
        >>> round(t.update({"fair": 0.5, "biased": 0.9}).prob("biased"), 6)
        0.764151
        """
        return bayes_rule(
            self.posterior,
            likelihood,
            hypotheses=self.hypotheses,
            log_likelihood=log_likelihood,
            normalize=True,
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

    def __str__(self) -> str:
        names = ["prior", "likelihood", "joint", "posterior"]
        cols = [self.prior, self.likelihood, self.joint, self.posterior]
        if self.log_space:
            names[1:3] = ["log_likelihood", "log_joint"]
            cols[1:3] = [self.log_likelihood, self.log_joint]
        labels = [str(h) for h in self.hypotheses]
        width = max([len("hypothesis")] + [len(s) for s in labels])
        cells = [[f"{float(v):.6g}" for v in c] for c in cols]
        widths = [max([len(n)] + [len(s) for s in c]) for n, c in zip(names, cells, strict=True)]
        lines = [
            "  ".join(
                [f"{'hypothesis':<{width}}"]
                + [n.rjust(w) for n, w in zip(names, widths, strict=True)]
            )
        ]
        for i, label in enumerate(labels):
            row = [c[i].rjust(w) for c, w in zip(cells, widths, strict=True)]
            lines.append("  ".join([f"{label:<{width}}"] + row))
        lines.append(f"evidence p(x) = {self.evidence:.6g}  (log p(x) = {self.log_evidence:.6g})")
        return "\n".join(lines)

    __repr__ = __str__


def _to_column(
    values: Any, hypotheses: tuple | None, name: str
) -> tuple[tuple | None, torch.Tensor]:
    """Turn a mapping, sequence, array or tensor into (hypotheses, float64 column)."""
    if isinstance(values, Mapping):
        keys = tuple(values.keys())
        if hypotheses is not None:
            if set(keys) != set(hypotheses) or len(keys) != len(hypotheses):
                raise ValueError(
                    f"The hypotheses of `{name}` must match those of the prior: "
                    f"expected {list(hypotheses)}, got {list(keys)}."
                )
            keys = hypotheses
        raw = [values[k] for k in keys]
        return keys, _as_float64(raw, name)
    column = _as_float64(values, name)
    if column.dim() != 1:
        raise ValueError(f"`{name}` must be 1-D, got shape {tuple(column.shape)}.")
    if hypotheses is not None and column.numel() != len(hypotheses):
        raise ValueError(
            f"`{name}` must have one entry per hypothesis ({len(hypotheses)}), "
            f"got {column.numel()}. Pass values for every hypothesis, in the prior's order."
        )
    return hypotheses, column


def _as_float64(values: Any, name: str) -> torch.Tensor:
    if isinstance(values, Sequence) and not isinstance(values, str):
        bad = [v for v in values if isinstance(v, (str, bool)) or v is None]
        if bad:
            raise ValueError(
                f"`{name}` must hold numbers, got {bad[0]!r} ({type(bad[0]).__name__}) in "
                f"{list(values)!r}."
            )
    try:
        if isinstance(values, torch.Tensor):
            out = values.detach().to(torch.float64).reshape(values.shape)
        else:
            out = torch.as_tensor(
                [float(v) for v in values] if isinstance(values, Sequence) else values,
                dtype=torch.float64,
            )
    except (TypeError, ValueError) as err:
        raise ValueError(f"`{name}` must hold numbers, got {values!r}.") from err
    if torch.isnan(out).any():
        raise ValueError(f"`{name}` must not contain NaN, got {out.tolist()}.")
    return out


def _evaluate(likelihood: Any, hypotheses: tuple, name: str) -> Any:
    if callable(likelihood) and not isinstance(likelihood, torch.Tensor | Mapping):
        return [likelihood(h) for h in hypotheses]
    return likelihood


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
    if hypotheses is not None:
        if hasattr(hypotheses, "tolist"):
            hypotheses = hypotheses.tolist()
        hypotheses = tuple(hypotheses)
        if len(set(hypotheses)) != len(hypotheses):
            raise ValueError(f"`hypotheses` must be distinct, got {list(hypotheses)}.")
    if isinstance(prior, Mapping) and hypotheses is not None:
        raise ValueError(
            "`hypotheses` is only used when `prior` is a sequence; the keys of a mapping "
            "`prior` already name the hypotheses."
        )
    keys, prior_col = _to_column(prior, None, "prior")
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
    total = float(prior_col.sum())
    if normalize:
        if total <= 0:
            raise ValueError(f"`prior` must have positive total mass, got {total:.6g}.")
        prior_col = prior_col / total
    elif abs(total - 1.0) > _SUM_TOL:
        raise ValueError(
            f"`prior` must sum to 1, got {total:.6g}. Normalize it, or pass `normalize=True`."
        )

    log_space = log_likelihood is not None
    name = "log_likelihood" if log_space else "likelihood"
    values = _evaluate(log_likelihood if log_space else likelihood, hypotheses, name)
    _, column = _to_column(values, hypotheses, name)
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

    log_joint = torch.where(prior_col > 0, log_lik + prior_col.log(), -math.inf)
    log_evidence = float(torch.logsumexp(log_joint, 0))
    if log_evidence == -math.inf:
        raise ValueError(
            "The evidence p(x) is 0: the data are impossible under every hypothesis with prior "
            "mass. Check the likelihood, or give prior mass to a hypothesis that explains "
            "the data."
        )
    posterior = (log_joint - log_evidence).exp()
    return BayesTable(
        hypotheses=hypotheses,
        prior=prior_col,
        likelihood=log_lik.exp(),
        joint=log_joint.exp(),
        posterior=posterior,
        evidence=math.exp(log_evidence),
        log_evidence=log_evidence,
        log_likelihood=log_lik,
        log_joint=log_joint,
        log_space=log_space,
    )
