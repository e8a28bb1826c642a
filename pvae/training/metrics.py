r"""The evaluation columns of a fit history: the model's ELBO and its terms, once per epoch.

After every epoch, without gradients, :class:`EpochMetrics` computes on a fixed set of
training examples and on the validation data

.. math::

    \mathrm{ELBO} = \underbrace{\mathbb{E}_q \log p(x \mid z)}_{\text{reconstruction}}
        - \underbrace{\mathrm{KL}(q(z \mid x) \,\|\, p(z))}_{\text{kl\_prior}},

always the *model's* numbers (:math:`\beta = 1`, densities masked and unscaled), however
the training objective weights them. Three ways, chosen once per fit:

- ``"terms"``: a pvae model with ``elbo_terms``
  (:class:`~pvae.models.protocol.HasELBOTerms`): its reconstruction and analytic KL;
- ``"weights"``: any other pair, through the importance-weight core
  (:func:`pvae._traces.log_weights`, one particle): per example where the examples are
  conditionally independent given the guide's draw, else the joint ELBO of the whole data
  set divided by its number of examples (``per_example`` is then False and ``note`` says
  why); these passes leave the random state as they found it;
- ``"objective"``: a pair the core refuses (a point-mass guide, say): no ELBO columns, and
  the estimator's own objective on the validation data (``val_objective``).

Squared-error models (the ``Autoencoder``) get ``val_loss`` instead.
"""

from __future__ import annotations

import inspect as _inspect
import math
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

import torch
from pyro import poutine
from pyro.infer import (
    ELBO,
    JitTrace_ELBO,
    JitTraceEnum_ELBO,
    JitTraceGraph_ELBO,
    JitTraceMeanField_ELBO,
    Trace_ELBO,
    TraceEnum_ELBO,
    TraceGraph_ELBO,
    TraceMeanField_ELBO,
)
from pyro.poutine.util import site_is_subsample

from pvae import _traces
from pvae.models.protocol import HasELBOTerms, objective
from pvae.training.elbos import AnalyticELBO, EnumELBO, kl_prior, uses_fixed_shapes
from pvae.training.rng import forked_rng
from pvae.training.step import TrainingDivergedError

__all__ = ["ELBO_ESTIMATORS", "EpochMetrics", "accepts", "check_columns"]

#: Estimators whose loss is minus the ELBO (discrete sites enumerated exactly, if any):
#: their step mean is the ``train_elbo`` column; any other (``RenyiELBO``, the IWAE bound)
#: is reported as ``train_objective``.
ELBO_ESTIMATORS = (
    AnalyticELBO,
    EnumELBO,
    Trace_ELBO,
    TraceMeanField_ELBO,
    TraceGraph_ELBO,
    TraceEnum_ELBO,
    JitTrace_ELBO,
    JitTraceMeanField_ELBO,
    JitTraceGraph_ELBO,
    JitTraceEnum_ELBO,
)


def accepts(fn: Callable, name: str) -> bool:
    """Whether ``fn`` takes a keyword argument ``name``.

    Examples
    --------
    >>> accepts(lambda x, num_examples=None: x, "num_examples")
    True
    """
    try:
        return name in _inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _to(batch: Sequence[torch.Tensor], device: Any) -> tuple[torch.Tensor, ...]:
    return tuple(t if device is None else t.to(device) for t in batch)


def _whole(batches: Iterable) -> tuple[torch.Tensor, ...]:
    """All examples of ``batches`` in one batch."""
    parts = list(batches)
    return tuple(torch.cat(column) for column in zip(*parts, strict=True))


class EpochMetrics:
    """The history's evaluation columns for one model/guide pair (see the module docstring).

    Parameters
    ----------
    model : object or callable
        What :func:`pvae.fit` was given.
    model_fn, guide_fn : callable
        The Pyro pair.
    held : tuple of torch.Tensor
        The training examples the ``train_*`` columns are computed on (the first batch).
    whole : callable
        ``() -> tuple of tensors``: all training examples (for joint numbers).
    estimator : pyro.infer.ELBO
        The training estimator (for ``val_objective`` and ``val_loss``).
    device : torch.device, optional
        Where batches are moved.

    Examples
    --------
    >>> from pvae.models import VAE
    >>> vae = VAE(3, 2, hidden=())
    >>> x = torch.bernoulli(torch.full((8, 3), 0.5))
    >>> m = EpochMetrics(vae, vae.model, vae.guide, (x,), lambda: (x,), Trace_ELBO())
    >>> m.kind, sorted(m.train())
    ('terms', ['train_kl_prior', 'train_reconstruction'])
    """

    def __init__(
        self,
        model: Any,
        model_fn: Callable,
        guide_fn: Callable,
        held: tuple[torch.Tensor, ...],
        whole: Callable[[], tuple[torch.Tensor, ...]],
        estimator: ELBO,
        device: Any = None,
    ) -> None:
        self.model, self.model_fn, self.guide_fn = model, model_fn, guide_fn
        self.device = device
        self.estimator = Trace_ELBO() if uses_fixed_shapes(estimator) else estimator
        self.per_example, self.note, self.scaled = True, "", False
        self.minibatched = False  # fit sets it: more than one step per epoch
        self._structures: dict[int, _traces.Structure] = {}
        held = _to(held, device)
        if objective(model) == "squared_error":
            self.kind = "squared_error"
        elif isinstance(model, HasELBOTerms):
            self.kind = "terms"
        else:
            self.kind = "weights"
            with forked_rng():
                try:
                    structure = self._structure(held)
                except ValueError as err:
                    self.kind, self.note = "objective", f"no ELBO columns: {err}"
                else:
                    self.scaled = self._is_scaled(held)
            if self.kind == "weights" and not structure.per_example:
                self.per_example = False
                held = _to(whole(), device)
                self.note = (
                    f"ELBO columns are the joint ELBO of the data set divided by its number of "
                    f"examples, not per example: {structure.joint_reason}"
                )
        self.held = held

    @property
    def differs(self) -> bool:
        """The step losses are not the model's ELBO: scaled sites, no ELBO at all, an
        estimator of another bound (``RenyiELBO``), or a global latent's KL counted once per
        minibatch (a model without ``num_examples`` that ``fit`` could scale)."""
        if self.kind == "objective" or self.scaled:
            return True
        if type(self.estimator) not in ELBO_ESTIMATORS:  # a subclass may change the loss
            return True
        unscaled_batches = self.minibatched and not accepts(self.model_fn, "num_examples")
        return self.kind == "weights" and not self.per_example and unscaled_batches

    def check(self, batches: Iterable) -> None:
        """Refuse, before training, validation data the pair cannot score (a guide with
        parameters per training example, such as AutoNormal over a local plate)."""
        if self.kind not in ("weights", "objective"):
            return
        batch = next(iter(batches), None)
        if batch is None:
            raise ValueError("`val_data` must hold at least one example, got none.")
        batch = _to(batch, self.device)
        model_fn, guide_fn = self._fns(batch)
        try:
            with forked_rng(), torch.no_grad(), poutine.block():
                guide = poutine.trace(guide_fn).get_trace(*batch)
                trace = poutine.trace(poutine.replay(model_fn, trace=guide)).get_trace(*batch)
                for tr in (guide, trace):
                    _traces.tensor_values(tr)
                    tr.compute_log_prob()
                    _traces.exact_log_probs(tr)
        except _traces.SHAPE_ERRORS as err:
            raise ValueError(
                f"the guide cannot score `val_data` ({type(err).__name__}: {err}). A guide with "
                "parameters per training example (AutoNormal over a local plate) has none for "
                "new data: drop `val_data`, or use an amortized guide (an encoder)."
            ) from err

    # ------------------------------------------------------------------------- columns
    def train(self) -> dict[str, float]:
        """``train_reconstruction`` and ``train_kl_prior`` on the held training examples."""
        if self.kind not in ("terms", "weights"):
            return {}
        rec, kl = self._terms([self.held])
        return {"train_reconstruction": rec, "train_kl_prior": kl}

    def val(self, batches: Iterable) -> dict[str, float]:
        """The ``val_*`` columns on ``batches`` (nats per example)."""
        if self.kind == "squared_error":
            if isinstance(self.model, HasELBOTerms):
                total, count = 0.0, 0
                with torch.no_grad():
                    for batch in batches:
                        batch = _to(batch, self.device)
                        total -= self.model.elbo_terms(*batch).reconstruction.sum().item()
                        count += batch[0].shape[0]
                return {"val_loss": total / count}
            return {"val_loss": self._objective(batches)}
        if self.kind == "objective":
            return {"val_objective": -self._objective(batches)}
        if not self.per_example:
            batches = [_whole(_to(b, self.device) for b in batches)]
        rec, kl = self._terms(batches)
        return {"val_elbo": rec - kl, "val_reconstruction": rec, "val_kl_prior": kl}

    # ------------------------------------------------------------------------- pieces
    def _fns(self, batch: Sequence[torch.Tensor]) -> tuple[Callable, Callable]:
        """The pair with the evaluated examples as the whole data set (a full plate)."""
        n = int(batch[0].shape[0])
        return tuple(  # type: ignore[return-value]
            partial(fn, num_examples=n) if accepts(fn, "num_examples") else fn
            for fn in (self.model_fn, self.guide_fn)
        )

    def _structure(self, batch: Sequence[torch.Tensor]) -> _traces.Structure:
        n = int(batch[0].shape[0])
        if n not in self._structures:
            model_fn, guide_fn = self._fns(batch)
            with forked_rng(), torch.no_grad():  # the first evaluation draws as every later one
                self._structures[n] = _traces.inspect(model_fn, guide_fn, tuple(batch), {})
        return self._structures[n]

    def _is_scaled(self, batch: Sequence[torch.Tensor]) -> bool:
        """True when a site is scaled (``poutine.scale``): the objective is not the ELBO."""
        model_fn, guide_fn = self._fns(batch)
        with poutine.block(), torch.no_grad():
            guide = poutine.trace(guide_fn).get_trace(*batch)
            model = poutine.trace(poutine.replay(model_fn, trace=guide)).get_trace(*batch)
        for trace in (guide, model):
            for site in trace.nodes.values():
                if site["type"] == "sample" and not site_is_subsample(site):
                    if bool(torch.as_tensor(site["scale"]).ne(1).any()):
                        return True
        return False

    def _terms(self, batches: Iterable) -> tuple[float, float]:
        """Mean reconstruction and KL to the prior per example (or joint / examples)."""
        rec = kl = 0.0
        count = 0
        if self.kind == "terms":
            with torch.no_grad():
                for batch in batches:
                    terms = self.model.elbo_terms(*_to(batch, self.device))
                    rec += terms.reconstruction.sum().item()
                    kl += kl_prior(terms).sum().item()
                    count += batch[0].shape[0]
            return rec / count, kl / count
        with forked_rng(), torch.no_grad():
            for batch in batches:
                batch = _to(batch, self.device)
                model_fn, guide_fn = self._fns(batch)
                weights = _traces.log_weights(
                    model_fn, guide_fn, batch, {}, 1, self._structure(batch), vectorize=False
                )
                rec += weights.log_likelihood.sum().item()
                kl += (weights.log_guide - weights.log_prior).sum().item()
                count += batch[0].shape[0]
        return rec / count, kl / count

    def _objective(self, batches: Iterable) -> float:
        """The estimator's loss per example (Pyro's sign), the batches as whole data sets."""
        total, count = 0.0, 0
        with forked_rng(), torch.no_grad():
            for batch in batches:
                batch = _to(batch, self.device)
                model_fn, guide_fn = self._fns(batch)
                total += self.estimator.loss(model_fn, guide_fn, *batch)
                count += batch[0].shape[0]
        return total / count


def check_columns(columns: dict, epoch: int, lr: float | None, ckpt: Any) -> None:
    """Raise :class:`TrainingDivergedError` if an epoch's ELBO terms are not finite: the
    state after the epoch's last update has diverged (no step has checked it yet, and
    without a checkpoint directory none will). Nothing staged in ``ckpt`` (a
    :class:`~pvae.training.resume.Checkpointer`) is written; the message says where the
    last good checkpoint is."""
    for name, value in columns.items():
        if not math.isfinite(value):
            ckpt.discard()
            rate = "the learning rate" if lr is None else f"`lr` (now {lr:g})"
            raise TrainingDivergedError(
                f"`{name}` became {value} at the end of epoch {epoch}: the last update of "
                "the epoch diverged, and that state was not written. Lower "
                f"{rate}, set `clip_norm` (e.g. 10.0), or check the data for extreme values. "
                f"{ckpt.where()}",
                loss=value,
            )
