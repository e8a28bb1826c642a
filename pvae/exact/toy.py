r"""Classic small models with known answers, as Pyro models.

Every model runs with no arguments (the published observed data are the defaults) and also
takes the data as arguments. Their latents are discrete, so
:func:`pvae.exact.enumerate_posterior` gives the exact posterior, which the docstrings
compare with the published number.

>>> from pvae.exact import enumerate_posterior
>>> round(enumerate_posterior(burglary_alarm).prob(burglary=1), 3)
0.284

:data:`TOYS` maps command-line names (``"medical-test"``) to the models, and
:data:`PUBLISHED` lists the published posterior probabilities each one reproduces.

References
----------
1. Eddy, D. M. (1982). Probabilistic reasoning in clinical medicine: problems and
   opportunities. In Kahneman, Slovic & Tversky (eds.), *Judgment under Uncertainty*.
2. Russell, S. & Norvig, P. (2010). *Artificial Intelligence: A Modern Approach*, 3rd ed.,
   section 14.4.1.
3. Murphy, K. (1998). A brief introduction to graphical models and Bayesian networks
   (the sprinkler network); also Russell & Norvig, figure 14.12.
4. Selvin, S. (1975). A problem in probability (letter). *The American Statistician* 29(1).
5. Bishop, C. M. (2006). *Pattern Recognition and Machine Learning*, section 9.2.
6. Gelman, A. et al. (2013). *Bayesian Data Analysis*, 3rd ed., section 2.1.
"""

from __future__ import annotations

from collections.abc import Callable

import pyro
import pyro.distributions as dist
import torch
from pyro.ops.indexing import Vindex

__all__ = [
    "PUBLISHED",
    "TOYS",
    "bias_grid",
    "burglary_alarm",
    "coin_bias_grid",
    "gaussian_mixture",
    "medical_test",
    "monty_hall",
    "sprinkler",
    "toy_vae",
]

_F64 = torch.float64


_EPS = torch.finfo(_F64).eps


def _t(value) -> torch.Tensor:
    return torch.as_tensor(value, dtype=_F64)


def medical_test(test: float = 1.0) -> None:
    r"""Screening for a rare disease (Eddy 1982).

    Prevalence 1%, sensitivity :math:`p(+ \mid D) = 0.8`, false-positive rate
    :math:`p(+ \mid \neg D) = 0.096`. Published answer: after a positive test,
    :math:`p(D \mid +) = 0.008 / 0.10304 \approx 0.0776` (7.8%), not 80%.

    Sites: latent ``"disease"`` (0/1), observed ``"test"`` (1 = positive).

    Examples
    --------
    >>> from pvae.exact import enumerate_posterior
    >>> round(enumerate_posterior(medical_test).prob(disease=1), 4)
    0.0776
    """
    disease = pyro.sample("disease", dist.Bernoulli(_t(0.01)))
    positive = _t(0.096) + (_t(0.8) - _t(0.096)) * disease
    pyro.sample("test", dist.Bernoulli(positive), obs=_t(test))


def burglary_alarm(john_calls: float = 1.0, mary_calls: float = 1.0) -> None:
    r"""The burglary-alarm network (Russell & Norvig, section 14.4.1).

    Burglary (0.001) and Earthquake (0.002) cause the Alarm; John and Mary call when they
    hear it. Published answer: :math:`P(B \mid j, m) \approx 0.284`.

    Sites: latent ``"burglary"``, ``"earthquake"``, ``"alarm"``; observed ``"john_calls"``,
    ``"mary_calls"``.

    Examples
    --------
    >>> from pvae.exact import enumerate_posterior
    >>> round(enumerate_posterior(burglary_alarm).prob(burglary=1), 3)
    0.284
    """
    b = pyro.sample("burglary", dist.Bernoulli(_t(0.001)))
    e = pyro.sample("earthquake", dist.Bernoulli(_t(0.002)))
    p_alarm = _t([[0.001, 0.29], [0.94, 0.95]])  # [burglary, earthquake]
    a = pyro.sample("alarm", dist.Bernoulli(Vindex(p_alarm)[b.long(), e.long()]))
    pyro.sample("john_calls", dist.Bernoulli(_t([0.05, 0.90])[a.long()]), obs=_t(john_calls))
    pyro.sample("mary_calls", dist.Bernoulli(_t([0.01, 0.70])[a.long()]), obs=_t(mary_calls))


def sprinkler(wet_grass: float = 1.0) -> None:
    r"""Cloudy, sprinkler, rain and wet grass (Murphy 1998; Russell & Norvig fig. 14.12).

    :math:`P(C) = 0.5`; :math:`P(S \mid C) = 0.1, P(S \mid \neg C) = 0.5`;
    :math:`P(R \mid C) = 0.8, P(R \mid \neg C) = 0.2`; :math:`P(W \mid S, R) = 0.99`,
    :math:`0.9` with one of them, :math:`0` with neither. Published answers:
    :math:`P(S \mid W) = 0.2781 / 0.6471 \approx 0.430` and
    :math:`P(R \mid W) = 0.4581 / 0.6471 \approx 0.708` (explaining away).

    Sites: latent ``"cloudy"``, ``"sprinkler"``, ``"rain"``; observed ``"wet_grass"``.

    The "impossible" row (no sprinkler, no rain, wet grass) has likelihood
    :math:`\epsilon \approx 2.2 \cdot 10^{-16}` (float64's machine epsilon) rather than 0:
    the answers move by less than 1e-15, and every guide keeps a finite ELBO. With an exact 0
    a mean-field guide, which puts some mass on every row, has :math:`\mathrm{KL}(q \,\|\,
    p) = \infty`, and pvae reports that (see *Conventions*).

    Examples
    --------
    >>> from pvae.exact import enumerate_posterior
    >>> post = enumerate_posterior(sprinkler)
    >>> round(post.prob(sprinkler=1), 3), round(post.prob(rain=1), 3)
    (0.43, 0.708)
    """
    c = pyro.sample("cloudy", dist.Bernoulli(_t(0.5)))
    s = pyro.sample("sprinkler", dist.Bernoulli(_t([0.5, 0.1])[c.long()]))
    r = pyro.sample("rain", dist.Bernoulli(_t([0.2, 0.8])[c.long()]))
    p_wet = _t([[_EPS, 0.9], [0.9, 0.99]])  # [sprinkler, rain]
    pyro.sample("wet_grass", dist.Bernoulli(Vindex(p_wet)[s.long(), r.long()]), obs=_t(wet_grass))


def monty_hall(chosen: int = 0, opened: int = 1) -> None:
    r"""The Monty Hall problem (Selvin 1975; vos Savant 1990).

    The car is behind one of three doors, uniformly. You choose door ``chosen``; the host,
    who knows where the car is, opens a door that is neither yours nor the car's (uniformly
    when he has two). Published answer: switching wins with probability 2/3,
    :math:`P(\text{car} = 2 \mid \text{chosen} = 0, \text{opened} = 1) = 2/3`.

    Sites: latent ``"car"`` (0, 1, 2); observed ``"opened"``.

    Examples
    --------
    >>> from pvae.exact import enumerate_posterior
    >>> enumerate_posterior(monty_hall).marginal("car")
    tensor([0.3333, 0.0000, 0.6667], dtype=torch.float64)
    """
    if chosen not in (0, 1, 2) or opened not in (0, 1, 2):
        raise ValueError(f"`chosen` and `opened` must be doors 0, 1 or 2, got {chosen}, {opened}.")
    host = torch.zeros(3, 3, dtype=_F64)  # host[car, door]; logits keep the zeros exact
    for car in range(3):
        doors = [d for d in range(3) if d not in (chosen, car)]
        host[car, doors] = 1.0 / len(doors)
    car = pyro.sample("car", dist.Categorical(torch.full((3,), 1 / 3, dtype=_F64)))
    pyro.sample("opened", dist.Categorical(logits=host.log()[car]), obs=torch.tensor(opened))


_MIXTURE_DATA = (-2.3, -1.7, -0.4, 0.2, 1.1, 1.9, 2.6)


def gaussian_mixture(
    data: torch.Tensor | None = None,
    locs: tuple[float, ...] = (-2.0, 2.0),
    scale: float = 1.0,
    weights: tuple[float, ...] | None = None,
) -> None:
    r"""Cluster assignments of a Gaussian mixture with known components (Bishop, sec. 9.2).

    .. math::

        z_n \sim \mathrm{Categorical}(\pi), \qquad
        x_n \mid z_n \sim \mathcal{N}(\mu_{z_n}, \sigma^2)

    The analytic answer is the "responsibility"
    :math:`p(z_n = k \mid x_n) \propto \pi_k \, \mathcal{N}(x_n; \mu_k, \sigma^2)`, one
    distribution per data point (marginal shape ``[N, K]``).

    Sites: latent ``"z"`` and observed ``"x"``, both in ``pyro.plate("data", N)``.

    Examples
    --------
    >>> from pvae.exact import enumerate_posterior
    >>> enumerate_posterior(gaussian_mixture).marginal("z")[3]
    tensor([0.3100, 0.6900], dtype=torch.float64)
    """
    x = _t(_MIXTURE_DATA if data is None else data)
    mu = _t(locs)
    pi = torch.full((len(locs),), 1 / len(locs), dtype=_F64) if weights is None else _t(weights)
    with pyro.plate("data", x.shape[0]):
        z = pyro.sample("z", dist.Categorical(pi))
        pyro.sample("x", dist.Normal(mu[z], _t(scale)), obs=x)


_FLIPS = (1, 0, 1, 1, 1, 0, 1, 1, 0, 1)  # 7 heads in 10 flips


def bias_grid(num_points: int = 20) -> torch.Tensor:
    """The midpoints of ``num_points`` equal cells of [0, 1], the coin model's hypotheses.

    Examples
    --------
    >>> bias_grid(4)
    tensor([0.1250, 0.3750, 0.6250, 0.8750], dtype=torch.float64)
    """
    return (torch.arange(num_points, dtype=_F64) + 0.5) / num_points


def coin_bias_grid(flips: torch.Tensor | None = None, num_points: int = 20) -> None:
    r"""A coin's bias on a grid, the discrete version of the Beta-Binomial model.

    The bias is uniform over :func:`bias_grid` (site ``"bias"`` holds the grid index) and
    each flip is Bernoulli. With :math:`h` heads in :math:`n` flips the posterior is the
    conjugate :math:`\mathrm{Beta}(h + 1, n - h + 1)` density evaluated on the grid and
    renormalized (Gelman et al. 2013, sec. 2.1), and the evidence tends to the
    Beta-Binomial sequence probability :math:`B(h + 1, n - h + 1)` as the grid is refined.
    Default data: 7 heads in 10 flips.

    Sites: latent ``"bias"``; observed ``"x"`` in ``pyro.plate("data", n)``.

    Examples
    --------
    >>> from pvae.exact import enumerate_posterior
    >>> post = enumerate_posterior(coin_bias_grid)
    >>> round(float((post.marginal("bias") * bias_grid()).sum()), 4)  # Beta(8, 4) mean 0.667
    0.6667
    """
    x = _t(_FLIPS if flips is None else flips)
    grid = bias_grid(num_points)
    bias = pyro.sample("bias", dist.Categorical(torch.full((num_points,), 1 / num_points)))
    with pyro.plate("data", x.shape[0]):
        pyro.sample("x", dist.Bernoulli(grid[bias]), obs=x)


TOY_VAE_WEIGHTS = (0.5, 0.3, 0.2)
TOY_VAE_PIXEL_PROBS = (
    (0.9, 0.9, 0.1, 0.1),  # z = 0: left half on
    (0.1, 0.1, 0.9, 0.9),  # z = 1: right half on
    (0.9, 0.1, 0.9, 0.1),  # z = 2: stripes
)
_TOY_VAE_DATA = (
    (1, 1, 0, 0),
    (1, 1, 0, 1),
    (0, 0, 1, 1),
    (1, 0, 1, 0),
    (1, 0, 1, 1),
    (0, 1, 0, 1),
)


def toy_vae(
    x: torch.Tensor | None = None,
    weights: tuple[float, ...] = TOY_VAE_WEIGHTS,
    pixel_probs: tuple[tuple[float, ...], ...] = TOY_VAE_PIXEL_PROBS,
) -> None:
    r"""A discrete-latent "VAE" small enough to enumerate: :math:`z \in \{0..K-1\}`.

    .. math::

        z_n \sim \mathrm{Categorical}(\pi), \qquad
        x_{nd} \mid z_n \sim \mathrm{Bernoulli}(\theta_{z_n d}), \quad d = 1..D

    The decoder :math:`\theta` is fixed (:data:`TOY_VAE_PIXEL_PROBS`, K = 3 prototypes of
    D = 4 pixels), so the exact posterior :math:`p(z_n \mid x_n)` and :math:`\log p(x)` are
    available to check an amortized guide :math:`q(z_n \mid x_n)` against.

    Sites: latent ``"z"`` and observed ``"x"`` (event of D pixels), in
    ``pyro.plate("data", N)``.

    Examples
    --------
    >>> from pvae.exact import enumerate_posterior
    >>> post = enumerate_posterior(toy_vae)
    >>> post.marginal("z").shape, post.marginal("z")[0].argmax().item()
    (torch.Size([6, 3]), 0)
    """
    data = _t(_TOY_VAE_DATA if x is None else x)
    theta = _t(pixel_probs)
    if data.dim() != 2 or data.shape[-1] != theta.shape[-1]:
        raise ValueError(
            f"`x` must have shape [N, {theta.shape[-1]}] (N binary images of "
            f"{theta.shape[-1]} pixels), got {tuple(data.shape)}."
        )
    with pyro.plate("data", data.shape[0]):
        z = pyro.sample("z", dist.Categorical(_t(weights)))
        pyro.sample("x", dist.Bernoulli(theta[z]).to_event(1), obs=data)


TOYS: dict[str, Callable[..., None]] = {
    "medical-test": medical_test,
    "burglary-alarm": burglary_alarm,
    "sprinkler": sprinkler,
    "monty-hall": monty_hall,
    "coin-bias": coin_bias_grid,
    "gaussian-mixture": gaussian_mixture,
    "toy-vae": toy_vae,
}
"""The toy models by command-line name (``pvae bayes NAME``)."""

PUBLISHED: dict[str, list[tuple[str, int, float, str]]] = {
    "medical-test": [("disease", 1, 0.0776, "Eddy 1982")],
    "burglary-alarm": [("burglary", 1, 0.284, "Russell & Norvig 2010, sec. 14.4.1")],
    "sprinkler": [
        ("sprinkler", 1, 0.430, "Murphy 1998"),
        ("rain", 1, 0.708, "Murphy 1998"),
    ],
    "monty-hall": [("car", 2, 2 / 3, "Selvin 1975")],
}
"""Published posterior probabilities ``(site, value, probability, source)`` per toy, at the
default data, to the precision they were published with."""
