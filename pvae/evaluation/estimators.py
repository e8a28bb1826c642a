r"""How noisy is an ELBO gradient? Its variance under three estimators, measured.

Stochastic VI follows a Monte Carlo estimate :math:`\hat g` of :math:`\nabla_\phi
\mathrm{ELBO}`. Three estimators of the same gradient differ only in their noise:

- ``"enum"``: discrete sites marked ``infer={"enumerate": "parallel"}`` summed out exactly
  (:class:`~pvae.training.elbos.EnumELBO`), continuous ones reparameterised;
- ``"reparam"``: every site sampled (:class:`~pyro.infer.Trace_ELBO`): continuous sites
  reparameterised, discrete ones by the score function (they have no ``rsample``);
- ``"score"``: every guide site by the score function (REINFORCE, Williams 1992): the guide's
  distributions have their ``rsample`` switched off (``has_rsample_(False)``).

:func:`gradient_variance` draws ``num_samples`` gradients from each, at the current
parameters, and reports the total variance

.. math::

    \mathrm{tr}\,\mathrm{Cov}[\hat g] = \sum_j \mathrm{Var}[\hat g_j],
    \qquad \text{beside}\quad \|\mathbb{E}\hat g\|^2,

their sample versions over the draws (the gradient of Pyro's loss, minus the ELBO summed
over the batch: the sign does not change a variance).

References
----------
1. Williams, R. J. (1992). Simple statistical gradient-following algorithms for
   connectionist reinforcement learning. Machine Learning 8.
2. Kingma, D. P. and Welling, M. (2014). Auto-Encoding Variational Bayes. ICLR.
3. Mohamed, S., Rosca, M., Figurnov, M. and Mnih, A. (2020). Monte Carlo Gradient
   Estimation in Machine Learning. JMLR 21.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from pyro import poutine
from pyro.infer import ELBO, Trace_ELBO
from pyro.poutine.messenger import Messenger

from pvae._checks import one_of, positive_int
from pvae._checks import seed as check_seed
from pvae._seed import seeded
from pvae.models.protocol import pair_and_args
from pvae.training.elbos import EnumELBO
from pvae.training.rng import forked_rng

__all__ = ["ESTIMATORS", "EstimatorVariance", "GradientVariance", "gradient_variance"]

#: The estimator names :func:`gradient_variance` accepts.
ESTIMATORS = ("enum", "reparam", "score")


class _Sampled(Messenger):
    """Every site sampled (``infer["enumerate"]`` dropped); with ``score``, ``rsample``
    switched off too, so Pyro's estimators use the score function everywhere."""

    def __init__(self, score: bool) -> None:
        super().__init__()
        self.score = score

    def _pyro_sample(self, msg: dict) -> None:
        if msg["is_observed"]:
            return
        msg["infer"] = {k: v for k, v in msg["infer"].items() if k != "enumerate"}
        if self.score and getattr(msg["fn"], "has_rsample", False):
            msg["fn"] = msg["fn"].has_rsample_(False)


@dataclass(frozen=True)
class EstimatorVariance:
    r"""One estimator's gradient noise (see :func:`gradient_variance`).

    Attributes
    ----------
    estimator : str
        ``"enum"``, ``"reparam"`` or ``"score"``.
    variance : float
        :math:`\sum_j \mathrm{Var}[\hat g_j]` over the draws (unbiased sample variance).
    mean_norm_sq : float
        :math:`\|\bar g\|^2`, the squared norm of the mean gradient.
    elbo : float
        Mean of the ELBO estimates (positive sense, summed over the batch).
    variance_per_parameter : dict
        Parameter name -> its share of ``variance``.
    """

    estimator: str
    variance: float
    mean_norm_sq: float
    elbo: float
    variance_per_parameter: dict


@dataclass(frozen=True)
class GradientVariance:
    """The gradient variance of several estimators at the same parameters.

    Attributes
    ----------
    estimators : dict
        Name -> :class:`EstimatorVariance`.
    num_samples : int
        Gradient draws per estimator.
    parameters : tuple of str
        The parameters differentiated (Pyro param names).
    """

    estimators: dict
    num_samples: int
    parameters: tuple

    def __getitem__(self, name: str) -> EstimatorVariance:
        return self.estimators[name]

    def ratio(self, numerator: str, denominator: str) -> float:
        """``variance`` of one estimator over another's (``inf`` over a zero variance)."""
        top, bottom = self[numerator].variance, self[denominator].variance
        return top / bottom if bottom > 0 else (0.0 if top == 0 else float("inf"))

    def __str__(self) -> str:
        lines = [
            f"gradient variance over {self.num_samples} draws, {len(self.parameters)} parameters",
            f"{'estimator':<10} {'tr Cov[g]':>14} {'|E g|^2':>14} {'ELBO':>12}",
        ]
        for row in self.estimators.values():
            lines.append(
                f"{row.estimator:<10} {row.variance:>14.6g} {row.mean_norm_sq:>14.6g} "
                f"{row.elbo:>12.6g}"
            )
        return "\n".join(lines)

    __repr__ = __str__


def _estimator(name: str, model: Callable, guide: Callable) -> tuple[ELBO, Callable, Callable]:
    if name == "enum":
        return EnumELBO(), model, guide
    score = name == "score"
    return Trace_ELBO(), _Sampled(False)(model), _Sampled(score)(guide)


def _params(model: Callable, guide: Callable, args: tuple) -> dict[str, torch.Tensor]:
    with forked_rng(), torch.no_grad(), poutine.trace(param_only=True) as capture:
        guide_trace = poutine.trace(guide).get_trace(*args)
        poutine.replay(model, trace=guide_trace)(*args)
    params = {n: s["value"].unconstrained() for n, s in capture.trace.nodes.items()}
    if not params:
        raise ValueError(
            "`model` and `guide` have no parameters (pyro.param or pyro.module): there is no "
            "gradient to measure."
        )
    return params


def gradient_variance(
    model: Any,
    *args: Any,
    guide: Callable | None = None,
    elbo: str | Sequence[str] = ESTIMATORS,
    num_samples: int = 100,
    seed: int | None = 0,
) -> GradientVariance:
    r"""The variance of the ELBO gradient under each estimator, at the current parameters.

    Parameters
    ----------
    model : object or callable
        A pvae model, or a Pyro model function.
    *args
        Pyro's convention ``(guide, *data)``, or the data when ``guide=`` is given (or
        ``model`` is a pvae model).
    guide : callable, optional
        The guide of a model function.
    elbo : str or sequence of str
        Estimators of :data:`ESTIMATORS` (module docstring).
    num_samples : int
        Gradient draws per estimator (at least 2).
    seed : int, optional
        Seeds each estimator's draws (the same seed for each); the caller's generators are
        left as they were.

    Returns
    -------
    GradientVariance

    Examples
    --------
    A Gaussian mean with guide :math:`\mathcal{N}(m, s)`: the reparameterised gradient in
    :math:`m` is :math:`-(x - 2z)`, :math:`z = m + s\varepsilon`, of variance :math:`4 s^2`.

    >>> import pyro, pyro.distributions as dist
    >>> def model(x):
    ...     z = pyro.sample("z", dist.Normal(0.0, 1.0))
    ...     pyro.sample("x", dist.Normal(z, 1.0), obs=x)
    >>> def guide(x):
    ...     pyro.sample("z", dist.Normal(pyro.param("m", torch.tensor(0.0)), 0.5))
    >>> pyro.clear_param_store()
    >>> gv = gradient_variance(model, guide, torch.tensor(1.0), elbo=("reparam", "score"),
    ...                        num_samples=200)
    >>> abs(gv["reparam"].variance - 4 * 0.5 ** 2) < 0.35, gv.ratio("score", "reparam") > 1
    (True, True)
    """
    model_fn, guide_fn, data = pair_and_args(model, args, guide)
    names = (elbo,) if isinstance(elbo, str) else tuple(elbo)
    if not names:
        raise ValueError(f"`elbo` must name at least one of {ESTIMATORS}, got none.")
    for name in names:
        one_of("elbo", name, ESTIMATORS)
    num_samples = positive_int("num_samples", num_samples, example=100)
    if num_samples < 2:
        raise ValueError(f"`num_samples` must be at least 2 for a variance, got {num_samples}.")
    seed = check_seed("seed", seed)
    params = _params(model_fn, guide_fn, data)
    keys, tensors = list(params), list(params.values())
    rows = {}
    for name in names:
        estimator, model_used, guide_used = _estimator(name, model_fn, guide_fn)
        draws, elbos = [], []
        with seeded(seed):
            for _ in range(num_samples):
                loss = estimator.differentiable_loss(model_used, guide_used, *data)
                grads = torch.autograd.grad(loss, tensors, allow_unused=True)
                draws.append(
                    [
                        torch.zeros_like(t) if g is None else g
                        for t, g in zip(tensors, grads, strict=True)
                    ]
                )
                elbos.append(-loss.item())
        per = {}
        mean_sq = 0.0
        for j, key in enumerate(keys):
            g = torch.stack([d[j] for d in draws]).double().reshape(num_samples, -1)
            per[key] = float(g.var(0, unbiased=True).sum())
            mean_sq += float(g.mean(0).square().sum())
        rows[name] = EstimatorVariance(
            name, sum(per.values()), mean_sq, sum(elbos) / num_samples, per
        )
    return GradientVariance(rows, num_samples, tuple(keys))
