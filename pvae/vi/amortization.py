r"""The amortization gap: how much an encoder loses by sharing one network across datapoints.

An amortized guide :math:`q_\phi(z|x)` (an encoder) falls short of :math:`\log p(x)` for two
reasons, which Cremer et al. (2018) separate with the best guide :math:`q^*` of the same family
fitted to each datapoint on its own:

.. math::

    \underbrace{\log p(x) - \mathcal{L}[q_\phi]}_{\text{total gap}}
    = \underbrace{\log p(x) - \mathcal{L}[q^*]}_{\text{approximation gap}}
    + \underbrace{\mathcal{L}[q^*] - \mathcal{L}[q_\phi]}_{\text{amortization gap}}

:func:`amortization_gap` computes the split exactly on a discrete-latent VAE (one categorical
latent per datapoint, so :math:`\log p(x)` and every ELBO are finite sums);
:func:`vae_amortization_gap` estimates it for a Gaussian-latent :class:`pvae.models.VAE`.

References
----------
1. Cremer, C., Li, X. and Duvenaud, D. (2018). Inference Suboptimality in Variational
   Autoencoders. ICML.
2. Burda, Y., Grosse, R. and Salakhutdinov, R. (2016). Importance Weighted Autoencoders.
   ICLR.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.poutine.util import prune_subsample_sites

from pvae import _checks, _display, _traces
from pvae._seed import seeded
from pvae.models.protocol import model_and_guide
from pvae.vi.guide_enumeration import DiscreteTable, enumerate_guide
from pvae.vi.guides import MeanFieldGuide, fit_guide

__all__ = ["AmortizationGap", "amortization_gap", "vae_amortization_gap"]


@dataclass(frozen=True)
class AmortizationGap:
    r"""The inference gap of an amortized guide, split as in Cremer et al. (2018).

    .. math::

        \underbrace{\log p(x) - \mathcal{L}[q_\phi]}_{\text{total gap}}
        = \underbrace{\log p(x) - \mathcal{L}[q^*]}_{\text{approximation gap}}
        + \underbrace{\mathcal{L}[q^*] - \mathcal{L}[q_\phi]}_{\text{amortization gap}}

    with :math:`q_\phi` the encoder's guide and :math:`q^*` the best guide of the same family
    fitted separately to each datapoint. Nats per example: means over the ``num_examples``
    datapoints (the datapoints are independent given the guide); the ``*_per_datapoint``
    fields are float64 tensors ``[N]``, and ``estimated`` says whether the numbers are Monte
    Carlo estimates (:func:`vae_amortization_gap`) or exact (:func:`amortization_gap`).

    Examples
    --------
    See :func:`amortization_gap`.
    """

    log_evidence: float
    elbo_amortized: float
    elbo_best: float
    approximation_gap: float
    amortization_gap: float
    total_gap: float
    log_evidence_per_datapoint: torch.Tensor
    elbo_amortized_per_datapoint: torch.Tensor
    elbo_best_per_datapoint: torch.Tensor
    num_examples: int = 0
    estimated: bool = False

    @classmethod
    def from_per_datapoint(
        cls,
        log_px: torch.Tensor,
        elbo_amortized: torch.Tensor,
        elbo_best: torch.Tensor,
        estimated: bool = False,
    ) -> AmortizationGap:
        """Average the per-datapoint terms and take the differences."""
        px, am, best = (float(t.double().mean()) for t in (log_px, elbo_amortized, elbo_best))
        per = (t.to(torch.float64) for t in (log_px, elbo_amortized, elbo_best))
        return cls(px, am, best, px - best, best - am, px - am, *per, len(log_px), estimated)

    def __str__(self) -> str:
        how = "estimated" if self.estimated else "exact"
        return "\n".join(
            [
                f"nats per example, mean over {self.num_examples} ({how})",
                f"log p(x)                 {self.log_evidence: .6f}",
                f"ELBO, best per datapoint {self.elbo_best: .6f}",
                f"ELBO, amortized encoder  {self.elbo_amortized: .6f}",
                f"approximation gap        {self.approximation_gap: .6f}",
                f"amortization gap         {self.amortization_gap: .6f}",
                f"total gap                {self.total_gap: .6f}",
            ]
        )

    __repr__ = __str__

    def _repr_html_(self) -> str:
        how = "estimated" if self.estimated else "exact"
        fields = {
            "log p(x)": self.log_evidence,
            "ELBO, best per datapoint": self.elbo_best,
            "ELBO, amortized encoder": self.elbo_amortized,
            "approximation gap": self.approximation_gap,
            "amortization gap": self.amortization_gap,
            "total gap": self.total_gap,
        }
        gaps = (self.elbo_best_per_datapoint - self.elbo_amortized_per_datapoint).tolist()
        note = f"nats per example, mean over {self.num_examples} ({how})"
        spark = _display.sparkline(sorted(gaps))
        extra = f"amortization gap per datapoint, sorted: {spark}" if spark else ""
        return _display.html_record("AmortizationGap", fields, notes=[note], extra=extra)


def _per_datapoint_elbo(model, guide, args) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Exact per-datapoint :math:`\log p(x_n)` and ELBO of ``guide``, float64 ``[N]``."""
    with torch.no_grad():
        e = enumerate_guide(model, guide, *args)
        log_p, _ = e.joint_tables()
        log_px = torch.logsumexp(log_p, e.enum_dims).reshape(-1)
        return log_px, e.elbo().reshape(-1)


def amortization_gap(
    model: Callable | None = None,
    x: torch.Tensor | None = None,
    *,
    hidden: tuple[int, ...] = (1,),
    num_steps: int = 300,
    lr: float = 0.05,
    seed: int = 0,
    best: str = "exact",
) -> AmortizationGap:
    r"""Approximation and amortization gaps of an encoder guide on a discrete-latent VAE.

    The model has one categorical latent per datapoint in a plate, like
    :func:`pvae.exact.toy.toy_vae`, so :math:`\log p(x)` is exact. Two guides of the same family (a
    categorical distribution per datapoint) are trained with :func:`pvae.vi.guides.fit_guide`:

    * amortized: :math:`q_\phi(z_n | x_n) = \mathrm{Categorical}(\mathrm{softmax}(f_\phi(x_n)))`
      with :math:`f_\phi` a small MLP (``hidden`` sizes, tanh);
    * per datapoint: free probabilities for each :math:`n`
      (:class:`pvae.vi.guides.MeanFieldGuide`).

    For this family the best per-datapoint guide is the exact posterior, so the approximation
    gap is zero and the whole gap is the amortization gap: the price of one encoder for all
    datapoints. ``best="exact"`` uses that fact (:math:`\mathcal{L}[q^*] = \log p(x)`);
    ``best="svi"`` fits the per-datapoint guide by SVI as Cremer et al. do, which shows the
    optimization error instead of a zero. The default ``hidden=(1,)`` is a one-unit bottleneck
    that cannot represent the posterior's three logits, so the gap is visible; a linear encoder
    (``hidden=()``) can represent it here (the toy's posterior logits are linear in
    :math:`x`).

    Parameters
    ----------
    model : callable, optional
        ``model(x)`` with one discrete latent site inside a plate over the rows of ``x``;
        defaults to :func:`pvae.exact.toy.toy_vae`.
    x : torch.Tensor, optional
        Data ``[N, D]``; defaults to the value the model observes when called without it.
    hidden : tuple of int
        Hidden layer sizes of the encoder.
    num_steps, lr, seed
        Settings of the SVI fits (Adam).
    best : {"exact", "svi"}
        How the best per-datapoint guide is found.

    Returns
    -------
    AmortizationGap

    Raises
    ------
    ValueError
        When the model does not have exactly one latent site inside a plate, or on a bad
        ``best``.

    Examples
    --------
    >>> g = amortization_gap(num_steps=20, lr=0.1)
    >>> g.approximation_gap, g.amortization_gap > 0.1
    (0.0, True)
    """
    _checks.one_of("best", best, ("exact", "svi"))
    num_steps = _checks.positive_int("num_steps", num_steps, example=300)
    lr = _checks.positive_float("lr", lr, example=0.05)
    _checks.seed("seed", seed)
    hidden = tuple(
        _checks.positive_int(f"hidden[{i}]", h, example=8) for i, h in enumerate(hidden)
    )
    if model is not None:
        _checks.callable_arg("model", model, what="a Pyro model `model(x)`")
    with seeded(seed):
        return _discrete_gap(model, x, hidden, num_steps, lr, seed, best)


def _discrete_gap(model, x, hidden, num_steps, lr, seed, best) -> AmortizationGap:
    store = pyro.get_param_store()
    for name in [n for n in store.keys() if n.startswith("amortization_gap.")]:
        del store[name]  # a fresh encoder and fresh local factors on every call
    if model is None:
        from pvae.exact.toy import toy_vae as model
    with torch.no_grad(), poutine.block():
        trace = prune_subsample_sites(poutine.trace(model).get_trace(*(() if x is None else (x,))))
    latents = [
        n
        for n, site in trace.nodes.items()
        if site["type"] == "sample" and not site["is_observed"]
    ]
    frames = [f for s in latents for f in trace.nodes[s]["cond_indep_stack"] if f.vectorized]
    if len(latents) != 1 or len(frames) != 1:
        raise ValueError(
            "`model` must have exactly one discrete latent site inside one plate over the "
            f"datapoints, got latents {latents} in plates {[f.name for f in frames]}."
        )
    (site,), (frame,) = latents, frames
    if x is None:
        observed = [
            n for n, s in trace.nodes.items() if s["type"] == "sample" and s["is_observed"]
        ]
        x = trace.nodes[observed[0]]["value"]
    values = trace.nodes[site]["fn"].enumerate_support(expand=False).reshape(-1)
    sizes = (x.shape[-1], *hidden, len(values))
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers += [torch.nn.Linear(a, b)] + ([torch.nn.Tanh()] if i < len(sizes) - 2 else [])
    encoder = torch.nn.Sequential(*layers).to(x.dtype)

    def amortized(x):
        net = pyro.module("amortization_gap.encoder", encoder)
        probs = torch.softmax(net(x), -1)
        with pyro.plate(frame.name, frame.size, dim=frame.dim):
            pyro.sample(site, DiscreteTable(probs, values))

    fit_guide(model, amortized, x, num_steps=num_steps, lr=lr, seed=seed)
    log_px, elbo_amortized = _per_datapoint_elbo(model, amortized, (x,))
    elbo_best = log_px
    if best == "svi":
        local = MeanFieldGuide(model, x, prefix="amortization_gap.local")
        fit_guide(model, local, x, num_steps=num_steps, lr=lr, seed=seed)
        _, elbo_best = _per_datapoint_elbo(model, local, (x,))
    return AmortizationGap.from_per_datapoint(log_px, elbo_amortized, elbo_best)


def _log_likelihood(vae, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    r""":math:`\log p(x_n | z_{sn})` under the decoder, for draws ``z`` ``[S, N, d]``."""
    s, n = z.shape[0], x.shape[0]
    x_rep = x.unsqueeze(0).expand((s,) + tuple(x.shape)).reshape((-1,) + x.shape[1:])
    return vae.decode(z.reshape(-1, z.shape[-1])).log_prob(x_rep).reshape(s, n)


def _gaussian_elbo(vae, x, loc, scale, num_samples: int) -> torch.Tensor:
    """Per-datapoint ELBO of q = N(loc, scale) (MC reconstruction, analytic KL to N(0, I))."""
    q = torch.distributions.Normal(loc, scale)
    recon = _log_likelihood(vae, x, q.rsample((num_samples,)))
    prior = torch.distributions.Normal(torch.zeros_like(loc), torch.ones_like(scale))
    return recon.mean(0) - torch.distributions.kl_divergence(q, prior).sum(-1)


def vae_amortization_gap(
    vae: Any,
    x: torch.Tensor,
    *,
    num_steps: int = 300,
    lr: float = 0.05,
    num_samples: int = 16,
    num_particles: int = 1000,
    seed: int = 0,
) -> AmortizationGap:
    r"""Approximation and amortization gaps of a Gaussian-latent VAE's encoder (estimated).

    The amortized guide is the encoder's :math:`q_\phi(z|x) = \mathcal{N}(\mu_\phi(x),
    \sigma_\phi(x))`. The best per-datapoint guide of the same (diagonal Gaussian) family is
    found by optimizing a free mean and standard deviation for each datapoint, started from the
    encoder's answer, with the decoder held fixed (Adam, reparameterized gradients, analytic
    KL to the prior). :math:`\log p(x)` is not tractable, so it is the importance-sampling
    estimate with ``num_particles`` draws from the per-datapoint guide (Burda et al. 2016);
    the ELBOs use ``num_particles`` draws. All three numbers are Monte Carlo estimates from
    the importance-weight core (:mod:`pvae._traces`: the model's own density, so a
    :math:`\beta` the VAE was trained with does not enter), and so are the gaps.

    Parameters
    ----------
    vae : pvae.models.VAE
        Anything with ``encode(x) -> (loc, scale)`` and ``decode(z) -> Distribution`` whose
        ``log_prob(x)`` is per datapoint.
    x : torch.Tensor
        Data ``[N, *x_shape]``.
    num_steps, lr : int, float
        Adam steps and learning rate of the per-datapoint optimization.
    num_samples : int
        Reparameterized samples per datapoint per step.
    num_particles : int
        Samples for the final ELBOs and the importance-sampling :math:`\log p(x)`.
    seed : int
        Seeds the optimization and the draws (the caller's generators are left as they
        were, :func:`pvae._seed.seeded`).

    Returns
    -------
    AmortizationGap

    Examples
    --------
    >>> from pvae.models.vae import VAE
    >>> vae = VAE(x_dim=4, z_dim=2, hidden=(), likelihood="gaussian")
    >>> g = vae_amortization_gap(vae, torch.randn(5, 4), num_steps=50, num_particles=200)
    >>> g.amortization_gap > 0
    True
    """
    num_steps = _checks.positive_int("num_steps", num_steps, example=300)
    lr = _checks.positive_float("lr", lr, example=0.05)
    num_samples = _checks.positive_int("num_samples", num_samples, example=16)
    num_particles = _checks.positive_int(
        "num_particles", num_particles, example=1000, maximum=_checks.MAX_PARTICLES
    )
    model, amortized = model_and_guide(vae)
    frozen = [p for p in vae.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    with seeded(seed):
        try:
            best = _best_guide(vae, x, num_steps, lr, num_samples)
        finally:
            for p in frozen:
                p.requires_grad_(True)
        with torch.no_grad():
            w_amortized = _traces.log_weights(model, amortized, (x,), {}, num_particles)
            w_best = _traces.log_weights(model, best, (x,), {}, num_particles)
    for w, name in ((w_amortized, "the encoder"), (w_best, "the per-datapoint guide")):
        if not w.per_example:
            raise ValueError(f"`vae`: {name} does not factor over plate 'data'.")
    return AmortizationGap.from_per_datapoint(
        _traces.log_mean_exp(w_best.log_weight),
        w_amortized.log_weight.mean(0),
        w_best.log_weight.mean(0),
        estimated=True,
    )


def _best_guide(vae, x, num_steps, lr, num_samples) -> Callable:
    """The best diagonal Gaussian per datapoint, decoder fixed, as a Pyro guide."""
    with torch.no_grad():
        loc0, scale0 = vae.encode(x)
    loc = loc0.clone().requires_grad_(True)
    log_scale = scale0.log().clone().requires_grad_(True)
    optim = torch.optim.Adam([loc, log_scale], lr=lr)
    for _ in range(num_steps):  # the training objective; every reported number is below
        optim.zero_grad()
        loss = -_gaussian_elbo(vae, x, loc, log_scale.exp(), num_samples).sum()
        loss.backward()
        optim.step()
    loc, scale = loc.detach(), log_scale.detach().exp()

    def best(x):
        with pyro.plate("data", x.shape[0], device=x.device):
            pyro.sample("z", dist.Normal(loc, scale).to_event(1))

    return best
