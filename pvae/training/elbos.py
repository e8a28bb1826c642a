r"""ELBO estimators for training: pvae's analytic fast path as a :class:`pyro.infer.ELBO`.

:class:`AnalyticELBO` estimates the negative ELBO of a pvae model from its closed-form
terms (:class:`~pvae.models.protocol.HasELBOTerms`): one reparameterised draw
:math:`z \sim q(z \mid x)` per example for the reconstruction term and the analytic
:math:`\mathrm{KL}(q(z \mid x) \,\|\, p(z))`,

.. math::

    \mathcal{L}(x) = -\sum_{n} \Big(\log p(x_n \mid z_n)
        - \beta\, \mathrm{KL}\big(q(z \mid x_n) \,\|\, p(z)\big)\Big),

the same estimator as :class:`~pyro.infer.TraceMeanField_ELBO` with one particle, without
Pyro's tracing. It is an ELBO like Pyro's own, so ``pyro.infer.SVI`` takes it too::

    svi = pyro.infer.SVI(vae.model, vae.guide, pyro.optim.Adam({"lr": 1e-3}), AnalyticELBO())

:func:`make_elbo` turns the names :func:`pvae.fit` accepts (``"trace"``, ``"meanfield"``,
``"jit"``, ``"analytic"``, ``"enum"``, ``"iwae"``) into estimators. ``"enum"`` is
:class:`EnumELBO`, Pyro's :class:`~pyro.infer.TraceEnum_ELBO` with every discrete site marked
``infer={"enumerate": "parallel"}`` (in the model or the guide) summed out exactly and
``max_plate_nesting`` found from one run of the pair; ``"iwae"`` is the importance-weighted
bound (:class:`~pvae.training.importance_bound.IWAE_ELBO`). :class:`AuxiliaryLossELBO` adds a
model's own extra training term (the classification term of a semi-supervised VAE) to any
of them.

References
----------
1. Kingma, D. P. and Welling, M. (2014). Auto-Encoding Variational Bayes. ICLR.
2. Higgins, I. et al. (2017). beta-VAE: Learning basic visual concepts with a constrained
   variational framework. ICLR.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyro
import torch
from pyro import poutine
from pyro.distributions.util import is_identically_zero
from pyro.infer import ELBO, JitTrace_ELBO, Trace_ELBO, TraceEnum_ELBO, TraceMeanField_ELBO
from pyro.poutine.runtime import am_i_wrapped
from pyro.util import warn_if_nan

from pvae import _traces
from pvae._checks import MAX_PARTICLES, one_of, positive_int
from pvae.models.protocol import HasELBOTerms
from pvae.training.dice import dice_elbo
from pvae.training.importance_bound import IWAE_ELBO
from pvae.training.rng import forked_rng

__all__ = [
    "ELBO_NAMES",
    "AnalyticELBO",
    "AuxiliaryLossELBO",
    "EnumELBO",
    "kl_prior",
    "make_elbo",
    "uses_fixed_shapes",
]

#: The estimator names :func:`make_elbo` (and :func:`pvae.fit`'s ``elbo=``) accept.
ELBO_NAMES = ("trace", "meanfield", "jit", "analytic", "enum", "iwae")


def kl_prior(terms: Any) -> torch.Tensor:
    r"""The :math:`\mathrm{KL}(q \,\|\, p(z))` of an ``elbo_terms`` record, per example.

    Reads ``terms.kl_prior`` (the name of the quantity), or ``terms.kl`` on records that do
    not have it yet.

    Examples
    --------
    >>> from pvae.models import VAE
    >>> kl_prior(VAE(2, 1, hidden=()).elbo_terms(torch.ones(3, 2))).shape
    torch.Size([3])
    """
    return terms.kl_prior if hasattr(type(terms), "kl_prior") else terms.kl


def _owner(model: Callable, guide: Callable) -> Any:
    """The pvae model behind the bound methods ``model`` and ``guide``."""
    owner = model if isinstance(model, HasELBOTerms) else getattr(model, "__self__", None)
    if not isinstance(owner, HasELBOTerms) or not isinstance(owner, torch.nn.Module):
        raise ValueError(
            "`AnalyticELBO` needs the `model` method of a torch.nn.Module with `elbo_terms` "
            f"(pvae's VAE, ConditionalVAE, Autoencoder), got {model!r}. Use "
            "pyro.infer.TraceMeanField_ELBO for other models."
        )
    if getattr(guide, "__self__", None) is not owner:
        raise ValueError(
            "`AnalyticELBO` computes the ELBO from the model's own encoder, so `guide` must "
            f"be the same object's `guide` method, got {guide!r}. Use Trace_ELBO for "
            "another guide."
        )
    return owner


class AnalyticELBO(ELBO):
    r"""The negative ELBO of a pvae model from its ``elbo_terms`` (see the module docstring).

    ``loss_and_grads(vae.model, vae.guide, *data)`` returns the loss summed over the
    examples (Pyro's convention) and leaves its gradients; under a Pyro param trace (as in
    ``pyro.infer.SVI.step``) it also reports the model's parameters as param sites, so SVI
    knows what to optimise. With ``beta != 1`` (:attr:`HasELBOTerms.beta`) it is the
    :math:`\beta`-VAE objective.

    Parameters
    ----------
    num_particles : int
        Draws per example, averaged.

    Examples
    --------
    >>> from pvae.models import VAE
    >>> vae = VAE(x_dim=4, z_dim=2, hidden=(8,))
    >>> x = torch.tensor([[0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    >>> svi = pyro.infer.SVI(vae.model, vae.guide, pyro.optim.Adam({"lr": 1e-2}), AnalyticELBO())
    >>> losses = [svi.step(x) for _ in range(50)]
    >>> losses[-1] < losses[0]
    True
    """

    def __init__(self, num_particles: int = 1) -> None:
        super().__init__(
            num_particles=positive_int("num_particles", num_particles, maximum=MAX_PARTICLES)
        )

    def _get_trace(self, model: Any, guide: Any, args: Any, kwargs: Any) -> Any:
        raise NotImplementedError(
            "AnalyticELBO computes the ELBO from `elbo_terms`, without traces; use "
            "Trace_ELBO for trace-based estimates."
        )

    def differentiable_loss(self, model: Callable, guide: Callable, *args: Any, **kwargs: Any):
        """The loss as a tensor, differentiable in every parameter of the model."""
        owner = _owner(model, guide)
        beta = float(owner.beta)
        loss = None
        for _ in range(self.num_particles):
            terms = owner.elbo_terms(*args, **kwargs)
            kl = kl_prior(terms)
            particle = ((kl if beta == 1.0 else beta * kl) - terms.reconstruction).sum()
            loss = particle if loss is None else loss + particle
        return loss / self.num_particles if self.num_particles > 1 else loss

    def loss(self, model: Callable, guide: Callable, *args: Any, **kwargs: Any) -> float:
        """The loss as a float, without gradients."""
        with torch.no_grad():
            return self.differentiable_loss(model, guide, *args, **kwargs).item()

    def loss_and_grads(self, model: Callable, guide: Callable, *args: Any, **kwargs: Any):
        """The loss as a float; its gradients are added to the parameters' ``.grad``."""
        loss = self.differentiable_loss(model, guide, *args, **kwargs)
        loss.backward()
        if am_i_wrapped():  # someone traces the params (SVI.step, fit's first step)
            _report_params(_owner(model, guide), model, args, kwargs)
        return loss.item()


def _report_params(owner: torch.nn.Module, model: Callable, args: Any, kwargs: Any) -> None:
    """Emit a param site for every parameter of ``owner``, registering them first if new."""
    ids = {id(p) for p in owner.parameters()}
    store = pyro.get_param_store()
    names = [name for name, p in store.named_parameters() if id(p) in ids]
    if len(names) < len(ids):  # never run under Pyro: the model registers them (pyro.module)
        with poutine.block(), torch.no_grad(), forked_rng():
            model(*args, **kwargs)
        names = [name for name, p in store.named_parameters() if id(p) in ids]
    for name in names:
        pyro.param(name)


class EnumELBO(TraceEnum_ELBO):
    r""":class:`~pyro.infer.TraceEnum_ELBO` with ``max_plate_nesting`` found, not asked for.

    Discrete sites marked ``infer={"enumerate": "parallel"}`` -- in the guide (a classifier
    :math:`q(y \mid x)`) or left to the model (a mixture's component) -- are summed out
    exactly, as Pyro does. On the first call the pair runs once, without enumeration, and
    ``max_plate_nesting`` is the number of batch dims its sites use (their plates and batch
    shapes, :func:`pvae._traces.max_plate_nesting`); the enumeration dims go left of them.
    Pass ``max_plate_nesting`` to fix it yourself. The traces are Pyro's; their DiCE sum is
    :func:`pvae.training.dice.dice_elbo`, Pyro's value computed directly when the guide has a
    single factor (one enumerated label, as in :class:`~pvae.models.SemiSupervisedVAE`) or
    none, Pyro's own contraction otherwise.

    Examples
    --------
    >>> import pyro.distributions as dist
    >>> def model(x):
    ...     with pyro.plate("data", len(x)):
    ...         c = pyro.sample("c", dist.Bernoulli(0.3), infer={"enumerate": "parallel"})
    ...         pyro.sample("x", dist.Normal(2.0 * c, 1.0), obs=x)
    >>> x = torch.tensor([0.1, 2.5])
    >>> elbo = EnumELBO()
    >>> loss = elbo.loss(model, lambda x: None, x)      # -log p(x), c summed out
    >>> exact = torch.stack([dist.Normal(0.0, 1.0).log_prob(x) + torch.tensor(0.7).log(),
    ...                      dist.Normal(2.0, 1.0).log_prob(x) + torch.tensor(0.3).log()])
    >>> elbo.max_plate_nesting, round(loss + exact.logsumexp(0).sum().item(), 5)
    (1, 0.0)
    """

    def __init__(self, num_particles: int = 1, **kwargs: Any) -> None:
        super().__init__(
            num_particles=positive_int("num_particles", num_particles, maximum=MAX_PARTICLES),
            **kwargs,
        )

    def _guess_max_plate_nesting(self, model: Any, guide: Any, args: Any, kwargs: Any) -> None:
        with poutine.block(), torch.no_grad(), forked_rng():
            guide_trace = poutine.trace(guide).get_trace(*args, **kwargs)
            model_trace = poutine.trace(poutine.replay(model, trace=guide_trace)).get_trace(
                *args, **kwargs
            )
        self.max_plate_nesting = _traces.max_plate_nesting(guide_trace, model_trace)
        if self.vectorize_particles and self.num_particles > 1:
            self.max_plate_nesting += 1

    # Pyro's loss, differentiable_loss and loss_and_grads, with its DiCE step replaced by
    # pvae.training.dice.dice_elbo (the same value; direct when the guide has one factor).
    def _particles(self, model: Any, guide: Any, args: Any, kwargs: Any):
        for model_trace, guide_trace in self._get_traces(model, guide, args, kwargs):
            particle = dice_elbo(model_trace, guide_trace)
            if not is_identically_zero(particle):
                yield particle, model_trace, guide_trace

    def loss(self, model: Callable, guide: Callable, *args: Any, **kwargs: Any) -> float:
        """The loss (negative ELBO) as a float, as :meth:`TraceEnum_ELBO.loss`."""
        elbo = 0.0
        for particle, _, _ in self._particles(model, guide, args, kwargs):
            elbo += particle.item() / self.num_particles
        warn_if_nan(-elbo, "loss")
        return -elbo

    def differentiable_loss(self, model: Callable, guide: Callable, *args: Any, **kwargs: Any):
        """The loss as a differentiable tensor, as :meth:`TraceEnum_ELBO.differentiable_loss`."""
        elbo = 0.0
        for particle, _, _ in self._particles(model, guide, args, kwargs):
            elbo = elbo + particle
        elbo = elbo / self.num_particles
        if not torch.is_tensor(elbo) or not elbo.requires_grad:
            raise ValueError(
                f"the ELBO ({elbo}) depends on no parameter of the model or guide, so it has "
                "no gradient to differentiate; `loss` gives its value"
            )
        warn_if_nan(-elbo, "loss")
        return -elbo

    def loss_and_grads(self, model: Callable, guide: Callable, *args: Any, **kwargs: Any):
        """The loss as a float, gradients added to ``.grad``, as Pyro's ``loss_and_grads``."""
        elbo = 0.0
        for particle, model_trace, guide_trace in self._particles(model, guide, args, kwargs):
            elbo += particle.item() / self.num_particles
            trainable = any(
                site["type"] == "param"
                for trace in (model_trace, guide_trace)
                for site in trace.nodes.values()
            )
            if trainable and particle.requires_grad:
                (-particle / self.num_particles).backward(retain_graph=True)
        warn_if_nan(-elbo, "loss")
        return -elbo


class AuxiliaryLossELBO(ELBO):
    r"""An estimator plus a model's extra training term: ``loss = elbo_loss + auxiliary``.

    ``auxiliary(*data)`` returns a differentiable scalar in Pyro's sign (to minimise),
    summed over the examples -- the :math:`-\alpha \sum \log q(y_n \mid x_n)` of a
    semi-supervised VAE's labelled examples (Kingma et al. 2014). The trained objective is
    then not the ELBO, and :func:`pvae.fit` reports it as ``train_objective`` beside the
    model's ``train_elbo``.

    Examples
    --------
    >>> def model():
    ...     pyro.factor("f", -(pyro.param("w", torch.tensor(1.0)) ** 2))
    >>> elbo = AuxiliaryLossELBO(Trace_ELBO(), lambda: 3.0 * pyro.param("w"))
    >>> elbo.loss(model, lambda: None)                    # w^2 + 3 w at w = 1
    4.0
    """

    def __init__(self, elbo: ELBO, auxiliary: Callable[..., torch.Tensor]) -> None:
        if not isinstance(elbo, ELBO) or not callable(auxiliary):
            raise ValueError(
                "`AuxiliaryLossELBO(elbo, auxiliary)` needs a pyro.infer.ELBO and a callable, "
                f"got {type(elbo).__name__} and {type(auxiliary).__name__}."
            )
        super().__init__(num_particles=elbo.num_particles)
        self.elbo, self.auxiliary = elbo, auxiliary

    def _get_trace(self, model: Any, guide: Any, args: Any, kwargs: Any) -> Any:
        return self.elbo._get_trace(model, guide, args, kwargs)  # noqa: SLF001 (Pyro's API)

    def differentiable_loss(self, model: Callable, guide: Callable, *args: Any, **kwargs: Any):
        """The estimator's differentiable loss plus the auxiliary term."""
        base = self.elbo.differentiable_loss(model, guide, *args, **kwargs)
        return base + self.auxiliary(*args, **kwargs)

    def loss(self, model: Callable, guide: Callable, *args: Any, **kwargs: Any) -> float:
        """The loss as a float, without gradients."""
        with torch.no_grad():
            base = self.elbo.loss(model, guide, *args, **kwargs)
            return float(base + torch.as_tensor(self.auxiliary(*args, **kwargs)).item())

    def loss_and_grads(self, model: Callable, guide: Callable, *args: Any, **kwargs: Any):
        """The loss as a float; its gradients are added to the parameters' ``.grad``."""
        loss = self.differentiable_loss(model, guide, *args, **kwargs)
        loss.backward()
        return loss.item()


def make_elbo(elbo: str | ELBO, num_particles: int = 1) -> ELBO:
    """The estimator for a name of :data:`ELBO_NAMES`, or ``elbo`` itself.

    Parameters
    ----------
    elbo : str or pyro.infer.ELBO
        ``"trace"`` (:class:`~pyro.infer.Trace_ELBO`), ``"meanfield"``
        (:class:`~pyro.infer.TraceMeanField_ELBO`), ``"jit"``
        (:class:`~pyro.infer.JitTrace_ELBO`), ``"analytic"`` (:class:`AnalyticELBO`),
        ``"enum"`` (:class:`EnumELBO`), ``"iwae"``
        (:class:`~pvae.training.importance_bound.IWAE_ELBO`, ``num_particles`` is its
        :math:`K`), or an ELBO instance, used as it is.
    num_particles : int
        Particles of a named estimator (an instance keeps its own).

    Returns
    -------
    pyro.infer.ELBO

    Raises
    ------
    ValueError
        For other names, or ``num_particles`` given with an instance.

    Examples
    --------
    >>> type(make_elbo("meanfield", num_particles=4)).__name__, make_elbo("trace").num_particles
    ('TraceMeanField_ELBO', 1)
    """
    num_particles = positive_int("num_particles", num_particles, maximum=MAX_PARTICLES)
    if isinstance(elbo, ELBO):
        if num_particles != 1:
            raise ValueError(
                f"`num_particles`={num_particles} cannot be applied to the ELBO instance "
                f"{type(elbo).__name__}, which has its own ({elbo.num_particles}). Build it "
                "with `num_particles=` instead, and leave fit's `num_particles` at 1."
            )
        return elbo
    one_of("elbo", elbo, ELBO_NAMES)
    if elbo == "analytic":
        return AnalyticELBO(num_particles)
    if elbo == "enum":
        return EnumELBO(num_particles, vectorize_particles=num_particles > 1)
    if elbo == "iwae":
        return IWAE_ELBO(num_particles)
    if elbo == "jit":
        return JitTrace_ELBO(num_particles=num_particles, ignore_jit_warnings=True)
    estimator = Trace_ELBO if elbo == "trace" else TraceMeanField_ELBO
    return estimator(num_particles=num_particles)


def uses_fixed_shapes(elbo: ELBO) -> bool:
    """True for Pyro's JIT estimators: a traced graph has fixed shapes (no ragged batches).

    Examples
    --------
    >>> uses_fixed_shapes(make_elbo("jit")), uses_fixed_shapes(make_elbo("trace"))
    (True, False)
    """
    return type(elbo).__name__.startswith("Jit")
