r"""Posterior collapse: how much of a VAE's Gaussian latent code carries information.

A VAE whose KL term wins switches latent dimensions off: :math:`q(z_d \mid x) = p(z_d)` for
every :math:`x`, so dimension :math:`d` costs nothing and says nothing. For a Gaussian-latent
VAE, :func:`collapse_diagnostics` measures the KL per latent dimension, the active units and
the mutual information :math:`I(x; z)`; :func:`collapse_callback` records them per epoch in
``fit`` history. Only the encoder is used (``vae.encode(x) -> (loc, scale)``), in closed form
or by simple Monte Carlo; nothing here needs arviz.

References
----------
1. Burda, Grosse, Salakhutdinov (2016). Importance weighted autoencoders. ICLR.
2. Hoffman, Johnson (2016). ELBO surgery. NIPS workshop on advances in approximate Bayesian
   inference.
3. He, Spokoyny, Neubig, Berg-Kirkpatrick (2019). Lagging inference networks and posterior
   collapse in variational autoencoders. ICLR.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from pvae import _checks, _display
from pvae._compat import renamed
from pvae._seed import seeded
from pvae.data import as_tensor
from pvae.models.protocol import Encodes

__all__ = ["CollapseDiagnostics", "collapse_callback", "collapse_diagnostics"]


class CollapseDiagnostics(NamedTuple):
    r"""How much a Gaussian latent code is used (see :func:`collapse_diagnostics`)."""

    #: :math:`\mathbb{E}_x\,\mathrm{KL}(q(z_d \mid x) \,\|\, p(z_d))` per dimension, nats
    #: (``kl_per_dim`` in pvae 0.1).
    kl_prior_per_dim: torch.Tensor
    #: :math:`\mathrm{Var}_x\,\mathbb{E}_q[z_d]` per dimension (Burda et al. 2016).
    activity: torch.Tensor
    #: ``activity > threshold``, per dimension.
    active_units: torch.Tensor
    num_active: int
    #: Estimate of :math:`I(x; z)` under :math:`q(x, z) = p_{data}(x)\, q(z \mid x)`, nats.
    mutual_information: float
    #: :math:`\mathbb{E}_x\,\mathrm{KL}(q(z \mid x) \,\|\, p(z))`, the sum of ``kl_prior_per_dim``
    #: (``kl`` in pvae 0.1: KL to the prior, not to the posterior).
    kl_prior: float
    #: :math:`\mathrm{KL}(q(z) \,\|\, p(z))` = ``kl_prior - mutual_information`` (Hoffman &
    #: Johnson).
    marginal_kl: float

    kl = renamed("CollapseDiagnostics", "kl", "kl_prior")
    kl_per_dim = renamed("CollapseDiagnostics", "kl_per_dim", "kl_prior_per_dim")

    __repr__ = _display.record_repr

    def _repr_html_(self) -> str:
        fields = {"active units": f"{self.num_active} of {len(self.active_units)}"}
        fields.update({"KL(q || p(z))": self.kl_prior, "I(x; z)": self.mutual_information})
        fields["KL(q(z) || p(z))"] = self.marginal_kl
        cols = (self.kl_prior_per_dim.tolist(), self.activity.tolist(), self.active_units.tolist())
        rows = [(d, *c) for d, c in enumerate(zip(*cols, strict=True))]
        table = _display.html_table(["dim", "KL(q || p(z_d))", "activity", "active"], rows)
        notes = ["nats, means over the data"]
        return _display.html_record("CollapseDiagnostics", fields, tables=[table], notes=notes)


def _call_encode(vae, data: tuple):
    """``vae.encode(*data)``; the wrong number of data arrays is named as such."""
    try:
        signature = inspect.signature(vae.encode)
        signature.bind(*data)
    except TypeError as err:
        raise ValueError(
            f"`data`: `{type(vae).__name__}.encode` takes {signature}, got {len(data)} data "
            f"array(s) ({err})."
        ) from None
    except ValueError:  # a builtin without a signature: let the call say what is wrong
        pass
    return vae.encode(*data)


def _encode(vae, data: tuple):
    """``vae.encode(*data)`` in eval mode, without gradients, as float64 (loc, scale)."""
    if not isinstance(vae, Encodes) or isinstance(vae, (str, bytes)):
        raise ValueError(
            f"`vae` must have `encode(x) -> (loc, scale)` (a pvae VAE), got {type(vae).__name__}."
        )
    module = vae if isinstance(vae, torch.nn.Module) else None
    if module is not None:
        param = next(module.parameters(), None)
        if param is not None:
            data = tuple(t.to(param.device) for t in data)
    was_training = module is not None and module.training
    if was_training:
        module.eval()
    try:
        with torch.no_grad():
            out = _call_encode(vae, data)
    finally:
        if was_training:
            module.train()
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ValueError(
            f"`vae.encode` must return the Gaussian (loc, scale) of q(z | x), got "
            f"{type(out).__name__}. Posterior collapse is about a distribution over codes; "
            "an Autoencoder's code is a point (compare reconstruction errors instead)."
        )
    loc, scale = out
    n = data[0].shape[0]
    if loc.shape != scale.shape or loc.dim() != 2 or loc.shape[0] != n:
        raise ValueError(
            "`vae.encode(x)` must return (loc, scale) of shape (len(x), z_dim), got "
            f"{tuple(loc.shape)} and {tuple(scale.shape)}."
        )
    return loc.double(), scale.double()


def collapse_diagnostics(
    vae: Any,
    *data: Any,
    threshold: float = 0.01,
    num_samples: int = 1,
    chunk_size: int = 256,
    seed: int | None = None,
) -> CollapseDiagnostics:
    r"""Measure posterior collapse of a Gaussian-latent VAE on data ``x``.

    For :math:`q(z \mid x) = \mathcal{N}(\mu(x), \mathrm{diag}\,\sigma(x)^2)` and prior
    :math:`p(z) = \mathcal{N}(0, I)`:

    * KL per dimension, averaged over the data (closed form):

      .. math:: \mathrm{KL}_d = \mathbb{E}_x\left[\tfrac12(\mu_d^2 + \sigma_d^2 - 1)
                - \log \sigma_d\right];

    * active units (Burda et al. 2016): dimension :math:`d` is active when
      :math:`\mathrm{Var}_x\,\mu_d(x) > 0.01` (``threshold``), i.e. its code moves with x;
    * mutual information, with the aggregate posterior :math:`q(z) = \frac1N \sum_j
      q(z \mid x_j)` over the batch (Hoffman & Johnson 2016; He et al. 2019):

      .. math:: I(x; z) \approx \frac{1}{N}\sum_i \left[\log q(z_i \mid x_i)
                - \log \tfrac1N \textstyle\sum_j q(z_i \mid x_j)\right],
                \qquad z_i \sim q(z \mid x_i).

      It is 0 when the encoder ignores x and at most :math:`\log N`; it also equals
      :math:`\mathbb{E}_x \mathrm{KL}(q(z|x) \| p(z)) - \mathrm{KL}(q(z) \| p(z))`.

    A collapsed dimension has KL near 0 and is inactive; collapse of the whole code shows as
    mutual information near 0.

    Parameters
    ----------
    vae : object
        Anything with ``encode(*data) -> (loc, scale)``, each of shape ``(len(x), z_dim)``
        (:class:`pvae.models.protocol.Encodes`: a pvae VAE or ConditionalVAE).
    *data : tensor or array, shape (N, ...)
        The data, as the encoder takes it (``x``, or ``x, y`` for a conditional VAE; one
        tuple ``(x, y)`` too, as :func:`pvae.fit` takes it). Encoded once, without
        gradients, in eval mode.
    threshold : float
        Activity above which a unit counts as active.
    num_samples : int
        Draws of z per data point for the mutual-information estimate.
    chunk_size : int
        Rows of the ``(N * num_samples, N)`` density matrix computed at a time.
    seed : int, optional
        Seeds the mutual-information draws (the caller's generators are restored).

    Returns
    -------
    CollapseDiagnostics

    Raises
    ------
    ValueError
        If ``vae`` has no ``encode``, ``x`` has fewer than 2 rows, or an option is not positive.

    Examples
    --------
    >>> import torch
    >>> class Encoder:  # dim 0 copies x, dim 1 ignores it
    ...     def encode(self, x):
    ...         return torch.stack([x[:, 0], 0 * x[:, 0]], -1), torch.ones(len(x), 2)
    >>> d = collapse_diagnostics(Encoder(), torch.randn(500, 1))
    >>> d.num_active, d.active_units.tolist()
    (1, [True, False])
    """
    if len(data) == 1 and isinstance(data[0], (tuple, list)):
        data = tuple(data[0])  # the data as fit and evaluate take it: (x, y)
    if not data:
        raise ValueError("`collapse_diagnostics(vae, x)` needs the data `x` to encode.")
    data = tuple(as_tensor(d, name="x" if i == 0 else f"data[{i}]") for i, d in enumerate(data))
    x = data[0]
    if x.dim() == 0 or x.shape[0] < 2:
        raise ValueError(f"`x` must hold at least 2 data points, got shape {tuple(x.shape)}.")
    threshold = _checks.nonnegative_float("threshold", threshold, example=0.01)
    num_samples = _checks.positive_int("num_samples", num_samples, example=1, maximum=10**4)
    chunk_size = _checks.positive_int("chunk_size", chunk_size, example=256)
    loc, scale = _encode(vae, data)
    kl_per_dim = (0.5 * (loc**2 + scale**2 - 1.0) - scale.log()).mean(0)
    activity = loc.var(0)  # x has at least 2 rows
    active = activity > threshold
    with seeded(seed):
        mutual_information = _mutual_information(loc, scale, num_samples, chunk_size)
    kl = float(kl_per_dim.sum())
    return CollapseDiagnostics(
        kl_prior_per_dim=kl_per_dim.float(),
        activity=activity.float(),
        active_units=active,
        num_active=int(active.sum()),
        mutual_information=mutual_information,
        kl_prior=kl,
        marginal_kl=kl - mutual_information,
    )


def _mutual_information(loc, scale, num_samples: int, chunk_size: int) -> float:
    n, width = loc.shape
    eps = torch.randn((num_samples, n, width), dtype=loc.dtype, device=loc.device)
    z = loc + scale * eps  # z_i ~ q(z | x_i)
    log_norm = scale.log().sum(-1) + 0.5 * width * math.log(2 * math.pi)  # (N,)
    own = -0.5 * ((z - loc) / scale).pow(2).sum(-1) - log_norm  # log q(z_i | x_i)
    aggregate = []
    for rows in z.reshape(-1, 1, width).split(chunk_size):  # log (1/N) sum_j q(z_i | x_j)
        log_q = -0.5 * ((rows - loc) / scale).pow(2).sum(-1) - log_norm
        aggregate.append(log_q.logsumexp(-1) - math.log(n))
    return float((own.reshape(-1) - torch.cat(aggregate)).mean())


def collapse_callback(x_val: Any, *, every: int = 1, threshold: float = 0.01) -> Callable:
    """A ``fit`` callback that adds collapse measures to the epoch's history row.

    Returns ``cb(epoch, model, row) -> dict | None``; ``pvae.fit(..., callbacks=[cb])``
    merges the dict into that epoch's row, every key ``val_*`` since it is measured on
    ``x_val``: ``val_num_active`` (the count of active units, an int;
    :attr:`CollapseDiagnostics.active_units` is the per-dimension mask),
    ``val_mutual_information``, ``val_marginal_kl`` and ``val_kl_prior_dim_0``, ... (nats).
    The names of pvae 0.1 (``active_units``, ``kl_dim_0``, ...) still read from the
    history, with a :class:`DeprecationWarning`.

    Parameters
    ----------
    x_val : tensor or array
        Held-out data to encode at the end of each measured epoch.
    every : int
        Measure every ``every`` epochs (and skip the others).
    threshold : float
        Active-unit threshold, as in :func:`collapse_diagnostics`.

    Returns
    -------
    callable

    Examples
    --------
    >>> import torch
    >>> class Encoder:
    ...     def encode(self, x):
    ...         return x[:, :1], torch.ones(len(x), 1)
    >>> cb = collapse_callback(torch.randn(200, 1))
    >>> sorted(cb(1, Encoder(), {"epoch": 1}))
    ['val_kl_prior_dim_0', 'val_marginal_kl', 'val_mutual_information', 'val_num_active']
    """
    x_val = as_tensor(x_val, name="x_val")
    every = _checks.positive_int("every", every, example=1)
    threshold = _checks.nonnegative_float("threshold", threshold, example=0.01)

    def callback(epoch: int, model: Any, row: dict | None = None) -> dict | None:
        if epoch % every:
            return None
        d = collapse_diagnostics(model, x_val, threshold=threshold)
        out = {
            "val_num_active": d.num_active,
            "val_mutual_information": d.mutual_information,
            "val_marginal_kl": d.marginal_kl,
        }
        out.update({f"val_kl_prior_dim_{i}": float(v) for i, v in enumerate(d.kl_prior_per_dim)})
        return out

    return callback
